"""Starting and stopping a QEMU child process that can never outlive us."""

from __future__ import annotations

import contextlib
import ctypes
import os
import signal
import subprocess
import tempfile
from pathlib import Path

from qmpcompat.harness.reaper import mark

PR_SET_PDEATHSIG = 1
_libc = ctypes.CDLL(None, use_errno=True)


def _die_with_parent() -> None:  # runs in the child between fork and exec
    _libc.prctl(PR_SET_PDEATHSIG, signal.SIGKILL)
    os.setpgid(0, 0)


MAX_BASE = 60  # unix socket paths must stay under 108 bytes


def private_dir(prefix: str = "qmpc-") -> Path:
    """A new 0700 directory under $TMPDIR (or /tmp when $TMPDIR is unset or too
    long for unix socket paths, which cannot exceed 107 bytes)."""
    base = tempfile.gettempdir()
    if len(base) > MAX_BASE:
        base = "/tmp"
    path = Path(tempfile.mkdtemp(prefix=prefix, dir=base))
    path.chmod(0o700)
    mark(path)
    return path


class Child:
    """A process whose stderr goes to a file; killed with SIGKILL if we die."""

    def __init__(self, argv: list[str], env: dict[str, str], stderr_path: Path,
                 pass_fds: tuple[int, ...] = ()) -> None:
        self.argv = argv
        self.stderr_path = stderr_path
        with open(stderr_path, "wb") as err:
            self.proc = subprocess.Popen(argv, env=env, stdin=subprocess.DEVNULL,
                                         stdout=err, stderr=err, pass_fds=pass_fds,
                                         preexec_fn=_die_with_parent)
        self.pid = self.proc.pid

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
        """SIGKILL the process group (QEMU and anything it spawned, e.g. an exec: sink)."""
        if self.proc.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.pid, signal.SIGKILL)
        return self.proc.wait()
