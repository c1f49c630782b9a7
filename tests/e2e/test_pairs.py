"""The cross-version matrix on real builds: the suite's cells, test ids that
name both versions, the matrix in every report, merging jobs, and the lint of
pair vectors."""

from __future__ import annotations

import json
import xml.etree.ElementTree as ET
from pathlib import Path
from typing import Any

import pytest
from helpers.shared import Shared
from helpers.suite_runner import basic_vectors, run_suite

from qmpcompat.cli import main
from qmpcompat.errors import VectorError
from qmpcompat.report.matrix import matrix
from qmpcompat.report.results import read_results
from qmpcompat.vectors.lint import lint
from qmpcompat.vectors.pairs import case_vector, parse_pair

PAIR_FILE = """\
description: test pairs
pairs:
  - id: XV-9001
    description: a paused pc guest with a serial port over a unix socket
    flags: [cross-version]
    transport: unix
    forms: [uri/uri, channels/channels]
    guest:
      devices: [serial]
    expect:
      - migration: completed
        inferred-from: made up for this test, nothing observed
"""


def pair_vectors(tmp_path: Path, text: str = PAIR_FILE) -> Path:
    vectors = basic_vectors(tmp_path)
    (vectors / "cross-version").mkdir()
    (vectors / "cross-version" / "pairs.yaml").write_text(text)
    return vectors


RUNS = {"both": "bookworm,sid", "old": "bookworm", "new": "sid"}


@pytest.fixture(scope="module")
def runs(shared: Shared) -> dict[str, Path]:
    """Real runs of the matrix suite: the oldest and newest build together, and
    each alone (once per session, whichever xdist worker asks first)."""

    def make(root: Path) -> None:
        vectors = pair_vectors(root)
        for name, suites in RUNS.items():
            rc, text, _doc = run_suite(root / name, suites=suites, vectors=vectors,
                                       paths=("suites/test_pairs.py",))
            assert rc == 0, text

    root = shared.once("pair-runs", make)
    return {name: root / name / "reports" / "results.json" for name in RUNS}


def test_every_ordered_pair_runs_with_the_older_machine_type(runs: dict[str, Path]) -> None:
    doc = read_results(runs["both"])
    cells = {(r["form"], r["source"], r["destination"]): r for r in doc["pairs"]}
    old, new = (b["version"] for b in doc["environment"]["binaries"])
    assert len(cells) == 8
    for src, dst in ((old, old), (old, new), (new, old), (new, new)):
        rec = cells[("uri/uri", src, dst)]
        assert rec["outcome"] == "passed", rec
        older = min(src, dst, key=lambda v: tuple(map(int, v.split("."))))
        assert rec["machine"] == "pc-i440fx-" + ".".join(older.split(".")[:2])
        guest = rec["observed"]["guest"]
        assert guest["source_sha256"] == guest["destination_sha256"]
        assert rec["basis"]["kind"] == "inferred" and "made up for this test" in rec["basis"]["source"]
    assert cells[("channels/channels", new, new)]["outcome"] == "passed"
    for src, dst in ((old, old), (old, new), (new, old)):
        rec = cells[("channels/channels", src, dst)]
        assert rec["outcome"] == "skipped" and "lacks migrate" in rec["message"], rec


STRICT_PAIRS = """\
description: test pairs
pairs:
  - id: XV-9002
    description: a paused pc guest with a serial port over a unix socket, uri on both sides
    flags: [cross-version]
    transport: unix
    forms: [uri/uri]
    guest:
      devices: [serial]
    expect:
      - migration: completed
        observed-on: [7.2.22->7.2.22, 7.2.22->10.0.13, 10.0.13->10.0.13]
        inferred-from: made up for this test, every other pair
"""


def test_strict_mode_refuses_an_unobserved_pair(tmp_path: Path) -> None:
    """A pair claim over * ranges is observed only on the pairs in its observed-on:
    the one cell outside them (new -> old) is inferred, counted so for both its
    builds, and refused under --qmpcompat-strict; once `qmpcompat observe` records
    the non-strict run, strict mode passes. (Stable suites: strict mode refuses a
    Debian suite whose index is past its Valid-Until.)"""
    vectors = pair_vectors(tmp_path, STRICT_PAIRS)
    for strict in (False, True):
        rc, out, doc = run_suite(tmp_path / str(strict), *(["--qmpcompat-strict"] if strict else []),
                                 suites="bookworm,trixie", vectors=vectors,
                                 paths=("suites/test_pairs.py",))
        cells = {(r["source_version"], r["destination_version"]): r for r in doc["pairs"]}
        kinds = {k: r["basis"]["kind"] for k, r in cells.items()}
        assert kinds == {("7.2.22", "7.2.22"): "observed", ("7.2.22", "10.0.13"): "observed",
                         ("10.0.13", "10.0.13"): "observed", ("10.0.13", "7.2.22"): "inferred"}, out
        assert doc["claims"]["7.2.22"] == {"observed": 2, "schema": 0, "inferred": 1}
        assert doc["claims"]["10.0.13"] == {"observed": 2, "schema": 0, "inferred": 1}
        refused = cells[("10.0.13", "7.2.22")]
        if strict:
            assert refused["outcome"] == "failed" and rc == 1, out
            assert refused["message"].startswith("strict mode refuses an inferred claim: the binary "
                                                 "did what the vector says, but the pair not "
                                                 "observed on 10.0.13->7.2.22")
        else:
            assert {r["outcome"] for r in cells.values()} == {"passed"} and rc == 0, out
    assert main(["observe", str(tmp_path / "False" / "reports" / "results.json"),
                 "--vectors", str(vectors)]) == 0
    assert "10.0.13->7.2.22" in (vectors / "cross-version" / "pairs.yaml").read_text()
    rc, out, doc = run_suite(tmp_path / "again", "--qmpcompat-strict", suites="bookworm,trixie",
                             vectors=vectors, paths=("suites/test_pairs.py",))
    assert rc == 0 and doc["claims"]["10.0.13"]["inferred"] == 0, out


