"""QEMUs forked from a fork server instead of each started by exec.

Most of a bare QEMU start is the dynamic loader's: Debian's
qemu-system-x86_64 11.1 has about 280,000 relative relocations over 14 MB of
``.data.rel.ro``, which every exec copies and writes anew (measured: 16-17 ms
of CPU per start, about 2,900 page faults, 2,100 of them before ``main``). A
``ForkServer`` is one process of a build and command line with
``qmpcompat/data/forkserver.c`` preloaded: it stops after the loader and the
libraries' constructors, before QEMU's ``main``, and forks a QEMU per request,
which goes on into QEMU's own start-up (measured: 7.5-9 ms of CPU per start,
about 1,500 page faults). The protocol and how a child is adopted by this
process (a child subreaper) are described in the C file.

The library is built once per source and compiler with the host's C
compiler, into the cache (``forkserver/`` there). Without a compiler, or when
the server does not come up (a binary not linked against glibc, a library its
glibc cannot load, a thread started before ``main``), ``start`` raises
``ForkServerUnavailable`` with the reason, and the caller starts QEMUs by exec.

What a forked QEMU has that an exec'd one has not, by design: the command line
names the QMP socket relative to its working directory (its private dir,
where the harness listens); every child of one server has the server's
address-space layout; the library stays mapped (its only code is the
constructor, which has returned); ``/proc/PID/environ`` shows the server's
start-up environment (``getenv`` in QEMU and what QEMU runs see the child's).
"""

from __future__ import annotations

import functools
import hashlib
import os
import platform
import shutil
import socket
import subprocess
import sys
import uuid
from collections.abc import Callable
from importlib import resources
from pathlib import Path

from qmpcompat.errors import ForkServerUnavailable
from qmpcompat.harness.isolation import prefix
from qmpcompat.harness.process import Child, marks, private_dir
from qmpcompat.provision.build import QemuBuild
from qmpcompat.provision.debian import cache_dir
from qmpcompat.reaper import temp_dir
from qmpcompat.safety import Policy, check_options

CTL_ENV = "QMPCOMPAT_FORKSERVER"
PROGRAM_ENV = "QMPCOMPAT_FORKSERVER_PROGRAM"  # the argv[0] the server runs as (the binary)
SOURCE = "forkserver.c"
CFLAGS = ("-shared", "-fPIC", "-O2", "-fvisibility=hidden", "-Wall", "-Werror")
_INT = 4  # the server's reply: a native C int


@functools.cache
def _built() -> Path | str:
    """The library (compiled on first use), or why there is none."""
    source = resources.files("qmpcompat").joinpath("data", SOURCE).read_bytes()
    cc = shutil.which("cc") or shutil.which("gcc")
    if cc is None:
        return "no C compiler (cc or gcc) on PATH to build the fork server's library"
    try:
        version = subprocess.run([cc, "--version"], capture_output=True, text=True,
                                 timeout=30).stdout.partition("\n")[0]
    except (OSError, subprocess.SubprocessError) as exc:
        return f"{cc} does not run: {exc}"
    digest = hashlib.sha256(b"\0".join([source, version.encode(), platform.machine().encode(),
                                        " ".join(CFLAGS).encode()])).hexdigest()[:16]
    out = cache_dir() / "forkserver" / f"forkserver-{digest}.so"
    if out.is_file():
        return out
    out.parent.mkdir(parents=True, exist_ok=True)
    with temp_dir(out.parent, ".store-") as work:
        (work / SOURCE).write_bytes(source)
        try:
            done = subprocess.run([cc, *CFLAGS, "-o", str(work / out.name), str(work / SOURCE)],
                                  capture_output=True, text=True, timeout=120)
        except (OSError, subprocess.SubprocessError) as exc:
            return f"{cc} failed to build the fork server's library: {exc}"
        if done.returncode != 0:
            return f"{cc} failed to build the fork server's library: {done.stderr.strip()[-500:]}"
        os.replace(work / out.name, out)
    return out


def library() -> Path:
    """The fork server's preload library, built into the cache on first use;
    ForkServerUnavailable when it cannot be built."""
    built = _built()
    if isinstance(built, str):
        raise ForkServerUnavailable(built)
    return built


