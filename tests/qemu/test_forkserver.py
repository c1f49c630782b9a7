"""QEMUs forked from a fork server (``qmpcompat.harness.forkserver``), against
real builds: they are the build's QEMU, adopted by us, in their own dir and
process group; they answer, crash and hang as an exec'd QEMU does; they die
with us; and where there can be no server, the pool execs and says why."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from qmpcompat.errors import ForkServerUnavailable, QemuDied, QemuHung, UnsafeInput
from qmpcompat.harness import Qemu, QemuOptions
from qmpcompat.harness import forkserver as forkserver_module
from qmpcompat.harness.forkserver import ForkServer
from qmpcompat.harness.pool import QemuPool
from qmpcompat.provision import QemuBuild
from qmpcompat.provision.build import build_from_path

# KD-0001 (vectors/known-defects.yaml): an exec channel with no argv kills 10.0 and later.
EMPTY_EXEC = {"channels": [{"channel-type": "main", "addr": {"transport": "exec", "args": []}}]}


def _gone(pid: int) -> bool:
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] == "Z"
    except FileNotFoundError:
        return True


def _wait_gone(pid: int, seconds: float = 5.0) -> bool:
    deadline = time.monotonic() + seconds
    while not _gone(pid) and time.monotonic() < deadline:
        time.sleep(0.02)
    return _gone(pid)


@pytest.fixture
def compiler() -> None:
    """The fork server's library, built (skip, saying why, on a host with no C
    compiler: ``tools/host-packages`` installs one when run as root)."""
    try:
        forkserver_module.library()
    except ForkServerUnavailable as exc:
        pytest.skip(f"no fork server on this host: {exc.reason}")


@pytest.fixture
def pool(compiler: None, newest: QemuBuild) -> Iterator[QemuPool]:
    p = QemuPool(newest, QemuOptions(timeout=5.0), spares=0)
    yield p
    p.close()


def _answers(q: Qemu) -> list[object]:
    replies = [q.execute("migrate", {}),
               q.execute("migrate-incoming", {"uri": "tcp:127.0.0.1:0"}),
               q.execute("query-status"), q.execute("query-migrate")]
    return [(r.ok, r.error_class, r.desc, r.result) for r in replies]


def test_a_forked_qemu_is_the_build_adopted_in_its_own_dir(pool: QemuPool,
                                                          newest: QemuBuild) -> None:
    q = pool.take()
    pid = q.child.pid  # type: ignore[union-attr]
    assert pool.forked == 1 and not pool.exec_reason and pool.fork_server is not None
    server = pool.fork_server.pid
    assert q.version == newest.version
    stat = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    assert int(stat[1]) == os.getpid(), "the QEMU is adopted by the process that asked for it"
    assert int(stat[2]) == pid, "the QEMU leads a process group of its own"
    assert os.readlink(f"/proc/{pid}/cwd") == str(q.workdir)
    cmdline = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
    assert newest.binary.encode() in cmdline and b"unix:subject.qmp" in cmdline
    with Qemu(newest, QemuOptions(timeout=5.0)) as exec_d:  # the same answers by exec
        assert _answers(q) == _answers(exec_d)
    pool.discard(q)
    pool.close()
    assert _wait_gone(pid) and server is not None and _wait_gone(server)


def test_a_crash_and_a_hang_of_a_forked_qemu(pool: QemuPool, newest: QemuBuild) -> None:
    q = pool.take()
    with pytest.raises(QemuDied) as forked:
        q.execute("migrate", EMPTY_EXEC)
    pool.discard(q)
    with Qemu(newest) as exec_d, pytest.raises(QemuDied) as by_exec:
        exec_d.execute("migrate", EMPTY_EXEC)
    assert forked.value.signal == by_exec.value.signal == signal.SIGSEGV
    assert "argv[0] != NULL" in forked.value.stderr_tail
    assert forked.value.stderr_tail == by_exec.value.stderr_tail
    q = pool.take()
    pid = q.child.pid  # type: ignore[union-attr]
    os.kill(pid, signal.SIGSTOP)
    with pytest.raises(QemuHung, match="did not answer within 1s"):
        q.execute("query-status", timeout=1.0)
    assert _gone(pid), "a hung forked QEMU is killed and reaped"
    pool.discard(q)


@pytest.mark.usefixtures("compiler")
def test_forked_qemus_die_with_the_process_that_asked_for_them(newest: QemuBuild) -> None:
    code = (
        "import json, time\n"
        "from qmpcompat.harness import QemuOptions\n"
        "from qmpcompat.harness.pool import QemuPool\n"
        "from qmpcompat.provision import QemuBuild\n"
        f"b = QemuBuild.from_json(json.loads({json.dumps(newest.to_json())!r}))\n"
        "p = QemuPool(b, QemuOptions(), spares=1)\n"
        "q = p.take()\n"
        "print(q.child.pid, p.fork_server.pid, p.forked, flush=True)\n"
        "time.sleep(60)\n"
    )
    parent = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE, text=True)
    assert parent.stdout is not None
    qemu, server, forked = map(int, parent.stdout.readline().split())
    assert forked == 2 and not _gone(qemu) and not _gone(server)  # the spare too
    # The parent's reaper would kill them too (they work in its dirs): held still
    # meanwhile, so that what is checked is that they die with their parent.
    reapers = _reapers_of(parent.pid)
    assert reapers
    for pid in reapers:
        os.kill(pid, signal.SIGSTOP)
    try:
        parent.kill()
        parent.wait()
        assert _wait_gone(qemu), "a forked QEMU outlived the process that asked for it"
        assert _wait_gone(server), "the fork server outlived the process that started it"
    finally:
        for pid in reapers:
            os.kill(pid, signal.SIGCONT)  # it removes the parent's dirs


def _reapers_of(pid: int) -> list[int]:
    found = []
    for entry in Path("/proc").iterdir():
        try:
            argv = (entry / "cmdline").read_bytes().split(b"\0")
        except OSError:
            continue
        if b"qmpcompat.reaper" in argv and any(a.startswith(f"{pid}.".encode()) for a in argv):
            found.append(int(entry.name))
    return found


def test_a_server_that_stops_serving_hands_over_to_exec(pool: QemuPool) -> None:
    first = pool.take()
    assert pool.fork_server is not None and pool.fork_server.pid is not None
    os.kill(pool.fork_server.pid, signal.SIGKILL)
    second = pool.take()  # exec'd, and the QEMU forked before lives on
    assert "the server" in pool.exec_reason and pool.fork_server is None
    assert pool.forked == 1 and pool.started == 2
    assert second.execute("query-status").ok and first.execute("query-status").ok
    assert os.readlink(f"/proc/{second.child.pid}/cwd") != str(second.workdir)  # type: ignore[union-attr]
    pool.discard(first)
    pool.discard(second)


@pytest.mark.usefixtures("compiler")
def test_a_binary_the_library_cannot_join_is_exec_d(script: Callable[[str, str], Path],
                                                   newest: QemuBuild) -> None:
    """A wrapper script (a ``--qemu`` binary may be one): the library is loaded
    into the shell and into QEMU, but neither runs as the named binary, so no
    server comes up; the pool says so and execs."""
    real = " ".join(f"'{a}'" for a in newest.command())
    wrapper = build_from_path(str(script("qemu-system-x86_64", f'exec {real} "$@"\n')))
    assert "did not start" in _exec_reason(wrapper)


@pytest.fixture
def no_compiler(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Iterator[None]:
    monkeypatch.setenv("PATH", str(tmp_path))
    forkserver_module._built.cache_clear()
    yield
    monkeypatch.undo()
    forkserver_module._built.cache_clear()


@pytest.mark.usefixtures("no_compiler")
def test_without_a_compiler_the_pool_execs_and_says_why(newest: QemuBuild) -> None:
    with pytest.raises(ForkServerUnavailable, match="no C compiler"):
        forkserver_module.library()
    assert "no C compiler" in _exec_reason(newest)


def _exec_reason(build: QemuBuild) -> str:
    """Why a pool of ``build`` exec'd its QEMU, which must work all the same."""
    p = QemuPool(build, QemuOptions(timeout=5.0), spares=0)
    try:
        q = p.take()
        assert q.execute("query-status").ok
        assert p.forked == 0 and p.fork_server is None
        p.discard(q)
    finally:
        p.close()
    return p.exec_reason


@pytest.mark.usefixtures("compiler")
def test_the_servers_command_line_passes_the_safety_gate(newest: QemuBuild, tmp_path: Path) -> None:
    """The server is started with the command line its QEMUs get: the gate checks
    it first, as QEMU would resolve it in the server's own dir."""
    outside = tmp_path / "elsewhere.qmp"
    server = ForkServer(newest, lambda _qmp: ["-M", "none", "-qmp", f"unix:{outside}"], "s.qmp")
    with pytest.raises(UnsafeInput):
        server.start()
    assert server.pid is None
    ForkServer(newest, lambda qmp: ["-M", "none", "-qmp", f"unix:{qmp}"], "s.qmp").start().close()
