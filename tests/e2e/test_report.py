"""Reports from real runs: summary, JUnit, merge of separate runs, bad input."""

from __future__ import annotations

import json
import xml.etree.ElementTree as ET
from pathlib import Path
from typing import Any

import pytest
from helpers.shared import Shared
from helpers.suite_runner import basic_vectors, run_suite, shared_run

from qmpcompat.cli import main
from qmpcompat.errors import ReportError
from qmpcompat.reaper import OWNER_PREFIX, owner
from qmpcompat.report.merge import merge
from qmpcompat.report.results import observed_key, read_results
from qmpcompat.report.summary import render_summary, verdict
from qmpcompat.safety import ALLOW_EXEC_WARNING


def _matrix(doc: dict[str, Any]) -> dict[tuple[str, str], tuple[str, str]]:
    return {(r["vector"], r["qemu"]): (r["outcome"], observed_key(r)) for r in doc["results"]}


@pytest.fixture(scope="module")
def runs(shared: Shared) -> dict[str, Path]:
    """Three real runs: the oldest build alone, the newest alone, and both (made
    once per session, for the other tests that read the same runs too)."""
    out = {}
    for name, suites in (("old", "bookworm"), ("new", "sid"), ("both", "bookworm,sid")):
        ran = shared_run(shared, suites)
        assert ran.rc == 0, ran.output
        out[name] = ran.path / "reports" / "results.json"
    return out


def test_run_writes_every_report(runs: dict[str, Path]) -> None:
    reports = runs["both"].parent
    assert {p.name for p in reports.iterdir()} >= {"results.json", "summary.md", "index.html",
                                                   "junit.xml"}
    summary = (reports / "summary.md").read_text()
    assert summary.startswith("## qmpcompat: PASS")
    doc = read_results(runs["both"])
    for label in doc["totals"]:
        assert f"| {label} |" in summary
    timeline = doc["schema_timeline"]
    origins = {r["version"]: r["origin"] for r in timeline["releases"]}
    assert origins["8.2.0"] == "recorded" and all(origins[v] == "binary" for v in doc["totals"])
    assert "### Schema history" in summary
    assert "| 8.2.2 | observed | `migrate/arg-type/uri` became optional |" in summary
    # Where each build, its modules and its firmware came from (its self-check).
    assert ("| QEMU | build | modules | firmware | host's QEMU dirs | added to it | self-check |"
            in summary)
    for b in doc["environment"]["binaries"]:
        prov = b["provenance"]
        checked = f"of {prov['remembered']}, taken from an earlier run" if prov["remembered"] \
            else "this run's"
        row = [line for line in summary.splitlines()
               if line.startswith(f"| {b['version']} | {b['package']}, {b['origin']} | ")]
        assert len(row) == 1 and row[0].endswith(f" | {checked} |"), row
        assert prov["isolation"] in ("namespace", "nothing to hide") and not prov["outside"]
        assert prov["modules"] and any(f.startswith("bios-256k.bin=") for f in prov["firmware"])
    assert "bios-256k.bin from /" in summary


def test_merge_of_separate_runs_equals_one_run(runs: dict[str, Path], tmp_path: Path) -> None:
    out = tmp_path / "merged"
    assert main(["report", "merge", str(runs["old"]), str(runs["new"]), "-o", str(out)]) == 0
    merged = read_results(out / "results.json")
    both = read_results(runs["both"])
    assert _matrix(merged) == _matrix(both)
    assert merged["totals"] == both["totals"]
    assert [b["version"] for b in merged["environment"]["binaries"]] == \
        [b["version"] for b in both["environment"]["binaries"]]
    assert merged["disagreements"] == []
    assert merged["schema_timeline"] == both["schema_timeline"]
    assert {p.name for p in out.iterdir()} == {"results.json", "summary.md", "index.html", "junit.xml",
                                               f"{OWNER_PREFIX}{owner()}"}  # (this process's lock)


