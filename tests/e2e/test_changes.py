"""Behaviour changes between two real builds (``qmpcompat report changes``),
in every format, with the CI formats checked against their published schemas
and documented shapes."""

from __future__ import annotations

import json
import re
import shutil
from pathlib import Path
from typing import Any

import jsonschema
import pytest
from helpers.ciformats import GITHUB_COMMAND, check_ci_outputs
from helpers.shared import Shared
from helpers.suite_runner import MACHINERY, run_suite
from test_crash_verdict import crash_vectors

from qmpcompat.cli import main
from qmpcompat.report.change_rules import BEHAVIOUR_RULES
from qmpcompat.report.changes import Seen, classify, normalized

DATA = Path(__file__).resolve().parents[2] / "qmpcompat" / "data"


@pytest.fixture(scope="module")
def two_builds(shared: Shared) -> Path:
    """A real run of the oldest and the newest default build: vectors (one of
    them a known crash on the newer build) and the derived cases of a member
    the newer build no longer has (once per session)."""

    def make(tmp: Path) -> None:
        rc, out, _doc = run_suite(tmp, "-k", "not (test_derived and not type-blk)", suites="bookworm,sid",
                                  vectors=crash_vectors(tmp), paths=(*MACHINERY, "suites/test_derived.py"))
        assert rc == 0, out

    return shared.once("changes-run", make) / "reports" / "results.json"


def _labels(results: Path) -> list[str]:
    return [b["version"] for b in json.loads(results.read_text())["environment"]["binaries"]]


def test_changes_between_two_builds(two_builds: Path, tmp_path: Path,
                                    capsys: pytest.CaptureFixture[str]) -> None:
    old, new = _labels(two_builds)
    out = tmp_path / "out"
    rc = main(["report", "changes", old, new, "--results", str(two_builds), "-o", str(out)])
    text = capsys.readouterr().out
    assert rc == 1, text  # breaking changes, --fail-on breaking
    assert re.search(r"breaking NEW_CRASH +M-0041 \(known defect KD-0001\)", text), text
    assert "after:  crash: killed by signal 11" in text
    doc = json.loads((out / "behaviour-changes.json").read_text())
    jsonschema.validate(doc, json.loads((DATA / "behaviour-changes.schema.json").read_text()))
    changes = {c["case"]: c for c in doc["steps"][0]["changes"]}
    assert changes["M-0041"]["rule"] == "NEW_CRASH" and changes["M-0041"]["level"] == "breaking"
    removed = [c for c in changes.values() if c["kind"] == "derived"]
    assert removed and {c["rule"] for c in removed} == {"CASE_REMOVED"}  # 'blk' is gone in 9.1
    assert all("blk" in c["case"] for c in removed)
    check_ci_outputs(out, "behaviour-changes")
    sarif = json.loads((out / "behaviour-changes.sarif").read_text())
    located = next(r for r in sarif["runs"][0]["results"] if r["ruleId"] == "NEW_CRASH")
    where = located["locations"][0]["physicalLocation"]
    assert where["artifactLocation"]["uri"].endswith("channels-exec-file-rdma.yaml")
    assert where["region"]["startLine"] > 1
    assert "M-0041" in (out / "behaviour-changes.md").read_text()
    assert "M-0041" in (out / "behaviour-changes.html").read_text()
    # the same, as GitHub annotations
    assert main(["report", "changes", old, new, "--results", str(two_builds), "--format", "github"]) == 1
    lines = capsys.readouterr().out.splitlines()
    assert lines and all(GITHUB_COMMAND.match(line) for line in lines), lines[:3]
    assert any(line.startswith("::error file=") and "M-0041" in line for line in lines)
    # --min-level leaves the info changes (the cases only one build has... ) out of every output
    assert main(["report", "changes", old, new, "--results", str(two_builds), "--min-level", "breaking",
                 "--format", "json"]) == 1
    levels = {c["level"] for c in json.loads(capsys.readouterr().out)["steps"][0]["changes"]}
    assert levels == {"breaking"}


