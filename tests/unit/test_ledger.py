"""The inference ledger: how far a release's inferred claims held when a build of
it was first run, measured from a run's results, written once per release by
``qmpcompat observe`` (or ``qmpcompat ledger``), checked by lint, and shown in
every report and the history view."""

from __future__ import annotations

import copy
import json
import shutil
from pathlib import Path
from typing import Any

from qmpcompat.claims.ledger import Entry, add, by_release, first_runs, load_ledger, measure
from qmpcompat.cli import main
from qmpcompat.report.html import render_html
from qmpcompat.report.summary import render_summary
from qmpcompat.vectors.lint import lint
from qmpcompat.vectors.load import default_root, load

REPO = Path(__file__).resolve().parents[2]


def _record(vector: str, version: str, outcome: str, basis: str, **extra: Any) -> dict[str, Any]:
    return {"vector": vector, "command": "migrate", "flags": [], "description": "d", "file": "f",
            "qemu": version, "qemu_version": version, "package": "p", "binary": "b",
            "outcome": outcome, "expected": f"what {vector} claims", "message": f"{vector} did",
            "defect": None, "observed": {"result": "reject"}, "seconds": 0.0,
            "basis": {"kind": basis, "source": "s"}, **extra}


def _doc(revision: str = "r1") -> dict[str, Any]:
    return {
        "format": 1, "started": "2026-12-06T10:00:00Z", "seconds": 1.0,
        "environment": {"host": "h", "qmpcompat": "0", "vector_revision": revision,
                        "binaries": [{"binary": "/q", "version": "9.9.9", "version_line": "",
                                      "package": "Debian 1:9.9.9", "distribution": "Example 1"}],
                        "problems": []},
        "totals": {}, "claims": {},
        "results": [_record("M-1", "9.9.9", "passed", "inferred"),
                    _record("M-2", "9.9.9", "xfailed", "inferred"),
                    _record("M-3", "9.9.9", "failed", "inferred"),
                    _record("M-4", "9.9.9", "passed", "schema"),
                    _record("M-5", "1.0.0", "failed", "inferred")],
        "pairs": [{"vector": "XV-1", "form": "uri/uri", "transport": "unix", "machine": "pc",
                   "source": "9.9.9", "source_version": "9.9.9", "destination": "1.0.0",
                   "destination_version": "1.0.0", "outcome": "passed",
                   "basis": {"kind": "inferred", "source": "s"}}],
    }


def test_measure_counts_what_held_and_what_did_not() -> None:
    entry = measure(_doc(), "9.9.9")  # type: ignore[arg-type]
    assert (entry.inferred, entry.held) == (4, 3)  # M-1, M-2 (its known defect), XV-1; not M-4
    assert [w.case for w in entry.wrong] == ["M-3"]
    assert entry.wrong[0].claimed == "what M-3 claims" and entry.wrong[0].did == "M-3 did"
    assert entry.build == "Example 1 1:9.9.9" and entry.revision == "r1"
    assert "3 of 4 inferred claims held (75%)" in entry.summary()
    assert Entry.from_json(dict(entry.to_json())) == entry  # type: ignore[arg-type]


def _vectors(tmp_path: Path) -> Path:
    root = tmp_path / "vectors"
    shutil.copytree(default_root(), root)
    return root


def test_a_release_keeps_its_first_entry(tmp_path: Path) -> None:
    root = _vectors(tmp_path)
    (root / "inference-ledger.yaml").unlink(missing_ok=True)
    first = measure(_doc(), "9.9.9")  # type: ignore[arg-type]
    assert add(root, [first]) == [first]
    later = Entry("9.9.9", "x", "2027-01-01", "r2", 1, 1)
    assert add(root, [later]) == []
    assert load_ledger(root) == [first]
    assert lint(root) == []  # the written file is canonical and within its schema


def test_ledger_refuses_a_release_the_run_had_no_build_of(tmp_path: Path, capsys: Any) -> None:
    root = _vectors(tmp_path)
    results = tmp_path / "results.json"
    results.write_text(json.dumps(_doc(load(root).revision())))
    before = (root / "inference-ledger.yaml").read_text()
    assert main(["ledger", str(results), "--vectors", str(root), "--release", "9.9.8"]) == 2
    assert "has no build of 9.9.8 (it ran 9.9.9)" in capsys.readouterr().err
    nothing = Entry("9.9.9", "x", "2027-01-01", "r2", 0, 0)  # no inferred claim judged on it
    assert add(root, [nothing]) == []
    assert (root / "inference-ledger.yaml").read_text() == before


def test_first_runs_are_the_releases_no_claim_has_seen(tmp_path: Path) -> None:
    vs = load()
    doc = _doc(vs.revision())
    assert first_runs(doc, vs) == ["9.9.9"]  # type: ignore[arg-type]
    doc["environment"]["binaries"][0]["version"] = "11.1.3"
    assert first_runs(doc, vs) == []  # type: ignore[arg-type]


def test_observe_writes_the_ledger_of_a_release_seen_first(tmp_path: Path,
                                                           capsys: Any) -> None:
    root = _vectors(tmp_path)
    doc = _doc(load(root).revision())
    results = tmp_path / "results.json"
    results.write_text(json.dumps(doc))
    before = (root / "inference-ledger.yaml").read_text()
    assert main(["observe", str(results), "--vectors", str(root), "--dry-run"]) == 0
    assert (root / "inference-ledger.yaml").read_text() == before
    assert "first run of 9.9.9: 3 of 4 inferred claims held" in capsys.readouterr().out
    assert main(["observe", str(results), "--vectors", str(root)]) == 0
    assert [e.release for e in load_ledger(root)] == ["8.2.2", "9.9.9"]


def test_lint_refuses_a_broken_ledger(tmp_path: Path) -> None:
    root = _vectors(tmp_path)
    text = (root / "inference-ledger.yaml").read_text().replace("held: 181", "held: many")
    (root / "inference-ledger.yaml").write_text(text)
    assert any("inference-ledger.yaml" in str(p) and "held" in str(p) for p in lint(root))


def test_reports_and_history_show_the_ledger(tmp_path: Path) -> None:
    ledger = load_ledger(default_root())
    assert any(e.release == "8.2.2" and e.inferred == 189 and e.held == 181 for e in ledger)
    doc = copy.deepcopy(_doc())
    doc["claims"] = {"9.9.9": {"observed": 1, "schema": 1, "inferred": 4}}
    doc["inference_ledger"] = [e.to_json() for e in ledger]
    assert "8.2.2: 181 of 189 held when Ubuntu 24.04 LTS" in render_summary(doc)  # type: ignore[arg-type]
    assert '"inference_ledger"' in render_html(doc)  # type: ignore[arg-type]
    assert by_release(ledger)["8.2.2"].startswith("181 of 189 inferred claims held")
    out = tmp_path / "out"
    assert main(["history", "--format", "markdown", "--output", str(out)]) == 0
    assert "181 of 189 inferred claims held" in (out / "schema-history.md").read_text()