class ForkServer:
    """Forks QEMUs of one build and command line: ``options_for(path)`` gives
    QEMU's arguments after the build's own prefix for a QMP socket at ``path``;
    every QEMU gets them with ``qmp_name``, which it resolves in its own working
    dir (``options``). Use ``start`` first and ``close`` at the end; ``close``
    kills every QEMU it forked that still runs."""

    def __init__(self, build: QemuBuild, options_for: Callable[[Path], list[str]],
                 qmp_name: str, timeout: float = 10.0) -> None:
        self.build, self.timeout = build, timeout
        self._options_for, self._qmp_name = options_for, qmp_name
        self.options = options_for(Path(qmp_name))
        self.argv = [*build.command(), *self.options]
        self._server: Child | None = None
        self._ctl: socket.socket | None = None
        self._dir: Path | None = None

    def start(self) -> ForkServer:
        """Start the server (its command line passes the safety gate first, as
        QEMU would resolve it in the server's own dir: UnsafeInput if not) and
        wait until it is ready; ForkServerUnavailable (and nothing left running)
        when it does not get there within the timeout."""
        lib = library()
        why_not = self.build.provenance.fork_server if self.build.provenance else ""
        if why_not:
            raise ForkServerUnavailable(why_not)
        if os.environ.get("LD_PRELOAD"):
            raise ForkServerUnavailable("LD_PRELOAD is set already (the server would clear it)")
        self._dir = private_dir("qmpc-")
        try:
            check_options(self._options_for(self._dir / self._qmp_name),
                          Policy.for_case(self._dir))
            ours, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET)
            self._ctl = ours
            env = {**self.build.environ(), "LD_PRELOAD": str(lib),
                   CTL_ENV: str(theirs.fileno()),
                   PROGRAM_ENV: self.build.program or self.build.binary}
            with theirs:
                try:  # its QEMUs share the server's namespace (isolation)
                    self._server = Child([*prefix(self.build), *self.argv], env,
                                         self._dir / "server.stderr",
                                         pass_fds=(theirs.fileno(),), cwd=self._dir)
                except OSError as exc:
                    raise ForkServerUnavailable(f"{self.build.binary} does not start: {exc}") \
                        from None
            ready = self._answer(1, "starting")
        except BaseException:
            self.close()
            raise
        if ready != b"R":
            tail = self._server.stderr_tail() if self._server is not None else ""
            self.close()
            why = ("it had more than one thread before QEMU's main" if ready == b"T"
                   else "the preloaded library did not start in it")
            said = tail.strip().splitlines()[-1:] if tail.strip() else []
            raise ForkServerUnavailable(f"{self.build.binary}: {why}"
                                        + "".join(f" (it said: {line})" for line in said), tail)
        return self

    @property
    def pid(self) -> int | None:
        """The server's pid while it runs."""
        return self._server.pid if self._server is not None else None

    def _answer(self, size: int, what: str) -> bytes:
        assert self._ctl is not None
        self._ctl.settimeout(self.timeout)
        try:
            return self._ctl.recv(size)
        except TimeoutError:
            raise ForkServerUnavailable(f"the server did not answer within {self.timeout:g}s "
                                        f"{what}") from None
        except OSError as exc:
            raise ForkServerUnavailable(f"the server's socket failed {what}: {exc}") from None

    def spawn(self, workdir: Path, stderr_path: Path) -> Child:
        """A new QEMU working in ``workdir`` (where its relative QMP socket path
        points), its output in ``stderr_path``, adopted by this process;
        ForkServerUnavailable when the server no longer serves (the caller
        starts the QEMU by exec instead)."""
        if self._ctl is None:
            raise ForkServerUnavailable("the server is closed")
        token = uuid.uuid4().hex
        payload = b"F" + b"".join(os.fsencode(f"{k}={v}") + b"\0"
                                  for k, v in marks(token, workdir).items())
        dir_fd = os.open(workdir, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
        try:
            err_fd = os.open(stderr_path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_CLOEXEC,
                             0o600)
        except OSError:
            os.close(dir_fd)
            raise
        try:
            try:
                socket.send_fds(self._ctl, [payload], [dir_fd, err_fd])
            except OSError as exc:
                raise ForkServerUnavailable(f"the server's socket failed: {exc}") from None
            reply = self._answer(_INT, "forking a QEMU")
        finally:
            os.close(dir_fd)
            os.close(err_fd)
        pid = int.from_bytes(reply, sys.byteorder, signed=True) if len(reply) == _INT else 0
        if pid <= 0:
            raise ForkServerUnavailable("the server could not fork" if reply else
                                        "the server exited")
        return Child.adopt(pid, self.argv, stderr_path, token)

    def close(self, forked: bool = True) -> None:
        """Stop the server (it exits when its socket closes; it is killed too) and,
        with ``forked``, kill what it forked that still runs."""
        ctl, self._ctl = self._ctl, None
        if ctl is not None:
            ctl.close()
        server, self._server = self._server, None
        if server is not None:
            server.signal_kill()
            if forked:
                server.reap()  # its token is in every forked QEMU's start-up environment
            else:
                server.proc.wait()
        if self._dir is not None:
            shutil.rmtree(self._dir, ignore_errors=True)
            self._dir = None
