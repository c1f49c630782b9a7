"""Starting and stopping a QEMU child process that can never outlive us.

A QEMU dies with us (``PR_SET_PDEATHSIG``) and is killed with its process group.
It is started through util-linux's ``setpriv --pdeathsig KILL`` (in its own new
process group), which sets that and then executes QEMU in the same process: a
Python process that sets it itself between fork and exec must fork its whole
address space first, which cost a hunt worker 30-45 ms per QEMU, against a
fraction of a millisecond for a ``vfork`` of setpriv. Without setpriv it falls
back to doing it itself.
What it starts that leaves the group (a daemon: ``setsid`` and fork) is found
too: this process is a child subreaper, so such orphans become our children,
and each carries its Child's token in its environment (``QMPCOMPAT_CHILD``);
``Child.kill`` kills every adopted process with the token. The environment also
names the case dir (``QMPCOMPAT_CASE``), by which the reaper finds what a
killed run left. (A process that both leaves the group and clears its
environment is not found.)

A QEMU a fork server made (``qmpcompat.harness.forkserver``) is adopted by
this subreaper the moment it exists; ``Child.adopt`` wraps it, and waits for
it with ``waitpid`` like a child started here.
"""

from __future__ import annotations

import contextlib
import ctypes
import os
import select
import shutil
import signal
import subprocess
import tempfile
import threading
import uuid
from pathlib import Path
from typing import Protocol

from qmpcompat.reaper import PRIVATE_PREFIXES, make_dir

PR_SET_PDEATHSIG = 1
PR_SET_CHILD_SUBREAPER = 36
CHILD_ENV = "QMPCOMPAT_CHILD"
CASE_ENV = "QMPCOMPAT_CASE"
_libc = ctypes.CDLL(None, use_errno=True)
_subreaper: list[int] = []  # the pid that made itself a subreaper (forks inherit nothing)
SETPRIV = shutil.which("setpriv")


def become_subreaper() -> None:
    if _subreaper != [os.getpid()]:
        _libc.prctl(PR_SET_CHILD_SUBREAPER, 1)
        _subreaper[:] = [os.getpid()]


def _adopted() -> list[int]:
    """Our children (orphans reparented to us among them)."""
    pids: list[int] = []
    for task in Path("/proc/self/task").iterdir():
        with contextlib.suppress(OSError):
            pids += [int(p) for p in (task / "children").read_text().split()]
    return pids


def _group(pid: int) -> int | None:
    """The process group of ``pid`` (readable for a zombie too), None if it is gone."""
    try:
        return int(Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[2])
    except (OSError, ValueError, IndexError):
        return None


def environ_has(pid: int, entry: bytes) -> bool:
    """True when process ``pid``'s environment holds ``entry`` (``NAME=value``)."""
    try:
        return entry in (Path(f"/proc/{pid}/environ").read_bytes().split(b"\0"))
    except OSError:
        return False


def die_with_parent() -> None:
    """Have the kernel SIGKILL this process when its parent dies (for worker
    processes, e.g. the hunt's; their QEMUs and reapers follow)."""
    _libc.prctl(PR_SET_PDEATHSIG, signal.SIGKILL)


def _die_with_parent() -> None:  # runs in the child between fork and exec
    die_with_parent()
    os.setpgid(0, 0)


MAX_BASE = 60  # unix socket paths must stay under 108 bytes


def private_dir(prefix: str = "qmpc-") -> Path:
    """A new 0700 directory under $TMPDIR (or /tmp when $TMPDIR is unset or too
    long for unix socket paths, which cannot exceed 107 bytes), watched by the
    reaper (``qmpcompat.reaper``); ``prefix`` is one of ``PRIVATE_PREFIXES``."""
    if prefix not in PRIVATE_PREFIXES:
        raise ValueError(f"private dir prefix {prefix!r} is not one of {PRIVATE_PREFIXES}")
    base = tempfile.gettempdir()
    if len(base) > MAX_BASE:
        base = "/tmp"
    return make_dir(Path(base), prefix)


def marks(token: str, case: Path) -> dict[str, str]:
    """What a Child adds to its process's environment: its token (``kill_escaped``
    finds what it started by it) and its case dir (the reaper's)."""
    return {CHILD_ENV: token, CASE_ENV: str(case)}


class _Process(Protocol):
    """What ``Child`` needs of a process: ``subprocess.Popen``'s ``poll`` and ``wait``."""

    pid: int

    def poll(self) -> int | None: ...

    def wait(self, timeout: float | None = None) -> int: ...


