"""The verdict tells the truth about crashes: summary.md, index.html and the
terminal say how many cases crashed or hung QEMU, known or not, and name each
crash and each known defect; the release gate can refuse known crashes too."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
import yaml
from helpers.suite_runner import REPO, basic_vectors, copy_notes, run_suite

from qmpcompat.cli import main

TESTS = str(Path(__file__).resolve().parents[1])  # helpers.fault_plugin
KNOWN_CRASH = "M-0041"  # KD-0001: an exec channel with an empty argv kills QEMU >= 8.2.2
# The runs select the cases the verdict is about (-k): the other vectors of the
# set would only add passing cases the tests do not read.


def crash_vectors(tmp_path: Path) -> Path:
    """The basic vectors, plus the file of a vector that crashes every 10.0+
    build (a recorded known defect) and that defect."""
    root = basic_vectors(tmp_path)
    shutil.copy(REPO / "vectors" / "migrate" / "channels-exec-file-rdma.yaml", root / "migrate")
    defects = yaml.safe_load((REPO / "vectors" / "known-defects.yaml").read_text())
    vectors = {v["id"] for f in root.glob("*/*.yaml") for v in yaml.safe_load(f.read_text())["vectors"]}
    defects["defects"] = [d for d in defects["defects"] if d["vector"] in vectors]
    (root / "known-defects.yaml").write_text(yaml.safe_dump(defects, sort_keys=False))
    return copy_notes(root)


def test_summary_names_known_and_unknown_crashes(tmp_path: Path) -> None:
    rc, out, doc = run_suite(tmp_path, "-p", "helpers.fault_plugin", "-k", f"{KNOWN_CRASH} or MI-0002",
                             suites="sid",
                             vectors=crash_vectors(tmp_path),
                             env={"QMPCOMPAT_TEST_FAULT": "crash:MI-0002", "PYTHONPATH": TESTS})
    assert rc == 1, out
    label = doc["environment"]["binaries"][0]["version"]
    summary = (tmp_path / "reports" / "summary.md").read_text()
    head = summary.splitlines()[0]
    assert head == "## qmpcompat: FAIL, QEMU crashed or hung in 2 cases (1 not a known defect)", head
    assert "- QEMU crashed in 2 cases: 1 known defect (KD-0001), 1 unknown" in summary
    row = f"| {KNOWN_CRASH} | crash | {label} | KD-0001 | QEMU killed by signal 11 after migrate |"
    assert row in summary
    assert f"| MI-0002 | crash | {label} | **none** |" in summary
    kd = next(d for d in doc["known_defects"] if d["id"] == "KD-0001")
    assert f"| KD-0001 | {kd['summary']} | crash | {label} | >=8.2.2 | {KNOWN_CRASH} | 1 |" in summary
    assert "qmpcompat: FAIL, QEMU crashed or hung in 2 cases" in out  # the terminal
    assert f"KD-0001 (crash on {label}): {kd['summary']}" in out
    html = (tmp_path / "reports" / "index.html").read_text()
    assert '"headline":"FAIL, QEMU crashed or hung in 2 cases (1 not a known defect)"' in html


@pytest.mark.parametrize("gate", [False, True])
def test_known_crash_passes_unless_the_gate_refuses_it(tmp_path: Path, gate: bool,
                                                       capsys: pytest.CaptureFixture[str]) -> None:
    args = ["--qmpcompat-strict", "--qmpcompat-fail-on-known", "crash"] if gate else []
    # trixie: a stable suite, whose index has no Valid-Until, so --qmpcompat-strict keeps it
    rc, out, doc = run_suite(tmp_path, "-k", KNOWN_CRASH, *args, suites="trixie",
                             vectors=crash_vectors(tmp_path))
    rec = next(r for r in doc["results"] if r["vector"] == KNOWN_CRASH)
    summary = (tmp_path / "reports" / "summary.md").read_text()
    if gate:
        assert rc == 1, out
        assert rec["outcome"] == "failed" and rec["defect"] == "KD-0001"
        assert "fails the release gate under --qmpcompat-fail-on-known crash" in rec["message"]
        assert summary.startswith("## qmpcompat: FAIL, QEMU crashed or hung in 1 case (all known defects)")
        assert "- 1 known-defect crash or hang fails the release gate (--qmpcompat-fail-on-known)" in summary
    else:
        assert rc == 0, out
        assert rec["outcome"] == "xfailed"
        assert summary.startswith(
            "## qmpcompat: PASS, but QEMU crashed or hung in 1 case (all known defects)")
    # a re-render says the same
    assert main(["report", "render", str(tmp_path / "reports" / "results.json"),
                 "-o", str(tmp_path / "again")]) == (1 if gate else 0)
    assert (tmp_path / "again" / "summary.md").read_text() == summary
    capsys.readouterr()
