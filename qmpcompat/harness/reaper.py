"""Removing a run's temp dirs even when the run is killed with SIGKILL.

The first private dir a process makes starts a reaper: a small process in
its own session that waits, on a pipe, for that process to end however it
ends, then kills what is left in the process's private dirs and removes them.
(QEMU itself already dies with its parent through PR_SET_PDEATHSIG.)

Run as ``python -m qmpcompat.harness.reaper PID BASE``.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import subprocess
import sys
from pathlib import Path

OWNER = ".owner"
# Every private dir the package makes starts with one of these (``private_dir``
# refuses any other): a QEMU's own dir, a vector case's, the hunt's floor
# samples', the hunt's Hypothesis home.
PREFIXES = ("qmpc-", "qmpv-", "qmpf-", "qmph-")
_REAPERS: dict[tuple[int, str], subprocess.Popen[bytes]] = {}


def mark(path: Path) -> None:
    """Record that ``path`` belongs to this process, and make sure a reaper watches it."""
    (path / OWNER).write_text(str(os.getpid()))
    base = str(path.parent)
    key = (os.getpid(), base)
    if key not in _REAPERS:
        _REAPERS[key] = subprocess.Popen(
            [sys.executable, "-m", "qmpcompat.harness.reaper", str(os.getpid()), base],
            stdin=subprocess.PIPE, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
            start_new_session=True, close_fds=True)


def owned_dirs(pid: int, base: Path) -> list[Path]:
    out = []
    for entry in base.iterdir() if base.is_dir() else ():
        if entry.name.startswith(PREFIXES) and entry.is_dir():
            try:
                if (entry / OWNER).read_text().strip() == str(pid):
                    out.append(entry)
            except OSError:
                continue
    return out


def _kill_users(dirs: list[Path]) -> None:
    """SIGKILL processes whose command line names one of ``dirs`` (sink commands)
    or whose environment says they belong to one (``QMPCOMPAT_CASE``, which
    QEMU and everything it starts inherit, daemons included)."""
    needles = [str(d).encode() for d in dirs]
    entries = {f"QMPCOMPAT_CASE={d}".encode() for d in dirs}
    for proc in Path("/proc").iterdir():
        if not proc.name.isdigit() or int(proc.name) == os.getpid():
            continue
        try:
            cmdline = (proc / "cmdline").read_bytes()
            environ = set((proc / "environ").read_bytes().split(b"\0"))
        except OSError:
            continue
        if any(n in cmdline for n in needles) or environ & entries:
            with contextlib.suppress(OSError):
                os.kill(int(proc.name), signal.SIGKILL)


def reap(pid: int, base: Path) -> None:
    dirs = owned_dirs(pid, base)
    if dirs:
        _kill_users(dirs)
        for d in dirs:
            shutil.rmtree(d, ignore_errors=True)


def main(argv: list[str]) -> int:
    pid, base = int(argv[0]), Path(argv[1])
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    try:
        while sys.stdin.buffer.read(65536):
            pass
    except OSError:
        pass
    reap(pid, base)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