class Adopted:
    """``poll`` and ``wait`` for a child of ours that ``subprocess`` did not start
    (one a fork server made, adopted by this subreaper): its exit status as
    ``Popen.returncode`` gives it (minus the signal that killed it). Safe from
    several threads."""

    def __init__(self, pid: int) -> None:
        self.pid = pid
        self.returncode: int | None = None
        self._lock = threading.Lock()

    def poll(self) -> int | None:
        with self._lock:
            if self.returncode is None:
                try:
                    pid, status = os.waitpid(self.pid, os.WNOHANG)
                except ChildProcessError:  # reaped elsewhere: as Popen, say 0
                    self.returncode = 0
                else:
                    if pid == self.pid:
                        self.returncode = os.waitstatus_to_exitcode(status)
            return self.returncode

    def wait(self, timeout: float | None = None) -> int:
        """Its exit status once it exits; ``subprocess.TimeoutExpired`` if it does
        not within ``timeout`` seconds (None: no limit)."""
        status = self.poll()
        if status is not None:
            return status
        try:
            fd = os.pidfd_open(self.pid)
        except ProcessLookupError:  # gone between the two calls: it is a zombie now
            fd = -1
        try:
            if fd >= 0 and not select.select([fd], [], [], timeout)[0]:
                raise subprocess.TimeoutExpired(str(self.pid), timeout or 0.0)
        finally:
            if fd >= 0:
                os.close(fd)
        status = self.poll()
        if status is None:  # readable: it has exited, and is ours to reap
            with self._lock:
                if self.returncode is None:
                    self.returncode = os.waitstatus_to_exitcode(os.waitpid(self.pid, 0)[1])
                status = self.returncode
        return status


class Child:
    """A process whose stderr goes to a file; killed with SIGKILL if we die."""

    proc: _Process

    def __init__(self, argv: list[str], env: dict[str, str], stderr_path: Path,
                 pass_fds: tuple[int, ...] = (), cwd: Path | None = None) -> None:
        self.argv = argv
        self.stderr_path = stderr_path
        self.token = uuid.uuid4().hex
        env = {**env, **marks(self.token, stderr_path.parent)}
        become_subreaper()
        with open(stderr_path, "wb") as err:
            if SETPRIV is not None:  # vfork and exec: no copy of this process
                self.proc = subprocess.Popen([SETPRIV, "--pdeathsig", "KILL", "--", *argv],
                                             env=env, stdin=subprocess.DEVNULL, stdout=err,
                                             stderr=err, pass_fds=pass_fds, process_group=0,
                                             cwd=cwd)
            else:
                self.proc = subprocess.Popen(argv, env=env, stdin=subprocess.DEVNULL,
                                             stdout=err, stderr=err, pass_fds=pass_fds,
                                             preexec_fn=_die_with_parent, cwd=cwd)
        self.pid = self.proc.pid

    @classmethod
    def adopt(cls, pid: int, argv: list[str], stderr_path: Path, token: str) -> Child:
        """A Child for ``pid``, a child of ours started elsewhere (by a fork server)
        in its own process group, with PR_SET_PDEATHSIG set, ``token`` in its
        environment and its output in ``stderr_path``."""
        child = cls.__new__(cls)
        child.argv, child.stderr_path, child.token = argv, stderr_path, token
        child.proc, child.pid = Adopted(pid), pid
        return child

    def poll(self) -> int | None:
        return self.proc.poll()

    def stderr_tail(self, lines: int = 15) -> str:
        try:
            text = self.stderr_path.read_text(errors="replace")
        except OSError:
            return ""
        return "\n".join(text.rstrip().splitlines()[-lines:])

    def wait(self, timeout: float) -> int | None:
        try:
            return self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            return None

    def kill(self) -> int:
        """SIGKILL the process group (QEMU and anything it spawned, e.g. an exec: sink),
        then whatever it started that left the group and was adopted by us."""
        self.signal_kill()
        return self.reap()

    def signal_kill(self) -> None:
        """SIGKILL the process group, without waiting for it to go (``reap`` does)."""
        if self.proc.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.pid, signal.SIGKILL)

    def reap(self) -> int:
        """Wait for the killed process, then kill what it started that left the group;
        its exit status. Safe from another thread than the one that started it."""
        status = self.proc.wait()
        self.kill_escaped()
        return status

    def kill_escaped(self) -> list[int]:
        """SIGKILL (and reap) every adopted process that carries this Child's token
        or is in its process group (the ones that died first are zombies by then,
        whose token cannot be read); the pids killed."""
        entry = f"{CHILD_ENV}={self.token}".encode()
        killed: list[int] = []
        for _round in range(10):  # a killed daemon's own children are adopted in turn
            found = [p for p in _adopted() if p != self.pid
                     and (_group(p) == self.pid or environ_has(p, entry))]
            if not found:
                break
            for pid in found:
                with contextlib.suppress(OSError):
                    os.kill(pid, signal.SIGKILL)
                with contextlib.suppress(ChildProcessError):
                    os.waitpid(pid, 0)
                killed.append(pid)
        return killed