def test_two_results_files_and_bad_names(two_builds: Path, tmp_path: Path,
                                         capsys: pytest.CaptureFixture[str]) -> None:
    old, new = _labels(two_builds)
    kept = tmp_path / "previous-release.json"  # a CI artifact of an earlier run
    shutil.copy(two_builds, kept)
    assert main(["report", "changes", f"{kept}:{new}", f"{two_builds}:{new}", "--fail-on", "info"]) == 0
    assert "no behaviour changes" in capsys.readouterr().out
    assert main(["report", "changes", str(kept), new, "--results", str(two_builds)]) == 2
    assert "holds 2 builds" in capsys.readouterr().err
    assert main(["report", "changes", "9.9.9", new, "--results", str(two_builds)]) == 2
    assert f"no build '9.9.9' in this run; it has {old}, {new}" in capsys.readouterr().err


def test_run_reports_show_changes_between_builds(two_builds: Path) -> None:
    old, new = _labels(two_builds)
    summary = (two_builds.parent / "summary.md").read_text()
    assert "### Behaviour changes between builds" in summary
    assert f"#### {old} -> {new}:" in summary
    assert re.search(r"\| breaking \| NEW_CRASH \| M-0041 \(known defect KD-0001\) \|", summary)
    html = (two_builds.parent / "index.html").read_text()
    assert f'"behaviour_changes":[{{"base":"{old}","new":"{new}"' in html


@pytest.mark.parametrize(("before", "after", "rule"), [
    ({"result": "accept", "migration": "completed"}, {"result": "reject", "error_class": "GenericError",
                                                      "desc": "x"}, "NEWLY_REJECTED"),
    ({"result": "reject", "error_class": "GenericError", "desc": "x"}, {"result": "accept"},
     "NEWLY_ACCEPTED"),
    ({"result": "reject", "error_class": "GenericError", "desc": "x"},
     {"result": "reject", "error_class": "CommandNotFound", "desc": "x"}, "ERROR_CLASS_CHANGED"),
    ({"result": "reject", "error_class": "GenericError", "desc": "x"},
     {"result": "reject", "error_class": "GenericError", "desc": "y"}, "ERROR_TEXT_CHANGED"),
    ({"result": "accept", "migration": "completed"}, {"result": "accept", "migration": "failed"},
     "MIGRATION_NOW_FAILS"),
    ({"result": "accept", "migration": "failed"}, {"result": "accept", "migration": "completed"},
     "MIGRATION_NOW_COMPLETES"),
    ({"result": "accept"}, {"result": "hang", "detail": "QEMU did not answer within 1s"}, "NEW_HANG"),
    ({"result": "crash", "detail": "QEMU killed by signal 11"}, {"result": "accept"}, "CRASH_GONE"),
    ({"result": "crash", "detail": "QEMU killed by signal 11"},
     {"result": "crash", "detail": "QEMU killed by signal 6"}, "CRASH_CHANGED"),
    (None, {"result": "accept"}, "CASE_ADDED"),
])
def test_rules(before: dict[str, Any] | None, after: dict[str, Any], rule: str) -> None:
    assert classify(Seen.of({"observed": before}), Seen.of({"observed": after})) == rule


def test_run_to_run_noise_is_no_change() -> None:
    a = "Failed to connect to '127.0.0.1:37493' at /tmp/qmpv-5dmtxl92/absent.sock"
    b = "Failed to connect to '127.0.0.1:55121' at /tmp/qmpv-04lh7dkf/absent.sock"
    assert normalized(a) == normalized(b)
    assert normalized("ERROR:migration/cpr.c:267: x") == "ERROR:migration/cpr.c:267: x"
    one = {"result": "crash", "detail": "killed by signal 11\n  stderr: GLib: boom"}
    two = {"result": "crash", "detail": "killed by signal 11\n  stderr: qemu-system-x86_64: GLib: boom"}
    assert classify(Seen.of({"observed": one}), Seen.of({"observed": two})) is None


def test_every_rule_is_documented() -> None:
    doc = (Path(__file__).resolve().parents[2] / "docs" / "changes.md").read_text()
    for rule, (level, why) in BEHAVIOUR_RULES.items():
        assert f"| `{rule}` | {level} | {why} |" in doc, rule
