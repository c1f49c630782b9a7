"""The zygote the e2e tier forks its whole runs from (``helpers.zygote``): a
forked run sees what a fresh interpreter started the same way sees, ends and
takes signals as one does, and a run a fork could get wrong starts afresh."""

from __future__ import annotations

import gc
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from helpers import zygote

# A test that writes down what its process sees: the facts a fork could get
# wrong if it kept anything of the zygote's.
PROBE = '''
import json, os, signal, sys, tempfile

def test_probe():
    facts = {
        "cwd": os.getcwd(),
        "argv": sys.argv[1:],
        "main": getattr(sys.modules["__main__"], "__spec__").name,
        "tmpdir": tempfile.gettempdir(),
        "env": [os.environ.get("PROBE_VALUE"), os.environ.get("HOME")],
        "path": sys.path,
        "helpers": sorted(m for m in sys.modules if m.split(".")[0] == "helpers"),
        "sigint": getattr(signal.getsignal(signal.SIGINT), "name", None)
                  or signal.getsignal(signal.SIGINT).__name__,
        "session_leader": os.getsid(0) == os.getpid(),
        "stdout_is_file": not os.isatty(1),
    }
    with open(os.environ["PROBE_OUT"], "w") as out:
        json.dump(facts, out)
    if os.environ.get("PROBE_SLEEP"):
        import time
        time.sleep(float(os.environ["PROBE_SLEEP"]))
'''

# What a run holds (its pipes, pidfd and connection, the zygote's socket) is let
# go of even when a test drops it: Python's warning of a leak fails the test.
pytestmark = pytest.mark.filterwarnings("error::pytest.PytestUnraisableExceptionWarning",
                                        "error::ResourceWarning")


