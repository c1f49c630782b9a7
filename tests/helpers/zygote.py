"""Whole runs (``python -m pytest``, ``python -m qmpcompat``) forked from a
Python that has already imported pytest and qmpcompat, the "zygote": each run
is still a process of its own, with its own command line arguments,
environment, working directory, standard streams, session, signals and exit
status, but it skips the interpreter's start and the imports (about half a
second of CPU a run, half of a small run's Python). A process that asks for a
run (each xdist worker) starts its own zygote on first use; the zygote ends
when that process does.

A run starts as a plain ``subprocess.Popen`` instead whenever a fork could
differ from a fresh interpreter:

- the command is not ``sys.executable -m pytest|qmpcompat ...``;
- the environment differs from the zygote's in what Python reads as it starts
  (``PYTHON*`` but ``PYTHONPATH``, the locale, ``TZ``) or what qmpcompat reads
  as it is imported (``PATH``: the tools it looks up once);
- ``QMPCOMPAT_TEST_PLAIN_PYTHON`` is set (every run then starts afresh: the way
  to rule the zygote out of a failure);
- the caller asks for ``plain=True``;
- this process's zygote failed to fork a run before (it says so once, on stderr).

A forked run differs from a fresh one in what the kernel keeps of how a
process started: its ``/proc/PID/cmdline`` and ``/proc/PID/environ`` are the
zygote's (a test that reads the run's own command line asks for a plain run),
and every run has the zygote's hash seed.
"""

from __future__ import annotations

import contextlib
import json
import locale
import os
import runpy
import selectors
import signal
import socket
import subprocess
import sys
import threading
import time
import weakref
from collections.abc import Mapping, Sequence
from importlib.metadata import entry_points
from pathlib import Path
from typing import IO, Any, NoReturn

TESTS = str(Path(__file__).resolve().parents[1])
PLAIN = "QMPCOMPAT_TEST_PLAIN_PYTHON"
MODULES = ("pytest", "qmpcompat")
# What the runs import that the zygote imports first (a run that disables a
# plugin still finds its module imported, which registers nothing).
PRELOAD = ("pytest", "qmpcompat.cli", "qmpcompat.pytest_plugin")
SKIP_ENTRY_POINTS = ("hypothesispytest",)  # the suite runs turn it off: a second of CPU each
_FIXED_AT_START = ("PATH", "TZ", "LANG", "LANGUAGE")
_FIXED_PREFIXES = ("PYTHON", "LC_")


def _fixed_at_start(env: Mapping[str, str]) -> dict[str, str]:
    """What of ``env`` a process fixes as it starts (see the module's docstring)."""
    return {k: v for k, v in env.items()
            if (k in _FIXED_AT_START or k.startswith(_FIXED_PREFIXES)) and k != "PYTHONPATH"}


class ZygoteDied(RuntimeError):
    """The zygote ended (or never answered) before it said what became of a run."""


class Forked:
    """A run the zygote forked: what the tests use of ``subprocess.Popen``
    (``pid``, ``poll``, ``wait``, ``send_signal``, ``terminate``, ``kill``,
    ``returncode``, and ``stdout``/``stderr`` when asked for as pipes). Signals
    go through a pidfd, so none reaches another process that took the pid; one
    dropped unwaited for lets go of its pidfd and connection all the same."""

    def __init__(self, args: Sequence[str], conn: socket.socket, pid: int, pidfd: int, said: bytes,
                 stdout: IO[bytes] | None, stderr: IO[bytes] | None) -> None:
        self.args = list(args)
        self.pid = pid
        self.returncode: int | None = None
        self.stdout, self.stderr = stdout, stderr
        self._conn, self._pidfd, self._said = conn, pidfd, said
        self._release = weakref.finalize(self, _release, conn, pidfd)

    def poll(self) -> int | None:
        self._collect(0)
        return self.returncode

    def wait(self, timeout: float | None = None) -> int:
        if not self._collect(timeout):
            raise subprocess.TimeoutExpired(self.args, timeout or 0)
        assert self.returncode is not None
        return self.returncode

    def _collect(self, timeout: float | None) -> bool:
        while self.returncode is None:
            if not self._said.endswith(b"\n"):
                self._conn.settimeout(timeout)
                try:
                    chunk = self._conn.recv(256)
                except (BlockingIOError, TimeoutError):
                    return False
                if not chunk:
                    raise ZygoteDied(f"the zygote ended before run {self.pid} did: {self.args}")
                self._said += chunk
            if self._said.endswith(b"\n"):
                self.returncode = int(json.loads(self._said)["status"])
                self._release()
        return True

    def send_signal(self, sig: int) -> None:
        if self.poll() is None:
            with contextlib.suppress(ProcessLookupError):  # it ended since
                signal.pidfd_send_signal(self._pidfd, sig)

    def terminate(self) -> None:
        self.send_signal(signal.SIGTERM)

    def kill(self) -> None:
        self.send_signal(signal.SIGKILL)


