"""Nothing leaks, nothing hangs: the real suite after a crash, a hang, Ctrl-C,
and SIGKILL of pytest or of an xdist worker leaves no QEMU and no temp dir, and
the report says what happened to the affected vector."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pytest
from helpers.suite_runner import MACHINERY, SUITES, SuiteRun, basic_vectors, processes_under, run_suite

from qmpcompat.provision import QemuBuild

TESTS = str(Path(__file__).resolve().parents[1])  # helpers.fault_plugin
FAULTY = "MI-0002"  # a reject vector: one QEMU per case
# The faulty vector and one that runs after it (the run must go on past the
# fault): the other vectors of the set would only repeat what these show.
AND_AFTER = ("-k", f"{FAULTY} or MI-0003")
ONE = "sid"  # one build: what a run does about a fault does not depend on how many it has


def _fault(spec: str) -> dict[str, str]:
    return {"QMPCOMPAT_TEST_FAULT": spec, "PYTHONPATH": TESTS}


def _records(results: dict, vector: str) -> list[dict]:  # type: ignore[type-arg]
    return [r for r in results["results"] if r["vector"] == vector]


@pytest.mark.parametrize("xdist", [False, True])
def test_crash_is_reported_and_cleaned_up(tmp_path: Path, xdist: bool) -> None:
    rc, out, results = run_suite(tmp_path, "-p", "helpers.fault_plugin", *AND_AFTER,
                                 *(["-n", "2"] if xdist else []), env=_fault(f"crash:{FAULTY}"),
                                 vectors=basic_vectors(tmp_path), suites=ONE)
    assert rc == 1, out
    hit = _records(results, FAULTY)
    assert len(hit) == 1 and all(r["outcome"] == "failed" for r in hit)
    assert all(r["observed"]["result"] == "crash" for r in hit)
    assert "killed by signal 11" in hit[0]["message"]
    others = [r for r in results["results"] if r["vector"] != FAULTY]
    assert len(others) == len(results["results"]) - 1 == 1  # the rest of the run went on
    assert not any(r["outcome"] == "failed" and (r.get("observed") or {}).get("result") == "crash"
                   for r in others)  # (known defects may crash QEMU too: those are xfailed)
    assert "QEMU crash or hang" in (tmp_path / "reports" / "summary.md").read_text()


def test_hang_is_killed_and_reported(tmp_path: Path) -> None:
    start = time.monotonic()
    rc, out, results = run_suite(tmp_path, "-p", "helpers.fault_plugin", "--qmpcompat-timeout", "1",
                                 "-k", FAULTY, env=_fault(f"hang:{FAULTY}"),
                                 vectors=basic_vectors(tmp_path), suites=ONE)
    assert rc == 1, out
    hit = _records(results, FAULTY)
    assert [r["observed"]["result"] for r in hit] == ["hang"]
    assert "did not answer within 1s" in hit[0]["message"]
    assert time.monotonic() - start < 60


def _stalled_run(tmp_path: Path, *args: str, case: str = FAULTY, suites: str = ONE,
                 paths: tuple[str, ...] = MACHINERY) -> tuple[SuiteRun, int, int]:
    """A run of ``case`` alone (on each build of ``suites``) stopped inside it
    with a QEMU alive; returns it, the pid of the process running the case, and
    the QEMU's pid."""
    marker = tmp_path / "stalled"
    run = SuiteRun(tmp_path, "-p", "helpers.fault_plugin", "-k", case, *args,
                   env=_fault(f"stall:{case}:{marker}"), vectors=basic_vectors(tmp_path),
                   suites=suites, paths=paths)
    deadline = time.monotonic() + 120
    while not marker.exists() or not marker.read_text():
        assert run.proc.poll() is None, run.output
        assert time.monotonic() < deadline, "the run never reached the stalled vector"
        time.sleep(0.05)
    runner_pid, qemu_pid = map(int, marker.read_text().split())
    assert processes_under(run.tmpdir), "a QEMU should be alive at this point"
    return run, runner_pid, qemu_pid


