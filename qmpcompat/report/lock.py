"""One run at a time per reports directory.

A run of the suite (its controller: xdist workers write no report) and the
report commands (``report merge``, ``report render``, ``report changes -o``)
take the directory they write reports into for as long as the process lives:
an exclusive ``flock`` on ``DIR/.qmpcompat-lock``, which the kernel drops when
the process ends however it ends (no stale lock after a kill). A second run
that wants the same directory is refused at once with a message naming the
holder, instead of writing its verdict over the other's (the run that ended
last used to win: a PASS over a FAIL, a case lost). The lock's file descriptor
is close-on-exec, so no QEMU or helper the run starts holds it.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
from collections.abc import Iterator
from pathlib import Path

from qmpcompat.errors import ReportError

LOCK_NAME = ".qmpcompat-lock"
_HELD: dict[Path, int] = {}  # reports directory -> the lock's fd, in this process


def holder(directory: Path) -> str:
    """What the lock file of ``directory`` says of its holder (pid and command)."""
    with contextlib.suppress(OSError):
        said = (directory / LOCK_NAME).read_text(errors="replace").strip()
        if said:
            return said
    return "unknown"


def own(directory: Path, what: str) -> None:
    """Take ``directory`` (created if missing) for this process until it exits;
    ReportError naming the holder when another process has it. Taking it again
    in the same process is a no-op."""
    directory.mkdir(parents=True, exist_ok=True)
    key = directory.resolve()
    if key in _HELD:
        return
    try:
        fd = os.open(key / LOCK_NAME, os.O_RDWR | os.O_CREAT | os.O_NOFOLLOW | os.O_CLOEXEC, 0o644)
    except OSError as exc:
        raise ReportError(f"{directory}: cannot lock the reports directory ({exc.strerror})") from exc
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError as exc:
        os.close(fd)
        raise ReportError(f"reports directory {directory} is in use by another run "
                          f"({holder(key)}): wait until it ends, or write the reports "
                          "to another directory") from exc
    os.ftruncate(fd, 0)
    os.write(fd, f"pid {os.getpid()}: {what}\n".encode())
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