def _release(conn: socket.socket, pidfd: int) -> None:
    conn.close()
    os.close(pidfd)


class _Client:
    """This process's zygote: started on first use, asked for each run over a
    socket pair; each run gets a connection of its own."""

    def __init__(self) -> None:
        mine, theirs = socket.socketpair()
        self._env = dict(os.environ)
        env = {k: v for k, v in self._env.items() if k != "PYTHONPATH"}
        boot = (f"import sys; sys.path.insert(0, {TESTS!r}); "
                f"from helpers.zygote import serve; serve({theirs.fileno()})")
        self.process = subprocess.Popen([sys.executable, "-c", boot], stdin=subprocess.DEVNULL,
                                      env=env, pass_fds=[theirs.fileno()], cwd="/")
        theirs.close()
        self._sock, self._lock, self.pid = mine, threading.Lock(), os.getpid()
        weakref.finalize(self, mine.close)  # (the zygote then returns)

    def serves(self, env: Mapping[str, str]) -> bool:
        return _fixed_at_start(env) == _fixed_at_start(self._env)

    def fork(self, argv: Sequence[str], cwd: str, env: Mapping[str, str], stdio: Sequence[int],
             session: bool, sigint_ignored: bool) -> tuple[socket.socket, int, int, bytes]:
        request = {"module": argv[2], "args": list(argv[3:]), "cwd": cwd, "env": dict(env),
                   "session": session, "sigint_ignored": sigint_ignored}
        conn, theirs = socket.socketpair()
        try:
            conn.sendall(json.dumps(request).encode() + b"\n")
            with self._lock:
                socket.send_fds(self._sock, [b"r"], [theirs.fileno(), *stdio])
            theirs.close()
            said, fds, _flags, _addr = socket.recv_fds(conn, 256, 1)
            while said and b"\n" not in said:
                said += conn.recv(256)
            if b"\n" not in said or not fds:
                raise ZygoteDied(f"the zygote did not start {list(argv)}")
        except BaseException:
            theirs.close()
            conn.close()
            raise
        first, rest = said.split(b"\n", 1)  # (the run may have ended already)
        return conn, int(json.loads(first)["pid"]), fds[0], rest


_client: list[_Client] = []
_unusable: list[str] = []  # why this process's zygote cannot fork runs, once it could not


def _zygote(env: Mapping[str, str]) -> _Client | None:
    """This process's zygote if it can start a run in ``env``, else None."""
    if os.environ.get(PLAIN) or env.get(PLAIN) or _unusable:
        return None
    if not _client or _client[0].pid != os.getpid():  # (a fork of this process has none)
        _client[:] = [_Client()]
    return _client[0] if _client[0].serves(env) else None


def zygote_pid() -> int | None:
    """The pid of this process's zygote, None before its first run."""
    return _client[0].process.pid if _client and _client[0].pid == os.getpid() else None


def _forkable(argv: Sequence[str]) -> bool:
    return len(argv) >= 3 and argv[0] == sys.executable and argv[1] == "-m" and argv[2] in MODULES


