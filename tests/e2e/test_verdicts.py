"""Verdicts that cannot lie: a stopped or killed run never leaves a PASS,
merging and re-rendering keep the stop, an unusable reports directory is a
usage error before any QEMU starts, and every report file is valid and readable."""

from __future__ import annotations

import json
import os
import signal
import stat
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest
from helpers.shared import Shared
from helpers.suite_runner import SUITES, SuiteRun, basic_vectors, shared_run
from test_hygiene import _stalled_run

from qmpcompat.cli import main

OLD_PASS = "## qmpcompat: PASS\n\n- every vector behaved as expected on every binary\n"


def _old_pass(reports: Path) -> None:
    """What a previous, green run left in the reports directory."""
    reports.mkdir(parents=True)
    (reports / "summary.md").write_text(OLD_PASS)
    (reports / "results.json").write_text('{"format": 1, "verdict": "PASS"}\n')


@pytest.mark.parametrize("xdist", [False, True])
def test_sigterm_stops_the_run_like_ctrl_c(tmp_path: Path, xdist: bool,
                                           capsys: pytest.CaptureFixture[str]) -> None:
    _old_pass(tmp_path / "reports")
    # under xdist, two builds: a case for each worker
    run, _pid, _qemu = _stalled_run(tmp_path, *(["-n", "2"] if xdist else []),
                                    suites=SUITES if xdist else "sid")
    os.killpg(run.proc.pid, signal.SIGTERM)  # what a CI cancel does
    assert run.wait(60) != 0
    run.assert_clean()
    results = run.results()
    assert results["interrupted"]["cases_recorded"] < results["interrupted"]["cases_expected"]
    assert "the run was interrupted" in (tmp_path / "reports" / "summary.md").read_text()
    # render and merge keep the interruption and fail on it
    done = tmp_path / "reports" / "results.json"
    for action in (["render", str(done)], ["merge", str(done)]):
        out = tmp_path / action[0]
        assert main(["report", *action, "-o", str(out)]) == 1, action
        summary = (out / "summary.md").read_text()
        assert summary.startswith("## qmpcompat: FAIL") and "interrupted" in summary, summary
        assert json.loads((out / "results.json").read_text())["interrupted"]
        failures = [f.get("message") for f in ET.parse(out / "junit.xml").iter("failure")]
        assert "the run was interrupted: its results are incomplete" in failures
    capsys.readouterr()
    # nor does a comparison of builds take the cases it never ran for changes
    assert main(["report", "changes", "7.2", "11.1", "--results", str(done)]) == 2
    assert "the run was interrupted: the cases it did not record" in capsys.readouterr().err


def test_a_killed_run_leaves_no_old_pass(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    _old_pass(tmp_path / "reports")
    run, pid, _qemu = _stalled_run(tmp_path)
    os.kill(pid, signal.SIGKILL)
    run.wait(30)
    run.assert_clean()
    reports = tmp_path / "reports"
    assert run.results()["running"]["pid"] == pid
    summary = (reports / "summary.md").read_text()
    assert summary.startswith("## qmpcompat: FAIL") and "the run never finished" in summary
    failures = [f.get("message") for f in ET.parse(reports / "junit.xml").iter("failure")]
    assert failures == ["the run never finished: its results are incomplete"]
    assert main(["report", "render", str(reports / "results.json"), "-o", str(tmp_path / "r")]) == 1
    assert "the run never finished" in capsys.readouterr().out


def test_unwritable_reports_dir_is_a_usage_error(tmp_path: Path) -> None:
    blocker = tmp_path / "not-a-dir"
    blocker.write_text("a file where the reports directory should be\n")
    run = SuiteRun(tmp_path, "--qmpcompat-reports", str(blocker / "reports"),
                   vectors=basic_vectors(tmp_path))
    assert run.wait(120) == 4  # pytest's usage error
    run.assert_clean()
    assert f"--qmpcompat-reports {blocker / 'reports'}: cannot write reports there (Not a directory" \
        in run.output, run.output
    assert "QEMU binaries" not in run.output  # refused before selecting (or starting) any QEMU


def test_reports_are_valid_and_readable(tmp_path: Path, shared: Shared) -> None:
    ran = shared_run(shared, "sid")  # made under umask 022
    rc, text, doc = ran.rc, ran.output, ran.results
    assert rc == 0, text
    live = ran.path / "reports"
    for name in ("results.json", "summary.md", "index.html"):
        assert stat.S_IMODE((live / name).stat().st_mode) == 0o644, name
    old = os.umask(0o022)
    try:
        # QEMU echoes what it is sent: an error text may hold any control character.
        rec = next(r for r in doc["results"] if (r["observed"] or {}).get("result") == "reject")
        rec["observed"]["desc"] += " \x01\x1b[0m\x0c"
        rec["outcome"], rec["message"] = "failed", "observed \x02 instead"
        mangled = tmp_path / "mangled.json"
        mangled.write_text(json.dumps(doc))
        out = tmp_path / "out"
        assert main(["report", "render", str(mangled), "-o", str(out)]) == 1
    finally:
        os.umask(old)
    for name in ("results.json", "summary.md", "index.html", "junit.xml"):
        assert stat.S_IMODE((out / name).stat().st_mode) == 0o644, name
    root = ET.parse(out / "junit.xml").getroot()  # valid XML
    failure = next(root.iter("failure"))
    assert failure.get("message") == "observed \\x02 instead"
    assert "\\x01\\x1b[0m\\x0c" in (failure.text or "")
