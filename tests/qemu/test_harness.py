"""The QMP harness against real QEMU builds (and stand-ins for broken ones)."""

from __future__ import annotations

import json
import logging
import os
import shlex
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from qemu.qmp import Message

from qmpcompat.errors import QemuDied, QemuHung, UnsafeInput
from qmpcompat.harness import CommandFailed, Qemu, QemuOptions
from qmpcompat.harness.process import private_dir
from qmpcompat.harness.session import Client
from qmpcompat.provision import QemuBuild
from qmpcompat.provision.build import build_from_path


def _gone(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return True
    return Path(f"/proc/{pid}/stat").read_text().split()[2] == "Z"


def test_greeting_commands_and_teardown(builds: list[QemuBuild]) -> None:
    for build in builds:
        with Qemu(build, QemuOptions(incoming_defer=True)) as q:
            assert q.version == build.version
            assert q.workdir.stat().st_mode & 0o777 == 0o700
            pid, workdir = q.child.pid, q.workdir  # type: ignore[union-attr]
            reply = q.execute("migrate-incoming", {})
            assert not reply.ok and reply.error_class == "GenericError" and reply.desc
            assert q.execute("query-status").result["status"] == "inmigrate"
            with pytest.raises(CommandFailed, match="qmpcompat-no-such-command"):
                q.cmd("qmpcompat-no-such-command")  # a name the safety gate lets through
            with pytest.raises(UnsafeInput, match="'no-such-command' is not on the safety"):
                q.cmd("no-such-command")
        assert _gone(pid) and not workdir.exists()


def test_events_and_migration_polling(newest: QemuBuild) -> None:
    opts = QemuOptions(machine="pc", memory="64M", extra_args=("-S",))
    case = private_dir()  # both sides of one case share its dir (the safety gate's rule)
    with Qemu(newest, opts, "src").start(case) as src, \
            Qemu(newest, QemuOptions(machine="pc", memory="64M", incoming_defer=True),
                 "dst").start(case) as dst:
        sock = case / "mig.sock"
        dst.cmd("migrate-incoming", {"uri": f"unix:{sock}"})
        src.cmd("migrate", {"uri": f"unix:{sock}"})
        assert src.wait_migration()["status"] == "completed"
        assert dst.wait_migration()["status"] == "completed"
        src.cmd("migrate-set-capabilities",
                {"capabilities": [{"capability": "events", "state": True}]})
        dst.cmd("stop")
        dst.cmd("cont")
        assert dst.wait_event("RESUME", timeout=5)["event"] == "RESUME"
    shutil.rmtree(case)


def _children(pid: int | str) -> list[int]:
    return [int(c) for task in Path(f"/proc/{pid}/task").iterdir()
            for c in (task / "children").read_text().split()]


def test_a_killed_exec_sink_is_reaped(newest: QemuBuild) -> None:
    """A migration to an exec: sink that never ends (its file a FIFO nobody
    reads): tearing the QEMU down kills the sink, which this process adopts as it
    dies, and reaps it too; no zombie is left for the rest of the run."""
    case = private_dir()
    os.mkfifo(case / "sink")
    with Qemu(newest, QemuOptions(machine="pc", memory="64M", extra_args=("-S",))).start(case) as q:
        q.cmd("migrate", {"uri": f"exec:cat > {shlex.quote(str(case))}/sink"})
        qemu = q.child.pid  # type: ignore[union-attr]
        deadline = time.monotonic() + 10
        while not (sinks := _children(qemu)) and time.monotonic() < deadline:
            time.sleep(0.02)
        assert sinks, "QEMU started no sink"
    assert not set(sinks) & set(_children("self")), "the killed sink is left as a zombie"
    assert all(_gone(s) for s in sinks)
    shutil.rmtree(case)


def test_crash_is_reported_with_signal(newest: QemuBuild) -> None:
    with Qemu(newest) as q:
        os.kill(q.child.pid, signal.SIGSEGV)  # type: ignore[union-attr]
        with pytest.raises(QemuDied) as info:
            q.execute("query-status")
    assert info.value.signal == signal.SIGSEGV
    assert "killed by signal 11" in str(info.value)


def test_hang_is_killed_and_reported(newest: QemuBuild) -> None:
    with Qemu(newest, QemuOptions(timeout=1.0)) as q:
        pid = q.child.pid  # type: ignore[union-attr]
        os.kill(pid, signal.SIGSTOP)
        with pytest.raises(QemuHung, match="did not answer within 1s"):
            q.execute("query-status")
        assert _gone(pid)


def test_qemu_that_exits_at_start(newest: QemuBuild) -> None:
    with pytest.raises(QemuDied) as info:
        Qemu(newest, QemuOptions(machine="qmpcompat-no-such-machine")).start()
    assert info.value.returncode == 1
    assert "qmpcompat-no-such-machine" in info.value.stderr_tail


def test_qemu_that_never_opens_qmp(script) -> None:  # type: ignore[no-untyped-def]
    fake = script("qemu-system-x86_64", 'case "$1" in --version) '
                  'echo "QEMU emulator version 9.9.9";; *) sleep 60;; esac\n')
    build = build_from_path(str(fake))
    start = time.monotonic()
    with pytest.raises(QemuHung, match="while starting up"):
        Qemu(build, QemuOptions(timeout=1.0)).start()
    assert time.monotonic() - start < 5


def test_child_dies_with_its_parent(newest: QemuBuild, tmp_path: Path) -> None:
    code = (
        "import json, sys, time\n"
        "from qmpcompat.harness import Qemu\n"
        "from qmpcompat.provision import QemuBuild\n"
        f"b = QemuBuild.from_json(json.loads({json_dumps(newest.to_json())!r}))\n"
        "q = Qemu(b).start()\n"
        "print(q.child.pid, flush=True)\n"
        "time.sleep(60)\n"
    )
    parent = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE, text=True)
    assert parent.stdout is not None
    pid = int(parent.stdout.readline())
    assert not _gone(pid)
    parent.kill()
    parent.wait()
    deadline = time.monotonic() + 5
    while not _gone(pid) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert _gone(pid), "QEMU outlived the process that started it"


