"""One run at a time per reports directory.

A run of the suite (its controller: xdist workers write no report) and the
report commands (``report merge``, ``report render``, ``report changes -o``)
take the directory they write reports into while they write (the suite: for
as long as it lives): an exclusive ``flock`` on the directory itself, which the
kernel drops when the process ends however it ends (no stale lock after a
kill, and no lock file among the reports). A second run that wants the same
directory is refused at once with a message naming the holder (from
``/proc/locks``), instead of writing its verdict over the other's (the run
that ended last used to win: a PASS over a FAIL, a case lost). The lock's file
descriptor is close-on-exec, so no QEMU or helper the run starts holds it.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
from collections.abc import Iterator
from pathlib import Path

from qmpcompat.errors import ReportError

_HELD: dict[Path, int] = {}  # reports directory -> the locked fd, in this process


def holder(directory: Path) -> str:
    """Who holds the lock on ``directory``: ``pid N: COMMAND LINE`` (from
    /proc/locks), or ``unknown`` where the kernel does not say."""
    with contextlib.suppress(OSError, ValueError):
        st = os.stat(directory)
        want = (os.major(st.st_dev), os.minor(st.st_dev), st.st_ino)
        for line in Path("/proc/locks").read_text().splitlines():
            fields = line.split()
            if len(fields) < 6 or fields[1] != "FLOCK":
                continue
            major, minor, inode = fields[5].split(":")
            if (int(major, 16), int(minor, 16), int(inode)) == want:
                pid = int(fields[4])
                argv = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
                return f"pid {pid}: " + " ".join(a.decode(errors="replace") for a in argv if a)[:120]
    return "unknown"


def own(directory: Path, what: str) -> None:
    """Take ``directory`` (created if missing) for this process until it exits;
    ReportError naming the holder when another process has it. Taking it again
    in the same process is a no-op. ``what`` says who takes it (for errors)."""
    directory.mkdir(parents=True, exist_ok=True)
    key = directory.resolve()
    if key in _HELD:
        return
    try:
        fd = os.open(key, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
    except OSError as exc:
        raise ReportError(f"{directory}: cannot lock the reports directory for {what} "
                          f"({exc.strerror})") from exc
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError as exc:
        os.close(fd)
        raise ReportError(f"reports directory {directory} is in use by another run "
                          f"({holder(key)}): wait until it ends, or write the reports "
                          "to another directory") from exc
    _HELD[key] = fd


def release(directory: Path) -> None:
    """Give ``directory`` back before this process ends."""
    fd = _HELD.pop(directory.resolve(), None)
    if fd is not None:
        os.close(fd)


@contextlib.contextmanager
def owned(directory: Path, what: str) -> Iterator[None]:
    """``directory`` taken (``own``) for the ``with`` block, then given back
    (unless this process had it already)."""
    had = directory.resolve() in _HELD if directory.exists() else False
    own(directory, what)
    try:
        yield
    finally:
        if not had:
            release(directory)