def test_merge_reports_disagreement(runs: dict[str, Path], tmp_path: Path) -> None:
    doc = json.loads(runs["old"].read_text())
    flipped = next(r for r in doc["results"] if r["outcome"] == "passed")
    flipped["outcome"] = "failed"
    flipped["observed"] = {"result": "crash", "detail": "QEMU killed by signal 11"}
    other = tmp_path / "other.json"
    other.write_text(json.dumps(doc))
    merged = merge([(runs["old"], read_results(runs["old"])), (other, read_results(other))])
    assert [(d["vector"], d["qemu"]) for d in merged["disagreements"]] == \
        [(flipped["vector"], flipped["qemu"])]
    v = verdict(merged)
    assert not v.ok and "results differ between runs of the same build" in " ".join(v.reasons)
    assert "### Runs that disagree" in render_summary(merged)


def test_junit_from_results(runs: dict[str, Path], tmp_path: Path) -> None:
    doc = json.loads(runs["old"].read_text())
    doc["results"][0]["outcome"] = "failed"
    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps(doc))
    assert main(["report", "render", str(bad), "-o", str(tmp_path / "out")]) == 1
    cases = ET.parse(tmp_path / "out" / "junit.xml").findall(".//testcase")
    assert len(cases) == len(doc["results"])
    for case, rec in zip(cases, sorted(doc["results"], key=lambda r: (r["qemu"], r["vector"])),
                         strict=True):
        props = {p.get("name"): p.get("value") for p in case.iter("property")}
        ran = {"qemu_run"} if rec.get("observed") else set()
        assert set(props) == {"vector", "qemu_version", "binary", "outcome"} | ran
        if ran:
            assert props["qemu_run"] in ("fresh", "forked", "reused")
    failure = cases[0].find("failure")
    assert failure is not None and "expected:" in (failure.text or "") and "observed:" in (failure.text or "")
    assert (tmp_path / "out" / "summary.md").read_text().startswith("## qmpcompat: FAIL")


@pytest.mark.parametrize(("mangle", "message"), [
    (lambda text: text[: len(text) // 2], "truncated"),
    (lambda text: text.replace('"format": 1', '"format": 2'), "results format 2"),
    (lambda text: "[1, 2]", "not a qmpcompat results file"),
    (lambda text: text.replace('"results":', '"resultz":'), "'results' is a required property"),
])
def test_bad_results_file(runs: dict[str, Path], tmp_path: Path, mangle: Any, message: str,
                          capsys: pytest.CaptureFixture[str]) -> None:
    bad = tmp_path / "bad.json"
    bad.write_text(mangle(runs["old"].read_text()))
    out = tmp_path / "out"
    assert main(["report", "merge", str(runs["new"]), str(bad), "-o", str(out)]) == 2
    err = capsys.readouterr().err
    assert str(bad) in err and message in err
    assert not out.exists(), "nothing may be written when an input is bad"
    with pytest.raises(ReportError):
        read_results(bad)


def test_incompatible_vector_sets(runs: dict[str, Path], tmp_path: Path,
                                  capsys: pytest.CaptureFixture[str]) -> None:
    vectors = basic_vectors(tmp_path / "v")
    mig = vectors / "migrate" / "basic.yaml"
    mig.write_text(mig.read_text().replace("both sides complete", "both sides finish"))
    rc, text, _doc = run_suite(tmp_path, "-k", "MI-0003", suites="sid", vectors=vectors)
    assert rc == 0, text
    other = tmp_path / "reports" / "results.json"
    assert main(["report", "merge", str(runs["old"]), str(other), "-o", str(tmp_path / "o")]) == 2
    assert "different vector sets cannot be merged" in capsys.readouterr().err


def test_allow_exec_is_said_in_the_terminal_and_every_report(tmp_path: Path,
                                                            runs: dict[str, Path]) -> None:
    rc, text, doc = run_suite(tmp_path / "run", "--qmpcompat-allow-exec", "-k", "MI-0003",
                              suites="sid", vectors=basic_vectors(tmp_path))
    assert rc == 0, text
    assert text.count(ALLOW_EXEC_WARNING) >= 2  # the header and the end of the run
    reports = tmp_path / "run" / "reports"
    assert ALLOW_EXEC_WARNING in doc["environment"]["warnings"]
    assert ALLOW_EXEC_WARNING in (reports / "summary.md").read_text()
    assert ALLOW_EXEC_WARNING in (reports / "index.html").read_text()
    merged = merge([(reports / "results.json", doc), (runs["old"], read_results(runs["old"]))])
    assert ALLOW_EXEC_WARNING in merged["environment"]["warnings"]
    assert ALLOW_EXEC_WARNING not in read_results(runs["old"])["environment"].get("warnings", [])