def test_reports_show_the_matrix(runs: dict[str, Path]) -> None:
    reports = runs["both"].parent
    doc = read_results(runs["both"])
    old, new = (b["version"] for b in doc["environment"]["binaries"])
    summary = (reports / "summary.md").read_text()
    assert "### Cross-version matrix (rows: source, columns: destination)" in summary
    assert f"| **{new}** | ok 1/1 | ok 2/2 |" in summary
    names = {c.get("name") for c in ET.parse(reports / "junit.xml").getroot().iter("testcase")}
    assert f"test_pair[XV-9001-uri-uri-{new}-to-{old}]" in names
    html = (reports / "index.html").read_text()
    assert '"pair_matrix"' in html and 'id="pairs"' in html
    assert doc["pair_matrix"] == matrix(doc["pairs"]) and doc["pair_matrix"]["versions"] == [old, new]
    cell = next(c for c in matrix(doc["pairs"])["cells"] if c["source"] == old and c["destination"] == old)
    assert (cell["mark"], cell["passed"], cell["skipped"]) == ("ok", 1, 1)


def test_merge_keeps_only_cells_a_job_could_make(runs: dict[str, Path], tmp_path: Path) -> None:
    """A cell needs both builds in one job: jobs with one build each make only the
    diagonal, and the merge of them has no cross cells."""
    out = tmp_path / "merged"
    assert main(["report", "merge", str(runs["old"]), str(runs["new"]), "-o", str(out)]) == 0
    merged = read_results(out / "results.json")
    assert {(r["source"], r["destination"]) for r in merged["pairs"]} == \
        {(r["source"], r["source"]) for r in merged["pairs"]}
    out2 = tmp_path / "merged2"
    assert main(["report", "merge", str(runs["both"]), str(runs["new"]), "-o", str(out2)]) == 0
    both = read_results(runs["both"])
    key = [(r["vector"], r["form"], r["source"], r["destination"], r["outcome"]) for r in both["pairs"]]
    again = read_results(out2 / "results.json")
    assert sorted(key) == sorted((r["vector"], r["form"], r["source"], r["destination"], r["outcome"])
                                 for r in again["pairs"])
    assert again["pair_disagreements"] == []
    junit = (out2 / "junit.xml").read_text()
    assert 'name="cross-version"' in junit


def test_merge_reports_a_cell_that_disagrees(runs: dict[str, Path], tmp_path: Path) -> None:
    doc: dict[str, Any] = json.loads(runs["both"].read_text())
    flipped = next(r for r in doc["pairs"] if r["outcome"] == "passed")
    flipped["outcome"] = "failed"
    flipped["observed"] = {"result": "corrupt", "detail": "guest memory differs after migration"}
    other = tmp_path / "other.json"
    other.write_text(json.dumps(doc))
    assert main(["report", "merge", str(runs["both"]), str(other), "-o", str(tmp_path / "m")]) == 1
    merged = read_results(tmp_path / "m" / "results.json")
    assert len(merged["pair_disagreements"]) == 1
    summary = (tmp_path / "m" / "summary.md").read_text()
    assert "1 cross-version matrix cell failed" in summary
    assert "#### Matrix cells that failed" in summary


def test_pair_vector_lint(tmp_path: Path) -> None:
    bad = PAIR_FILE.replace("transport: unix", "transport: unix\n    guest: {machine: microvm}") \
        .replace("    guest:\n      devices: [serial]\n", "")
    vectors = pair_vectors(tmp_path, bad)
    problems = [str(p) for p in lint(vectors)]
    assert any("XV-9001" in p and "microvm" in p for p in problems), problems
    overlap = PAIR_FILE.replace("      - migration: completed",
                                "      - migration: completed\n      - source: '>=10'\n"
                                "        migration: failed")
    problems = [str(p) for p in lint(pair_vectors(tmp_path / "o", overlap))]
    assert any("overlap" in p for p in problems), problems
    marked = PAIR_FILE.replace(
        "      - migration: completed\n        inferred-from: made up for this test, nothing observed\n",
        "      - source: '>=10'\n        migration: completed\n"
        "        observed-on: ['10.0.13', 7.2.22->10.0.13]\n")
    problems = [str(p) for p in lint(pair_vectors(tmp_path / "m", marked))]
    assert any("XV-9001: observed-on '10.0.13' is not a pair MAJOR.MINOR.MICRO->MAJOR.MINOR.MICRO"
               in p for p in problems), problems
    assert any("XV-9001: observed-on 7.2.22->10.0.13 is outside the sources >=10" in p
               for p in problems), problems
    assert any("XV-9001: schema: pairs/0/expect/0/observed-on/0" in p for p in problems), problems


def test_cell_is_an_ordinary_vector_through_the_safety_gate() -> None:
    raw: dict[str, Any] = {"id": "XV-9002", "description": "exec pair", "flags": ["exec"],
                           "transport": "exec", "expect": [{"migration": "completed"}]}
    vec = case_vector(parse_pair(raw, "t.yaml"), "channels/uri")
    assert vec.arguments["channels"][0]["addr"]["args"] == ["/bin/sh", "-c", "cat > {tmpdir}/stream"]
    assert vec.peer is not None and vec.peer.when == "after"
    assert vec.peer.arguments == {"uri": "exec:cat {tmpdir}/stream"}
    with pytest.raises(VectorError, match="transport must be one of"):
        parse_pair({**raw, "transport": "rdma"}, "t.yaml")