def json_dumps(data: object) -> str:

    return json.dumps(data)


def test_daemonized_child_of_a_hostile_binary_is_killed(script) -> None:  # type: ignore[no-untyped-def]
    """A "QEMU" that starts a daemon in a session of its own (out of QEMU's process
    group) and then hangs: the daemon dies with it."""
    marker = "987651"
    fake = script("qemu-system-x86_64", 'case "$1" in --version) echo "QEMU emulator version 9.9.9";; '
                  f'*) setsid sh -c "exec sleep {marker}" </dev/null >/dev/null 2>&1 & sleep 60;; esac\n')
    with pytest.raises(QemuHung):
        Qemu(build_from_path(str(fake)), QemuOptions(timeout=1.0)).start()
    deadline = time.monotonic() + 5
    while _sleepers(marker) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert not _sleepers(marker)


def _sleepers(marker: str) -> list[int]:
    out = []
    for proc in Path("/proc").iterdir():
        if proc.name.isdigit():
            try:
                if (proc / "cmdline").read_bytes() == f"sleep\0{marker}\0".encode():
                    out.append(int(proc.name))
            except OSError:
                continue
    return out


def test_message_hooks_are_used_and_stay_quiet(newest: QemuBuild,
                                               monkeypatch: pytest.MonkeyPatch) -> None:
    """qemu.qmp (0.0.x, pinned below 0.1) calls its documented message hooks
    (``_cb_outbound``, ``_cb_inbound``) for every message, and our client's hooks
    leave a message unformatted unless debug logging is on."""
    formatted: list[str] = []
    real_str = Message.__str__

    def counting_str(msg: Message) -> str:
        formatted.append("x")
        return real_str(msg)

    monkeypatch.setattr(Message, "__str__", counting_str)
    seen: list[str] = []
    out, inbound = Client._cb_outbound, Client._cb_inbound
    monkeypatch.setattr(Client, "_cb_outbound", lambda self, m: seen.append("out") or out(self, m))
    monkeypatch.setattr(Client, "_cb_inbound", lambda self, m: seen.append("in") or inbound(self, m))
    with Qemu(newest) as q:
        q.cmd("query-status")
        assert "out" in seen and "in" in seen
        assert not formatted  # nothing pretty-printed for a log that is off
        logger = logging.getLogger("qemu.qmp")
        level = logger.level
        logger.setLevel(logging.DEBUG)
        try:
            q.cmd("query-status")
        finally:
            logger.setLevel(level)
        assert formatted  # with debug logging on, the base hooks log each message