@pytest.fixture(autouse=True)
def _zygote_on(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(zygote.PLAIN, raising=False)  # these tests hold the zygote itself


def _pytest(tmp_path: Path, name: str) -> list[str]:
    probe = tmp_path / "test_probe.py"
    probe.write_text(PROBE)
    return [sys.executable, "-m", "pytest", "-p", "no:cacheprovider", "-p", "no:hypothesispytest", "-q",
            str(probe), "-k", name]


def _env(tmp_path: Path, out: Path, **more: str) -> dict[str, str]:
    tmp = tmp_path / "tmp"
    tmp.mkdir(exist_ok=True)
    mine = {k: v for k, v in os.environ.items() if k != "HOME"}  # one the zygote has, this run not
    return {**mine, "TMPDIR": str(tmp), "PROBE_OUT": str(out), "PROBE_VALUE": "42",
            "PYTHONPATH": str(tmp_path / "extra"), **more}


@pytest.mark.parametrize("ignoring_sigint", [False, True])
def test_a_forked_run_sees_what_a_fresh_one_sees(tmp_path: Path, ignoring_sigint: bool) -> None:
    """... and a run started while this process ignores SIGINT ignores it too
    (as a run from a background job does), unless asked to take it."""
    seen = {}
    before = signal.signal(signal.SIGINT, signal.SIG_IGN if ignoring_sigint else signal.default_int_handler)
    try:
        for plain in (True, False):
            out = tmp_path / f"facts-{plain}.json"
            with open(tmp_path / f"log-{plain}", "w") as log:
                proc = zygote.popen(_pytest(tmp_path, "probe"), cwd=tmp_path, env=_env(tmp_path, out),
                                    stdout=log, stderr=subprocess.STDOUT, start_new_session=not plain,
                                    plain=plain)
                assert isinstance(proc, subprocess.Popen if plain else zygote.Forked)
                assert proc.wait(60) == 0, (tmp_path / f"log-{plain}").read_text()
            assert "1 passed" in (tmp_path / f"log-{plain}").read_text()
            seen[plain] = json.loads(out.read_text())
    finally:
        signal.signal(signal.SIGINT, before)
    fresh, forked = seen[True], seen[False]
    assert not fresh["session_leader"] and forked["session_leader"]  # as each was asked
    del fresh["session_leader"], forked["session_leader"]
    assert forked == fresh
    assert fresh["cwd"] == str(tmp_path) and fresh["tmpdir"] == str(tmp_path / "tmp")
    assert fresh["env"] == ["42", None] and fresh["path"][1] == str(tmp_path / "extra")
    assert fresh["sigint"] == ("SIG_IGN" if ignoring_sigint else "default_int_handler")


def test_exit_status_output_and_signals(tmp_path: Path) -> None:
    out = tmp_path / "facts.json"
    failed = zygote.run([*_pytest(tmp_path, "nothing_matches"), "--no-such-option"], cwd=tmp_path,
                        env=_env(tmp_path, out))
    assert failed.returncode == 4 and "unrecognized arguments: --no-such-option" in failed.stderr
    done = zygote.run(_pytest(tmp_path, "probe"), cwd=tmp_path, env=_env(tmp_path, out))
    assert done.returncode == 0 and "1 passed" in done.stdout, done.stdout + done.stderr
    for sig, status in ((signal.SIGINT, 2), (signal.SIGKILL, -signal.SIGKILL)):
        out.unlink()
        with open(tmp_path / "log", "w") as log:
            proc = zygote.popen(_pytest(tmp_path, "probe"), cwd=tmp_path, stdout=log,
                                stderr=subprocess.STDOUT, sigint_default=True,
                                env=_env(tmp_path, out, PROBE_SLEEP="60"))
        assert isinstance(proc, zygote.Forked)
        deadline = time.monotonic() + 60
        while not out.exists():  # the test is sleeping
            assert proc.poll() is None and time.monotonic() < deadline
            time.sleep(0.05)
        with pytest.raises(subprocess.TimeoutExpired):
            proc.wait(0.1)
        proc.send_signal(sig)
        assert proc.wait(30) == status, (tmp_path / "log").read_text()  # pytest says 2: interrupted
    with pytest.raises(subprocess.TimeoutExpired):
        zygote.run(_pytest(tmp_path, "probe"), cwd=tmp_path, timeout=1,
                   env=_env(tmp_path, out, PROBE_SLEEP="60"))


@pytest.mark.parametrize("change", [{"PYTHONHASHSEED": "7"}, {"PATH": "/usr/bin:/bin"},
                                    {"LC_ALL": "C"}, {zygote.PLAIN: "1"}])
def test_what_a_fork_could_get_wrong_starts_afresh(tmp_path: Path, change: dict[str, str]) -> None:
    out = tmp_path / "facts.json"
    started = [zygote.popen(_pytest(tmp_path, "probe"), cwd=tmp_path, env=_env(tmp_path, out, **change),
                            stdout=subprocess.DEVNULL),
               zygote.popen(_pytest(tmp_path, "probe"), cwd=tmp_path, env=_env(tmp_path, out),
                            stdout=subprocess.DEVNULL),
               zygote.popen([sys.executable, "-c", "pass"], cwd=tmp_path, env=_env(tmp_path, out))]
    for proc in started:
        proc.kill()
        proc.wait(30)
    assert [type(p) for p in started] == [subprocess.Popen, zygote.Forked, subprocess.Popen]


def test_the_zygote_ends_with_the_process_that_started_it(tmp_path: Path) -> None:
    code = ("import os, subprocess, sys; sys.path.insert(0, sys.argv[1]); from helpers import zygote; "
            "p = zygote.popen([sys.executable, '-m', 'pytest', '--version'], cwd='/', "
            "stdout=subprocess.DEVNULL); assert isinstance(p, zygote.Forked) and p.wait(60) == 0; "
            "print(zygote.zygote_pid())")
    env = {k: v for k, v in os.environ.items() if k != zygote.PLAIN}
    done = subprocess.run([sys.executable, "-c", code, zygote.TESTS], capture_output=True, text=True,
                          timeout=60, env=env, check=False)
    assert done.returncode == 0, done.stderr
    pid = int(done.stdout)
    deadline = time.monotonic() + 10
    while Path(f"/proc/{pid}").exists() and "python" in Path(f"/proc/{pid}/cmdline").read_text():
        assert time.monotonic() < deadline, f"zygote {pid} outlived its process"
        time.sleep(0.05)


def test_once_the_zygote_is_gone_runs_start_afresh(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                   capfd: pytest.CaptureFixture[str]) -> None:
    monkeypatch.setattr(zygote, "_client", [])  # a zygote of this test's own
    monkeypatch.setattr(zygote, "_unusable", [])
    out = tmp_path / "facts.json"
    first = zygote.popen(_pytest(tmp_path, "probe"), cwd=tmp_path, env=_env(tmp_path, out),
                         stdout=subprocess.DEVNULL)
    assert isinstance(first, zygote.Forked) and first.wait(60) == 0
    pid = zygote.zygote_pid()
    assert pid
    os.kill(pid, signal.SIGKILL)
    zygote._client[0].process.wait(30)
    runs = [zygote.run(_pytest(tmp_path, "probe"), cwd=tmp_path, env=_env(tmp_path, out), timeout=60)
            for _ in range(2)]
    assert [r.returncode for r in runs] == [0, 0] and "1 passed" in runs[1].stdout
    said = capfd.readouterr().err
    assert said.count("helpers.zygote: every run starts afresh from now on") == 1, said
    last = zygote.popen(_pytest(tmp_path, "probe"), cwd=tmp_path, env=_env(tmp_path, out),
                        stdout=subprocess.DEVNULL)
    assert isinstance(last, subprocess.Popen) and last.wait(60) == 0


def test_a_run_dropped_unwaited_for_lets_go_of_its_descriptors(tmp_path: Path) -> None:
    assert zygote.run([sys.executable, "-m", "pytest", "--version"], cwd=tmp_path).returncode == 0
    before = sorted(os.listdir("/proc/self/fd"))  # (the zygote is up)
    proc = zygote.popen([sys.executable, "-m", "pytest", "--version"], cwd=tmp_path,
                        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    assert isinstance(proc, zygote.Forked)
    assert len(os.listdir("/proc/self/fd")) == len(before) + 2  # its pidfd and connection
    del proc
    gc.collect()
    assert sorted(os.listdir("/proc/self/fd")) == before