@pytest.mark.parametrize("xdist", [False, True])
def test_ctrl_c(tmp_path: Path, xdist: bool) -> None:
    # under xdist, two builds: a case for each worker
    run, _pid, qemu_pid = _stalled_run(tmp_path, *(["-n", "2"] if xdist else []),
                                       suites=SUITES if xdist else ONE)
    os.killpg(run.proc.pid, signal.SIGINT)  # what a terminal does on Ctrl-C
    assert run.wait(60) != 0
    run.assert_clean()
    assert not Path(f"/proc/{qemu_pid}").exists() or \
        Path(f"/proc/{qemu_pid}/stat").read_text().split(")")[1].split()[0] == "Z"
    results = run.results()
    assert results["interrupted"]["cases_recorded"] < results["interrupted"]["cases_expected"]
    assert "the run was interrupted" in (tmp_path / "reports" / "summary.md").read_text()


def test_sigkill_of_pytest(tmp_path: Path) -> None:
    run, pid, _qemu = _stalled_run(tmp_path)
    assert pid == run.proc.pid
    os.kill(pid, signal.SIGKILL)
    run.wait(30)
    run.assert_clean()  # QEMU died with its parent; the reaper removed the temp dirs


def test_sigkill_of_an_xdist_worker(tmp_path: Path) -> None:
    run, worker, _qemu = _stalled_run(tmp_path, "-n", "2", suites=SUITES)
    assert worker != run.proc.pid
    os.kill(worker, signal.SIGKILL)
    rc = run.wait(300)
    run.assert_clean()
    assert rc == 1, run.output
    hit = _records(run.results(), FAULTY)
    crashed = [r for r in hit if r["outcome"] == "error"]
    assert len(crashed) == 1 and "crashed" in crashed[0]["message"], hit
    assert len(hit) == 2  # the other build's case of the vector still ran


def test_sigkill_of_an_xdist_worker_in_a_derived_case(tmp_path: Path) -> None:
    """A derived case lost with its worker gets a record too (rebuilt from its test id)."""
    case = "D-migrate-missing-uri"  # derived on 7.2 only: uri is mandatory there
    # bookworm alone, the build the case is derived on: one case, one worker (a second has nothing to run)
    run, worker, _qemu = _stalled_run(tmp_path, "-n", "1", case=case, suites="bookworm",
                                      paths=("suites/test_derived.py",))
    os.kill(worker, signal.SIGKILL)
    rc = run.wait(300)
    run.assert_clean()
    assert rc == 1, run.output
    hit = _records(run.results(), case)
    assert len(hit) == 1 and hit[0]["outcome"] == "error" and "crashed" in hit[0]["message"], hit
    assert hit[0]["flags"] == ["derived", "missing"] and hit[0]["command"] == "migrate", hit


def test_sigkill_of_a_hunt_leaves_nothing(newest: QemuBuild, tmp_path: Path) -> None:
    """The hunt's main process killed with SIGKILL mid-hunt: its worker processes,
    their QEMUs and every private dir they made (QEMU, case, floor and Hypothesis
    dirs) are gone soon after."""
    tmp = Path(tempfile.mkdtemp(prefix="qh-"))  # short: QEMU's unix sockets go here
    cmd = [sys.executable, "-m", "qmpcompat", "hunt", "--only", newest.label, "--budget", "120s",
           "--seed", "7", "--out", str(tmp_path / "out"), "--workers", "2", "--floor-every", "3"]
    proc = subprocess.Popen(cmd, env={**os.environ, "TMPDIR": str(tmp)}, cwd=tmp_path,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 120
        seen: set[str] = set()
        while True:  # until the workers hunt: every kind of dir the hunt makes was seen
            now = {p.name[:5] for p in tmp.iterdir()}
            seen |= now
            if {"qmpv-", "qmph-", "qmpf-"} <= seen and "qmph-" in now:
                break
            assert proc.poll() is None, "the hunt ended before it was killed"
            assert time.monotonic() < deadline, f"the hunt made only {seen}"
            time.sleep(0.02)
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait(10)
        deadline = time.monotonic() + 20
        while (left := [p.name for p in tmp.iterdir()]) or processes_under(tmp):
            assert time.monotonic() < deadline, f"left behind: {left} {processes_under(tmp)}"
            time.sleep(0.1)
    finally:
        if proc.poll() is None:
            proc.kill()
        shutil.rmtree(tmp, ignore_errors=True)