def popen(argv: Sequence[str], *, cwd: str | Path, env: Mapping[str, str] | None = None,
          stdout: int | IO[Any] | None = None, stderr: int | IO[Any] | None = None,
          start_new_session: bool = False, sigint_default: bool = False,
          plain: bool = False) -> Forked | subprocess.Popen[bytes]:
    """Start ``argv`` in ``cwd`` with ``env`` (this process's when None) as
    ``subprocess.Popen`` would, forked from the zygote where that cannot differ
    (see the module's docstring). ``stdout``/``stderr`` are None (this process's),
    a file, ``subprocess.PIPE``, ``DEVNULL`` or (``stderr``) ``STDOUT``;
    ``sigint_default`` has the run take SIGINT even when this process ignores it."""
    env = dict(os.environ if env is None else env)
    zygote = None if plain or not _forkable(argv) else _zygote(env)
    if zygote is None:
        return subprocess.Popen(list(argv), cwd=cwd, env=env, stdout=stdout, stderr=stderr,
                                start_new_session=start_new_session,
                                preexec_fn=_sigint_default if sigint_default else None)
    ours: list[int] = []
    out_fd, out_pipe = _stream(stdout, 1, ours)
    err_fd, err_pipe = (out_fd, None) if stderr == subprocess.STDOUT else _stream(stderr, 2, ours)
    ignored = signal.getsignal(signal.SIGINT) == signal.SIG_IGN and not sigint_default
    try:
        conn, pid, pidfd, said = zygote.fork(argv, str(cwd), env, [0, out_fd, err_fd],
                                             start_new_session, ignored)
    except (OSError, ZygoteDied) as exc:  # it told of no run: this one starts afresh, as do the next
        _unusable[:] = [f"{type(exc).__name__}: {exc}"]
        print(f"helpers.zygote: every run starts afresh from now on ({_unusable[0]})", file=sys.stderr)
        for pipe in (out_pipe, err_pipe):
            if pipe:
                pipe.close()
        return popen(argv, cwd=cwd, env=env, stdout=stdout, stderr=stderr,
                     start_new_session=start_new_session, sigint_default=sigint_default, plain=True)
    finally:
        for end in ours:
            os.close(end)
    return Forked(argv, conn, pid, pidfd, said, out_pipe, err_pipe)


def _stream(where: int | IO[Any] | None, default: int,
            ours: list[int]) -> tuple[int, IO[bytes] | None]:
    """The fd a run writes to for ``where``, and the pipe's end to read when it is
    a pipe (the run's end goes in ``ours``, closed once the zygote has it)."""
    if where is None:
        return default, None
    if where == subprocess.PIPE:
        read, write = os.pipe()
        ours.append(write)
        return write, os.fdopen(read, "rb")
    if where == subprocess.DEVNULL:
        ours.append(os.open(os.devnull, os.O_WRONLY))
        return ours[-1], None
    if isinstance(where, int):
        raise ValueError(f"a run's stream is None, a file, PIPE or DEVNULL, not {where}")
    return where.fileno(), None


def _sigint_default() -> None:
    signal.signal(signal.SIGINT, signal.SIG_DFL)


def run(argv: Sequence[str], *, cwd: str | Path, env: Mapping[str, str] | None = None,
        timeout: float | None = None, plain: bool = False) -> subprocess.CompletedProcess[str]:
    """``subprocess.run(argv, capture_output=True, text=True, timeout=...)``
    through ``popen``: on a timeout the run is killed and TimeoutExpired raised."""
    proc = popen(argv, cwd=cwd, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, plain=plain)
    if isinstance(proc, subprocess.Popen):
        with proc:
            try:
                out, err = proc.communicate(timeout=timeout)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.communicate()
                raise
        return _completed(argv, proc.returncode, out, err)
    assert proc.stdout is not None and proc.stderr is not None
    chunks = _read_all([proc.stdout, proc.stderr], timeout)
    if chunks is None:
        proc.kill()
        proc.wait()
        proc.stdout.close()
        proc.stderr.close()
        raise subprocess.TimeoutExpired(list(argv), timeout or 0)
    return _completed(argv, proc.wait(), *chunks)


def _read_all(streams: list[IO[bytes]], timeout: float | None) -> tuple[bytes, bytes] | None:
    """Everything ``streams`` give until each ends (None past ``timeout``)."""
    got = {s: bytearray() for s in streams}
    with selectors.DefaultSelector() as sel:
        for s in streams:
            sel.register(s, selectors.EVENT_READ)
        deadline = None if timeout is None else time.monotonic() + timeout
        while sel.get_map():
            left = None if deadline is None else deadline - time.monotonic()
            if left is not None and left <= 0:
                return None
            for key, _ in sel.select(left):
                chunk = os.read(key.fd, 65536)
                if chunk:
                    got[key.fileobj].extend(chunk)  # type: ignore[index]
                else:
                    sel.unregister(key.fileobj)
                    key.fileobj.close()  # type: ignore[union-attr]
    return bytes(got[streams[0]]), bytes(got[streams[1]])


