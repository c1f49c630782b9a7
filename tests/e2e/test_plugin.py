"""The pytest plugin on its own: ``-p qmpcompat`` from any directory, dormant
unless asked for, and the vector set loaded and linted once per run (the xdist
workers receive it from the controller)."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

from helpers.suite_runner import REPO, SUITES, basic_vectors

from qmpcompat.provision import QemuBuild

LOAD_SPY = '''
import os
from qmpcompat.pytest_plugin import state

_load = state.load

def _spy(*args, **kwargs):
    with open(os.environ["QMPCOMPAT_TEST_LOADS"], "a") as fh:
        fh.write(f"{os.getpid()}\\n")
    return _load(*args, **kwargs)

state.load = _spy

from qmpcompat.schema.sources import live

class _Introspecting(live.Qemu):
    def start(self, *args, **kwargs):
        with open(os.environ["QMPCOMPAT_TEST_INTROSPECTS"], "a") as fh:
            fh.write(f"{os.getpid()}\\n")
        return super().start(*args, **kwargs)

live.Qemu = _Introspecting
'''


def _pytest(cwd: Path, *args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "pytest", "-p", "no:cacheprovider", *args],
                          cwd=cwd, capture_output=True, text=True, timeout=600,
                          env={**os.environ, **(env or {})})


def test_plugin_runs_a_suite_outside_the_checkout(tmp_path: Path) -> None:
    """A suite directory anywhere (not named suites/, no conftest.py) runs with -p qmpcompat."""
    mine = tmp_path / "conformance"
    mine.mkdir()
    shutil.copy(REPO / "suites" / "test_vectors.py", mine / "test_vectors.py")
    reports = tmp_path / "out"
    proc = _pytest(tmp_path, "-p", "qmpcompat", "--qmpcompat-suites", "bookworm", "-k", "MI-0003",
                   "--qmpcompat-vectors", str(basic_vectors(tmp_path)),
                   "--qmpcompat-reports", str(reports), "conformance")
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "qmpcompat: 1 QEMU binaries" in proc.stdout
    assert "1 passed" in proc.stdout and (reports / "results.json").exists()


def test_plugin_stays_dormant_unless_asked(tmp_path: Path) -> None:
    (tmp_path / "test_plain.py").write_text("def test_plain():\n    pass\n\n"
                                            "def test_wants_run(qmpcompat_run):\n    pass\n")
    proc = _pytest(tmp_path, "test_plain.py")
    assert proc.returncode == 1, proc.stdout
    assert "1 passed" in proc.stdout and "qmpcompat: " not in proc.stdout
    assert "the qmpcompat plugin is not switched on for this run" in proc.stdout
    assert not (tmp_path / "reports").exists()


def test_workers_do_not_load_the_vectors_or_read_schemas_again(tmp_path: Path) -> None:
    """The controller loads the vectors and reads each build's schema once; the
    workers parametrize the derived cases from the schema they were handed."""
    (tmp_path / "load_spy.py").write_text(LOAD_SPY)
    loads, introspects = tmp_path / "loads", tmp_path / "introspects"
    # (without Hypothesis's plugin, as SuiteRun runs: it costs each of the three
    # processes about 1 s of CPU, and what the workers receive does not depend on it)
    proc = _pytest(REPO, "-p", "no:hypothesispytest", "-p", "load_spy", "-n", "2",
                   "--qmpcompat-suites", SUITES,
                   "--qmpcompat-vectors", str(basic_vectors(tmp_path)), "-k", "MI-0003",
                   "--qmpcompat-reports", str(tmp_path / "reports"), "suites/test_vectors.py",
                   "suites/test_derived.py",
                   env={"PYTHONPATH": str(tmp_path), "QMPCOMPAT_TEST_LOADS": str(loads),
                        "QMPCOMPAT_TEST_INTROSPECTS": str(introspects)})
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "2 passed" in proc.stdout
    assert len(loads.read_text().split()) == 1  # the controller only
    pids = introspects.read_text().split()
    assert set(pids) == set(loads.read_text().split()) and len(pids) == len(SUITES.split(","))


SIGTERM_CHECK = '''
import signal, sys
import pytest

def mine(signum, frame):
    pass

signal.signal(signal.SIGTERM, mine)
code = pytest.main(sys.argv[1:])
assert signal.getsignal(signal.SIGTERM) is mine, signal.getsignal(signal.SIGTERM)
print("handler restored")
raise SystemExit(code)
'''


def test_a_run_gives_back_the_sigterm_handler_it_found(tmp_path: Path, newest: QemuBuild) -> None:
    """The plugin stops a run on SIGTERM like Ctrl-C while it runs, and puts back the
    handler it found when the run ends (pytest.main in a process that goes on)."""
    (tmp_path / "check.py").write_text(SIGTERM_CHECK)
    proc = subprocess.run([sys.executable, str(tmp_path / "check.py"), "-p", "no:cacheprovider",
                           "-p", "qmpcompat", "--qemu", newest.binary, "--qmpcompat-no-provision",
                           "--qmpcompat-reports", str(tmp_path / "reports"),
                           "--qmpcompat-vectors", str(basic_vectors(tmp_path)), "-k", "MI-0003",
                           str(REPO / "suites" / "test_vectors.py")],
                          cwd=tmp_path, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0 and "handler restored" in proc.stdout, proc.stdout + proc.stderr