def _completed(argv: Sequence[str], rc: int, out: bytes, err: bytes) -> subprocess.CompletedProcess[str]:
    encoding = locale.getpreferredencoding(False)

    def text(data: bytes) -> str:
        return data.decode(encoding).replace("\r\n", "\n").replace("\r", "\n")

    return subprocess.CompletedProcess(list(argv), rc, text(out), text(err))


# --- the zygote -------------------------------------------------------------

def serve(fd: int) -> None:
    """The zygote: import what the runs import, then fork a run for each request
    on socket ``fd`` and tell its asker the run's pid (with a pidfd) and then its
    exit status; return when the socket's other end closes. In a forked run this
    raises the run's SystemExit instead (the run ends as a fresh interpreter does)."""
    os.close(os.pidfd_open(os.getpid()))  # (a kernel without pidfds ends it here, before any run)
    for name in PRELOAD:
        __import__(name)
    for ep in entry_points(group="pytest11"):
        if ep.name not in SKIP_ENTRY_POINTS:
            __import__(ep.module)
    base = [p for p in sys.path if p not in ("", TESTS)]
    main = socket.socket(fileno=fd)
    main.set_inheritable(False)
    sel = selectors.DefaultSelector()
    sel.register(main, selectors.EVENT_READ, None)
    while True:
        for key, _ in sel.select():
            if key.data is None:
                said, fds, _flags, _addr = socket.recv_fds(main, 16, 4)
                if not said:
                    return
                conn = socket.socket(fileno=fds[0])
                request = json.loads(conn.makefile("rb").readline())
                pid = os.fork()
                if pid == 0:
                    conn.close()
                    _run(request, fds[1:], base, sel)
                for stdio in fds[1:]:
                    os.close(stdio)
                pidfd = os.pidfd_open(pid)
                socket.send_fds(conn, [json.dumps({"pid": pid}).encode() + b"\n"], [pidfd])
                sel.register(pidfd, selectors.EVENT_READ, (pid, conn))
            else:
                pid, conn = key.data
                sel.unregister(key.fd)
                os.close(key.fd)
                _pid, status = os.waitpid(pid, 0)
                with contextlib.suppress(OSError):  # its asker may be gone
                    conn.sendall(json.dumps({"status": os.waitstatus_to_exitcode(status)}).encode() + b"\n")
                conn.close()


def _run(request: dict[str, Any], stdio: list[int], base: list[str],
         sel: selectors.BaseSelector) -> NoReturn:
    """In the fork: let go of what the zygote holds (its socket, the other runs'
    pidfds and connections: ``sel``), become the run ``request`` asks for and
    run it; its SystemExit (or any exception) ends the process as it ends a
    fresh one."""
    for key in list(sel.get_map().values()):
        if isinstance(key.fileobj, int):
            os.close(key.fileobj)
            key.data[1].close()
        else:
            key.fileobj.close()
    sel.close()
    if request["session"]:
        os.setsid()
    for target, fd in enumerate(stdio):
        os.dup2(fd, target)
    for fd in set(stdio) - {0, 1, 2}:
        os.close(fd)
    os.chdir(request["cwd"])
    os.environ.clear()
    os.environ.update(request["env"])
    signal.signal(signal.SIGINT, signal.SIG_IGN if request["sigint_ignored"] else signal.default_int_handler)
    extra = [p for p in request["env"].get("PYTHONPATH", "").split(os.pathsep) if p]
    sys.path[:] = [os.getcwd(), *extra, *base]
    for name in [m for m in sys.modules if m == "helpers" or m.startswith("helpers.")]:
        del sys.modules[name]  # only a run with tests/ on its PYTHONPATH imports them
    sys.argv = [request["module"], *request["args"]]
    runpy.run_module(request["module"], run_name="__main__", alter_sys=True)
    raise SystemExit(0)
