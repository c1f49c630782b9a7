"""Reading the data files qmpcompat is given: vector files, flags, retired ids,
known defects, pair vectors, their JSON Schemas, schema-differ ignore files,
snapshots, results files given to the report commands, hunt replays.

Each must be a regular file, opened without following a symbolic link and
without blocking on a FIFO, and at most ``MAX_BYTES`` long. Anything else
raises :class:`DataFileRefused`, an ``OSError`` whose ``strerror`` says why, so
every loader's existing "cannot read: ..." path reports it with the file's
name; the content behind a link or a device is never read, so it can never be
printed, put in a report or parsed as data.
"""

from __future__ import annotations

import errno
import json
import os
import stat
from pathlib import Path

from qmpcompat.errors import DataFileRefused

MAX_BYTES = 256 * 1024 * 1024  # the largest data file read (committed ones are under 2 MiB)
_KINDS = ((stat.S_ISDIR, "a directory"), (stat.S_ISFIFO, "a FIFO"), (stat.S_ISSOCK, "a socket"),
          (stat.S_ISCHR, "a character device"), (stat.S_ISBLK, "a block device"))


def _refuse(path: Path, why: str, code: int = errno.EINVAL) -> DataFileRefused:
    return DataFileRefused(code, f"{why}: data files must be regular files", str(path))


def given(path: Path) -> bool:
    """True when ``path`` names something other than a directory (a file, a link,
    a FIFO, a device): a command taking a file or a label reads it as a file, and
    refuses it there if it is not a regular one."""
    return os.path.lexists(path) and not path.is_dir()


def refusal(path: Path) -> str | None:
    """Why ``path`` (which exists) cannot be read as a data file, or None."""
    try:
        st = os.lstat(path)
    except OSError:
        return None
    if stat.S_ISLNK(st.st_mode):
        return "is a symbolic link (not followed): data files must be regular files"
    if not stat.S_ISREG(st.st_mode):
        kind = next((name for test, name in _KINDS if test(st.st_mode)), "not a regular file")
        return f"is {kind}: data files must be regular files"
    return None


def read_bytes(path: Path) -> bytes:
    """The bytes of regular file ``path``; DataFileRefused for a symbolic link, a
    special file or a file over MAX_BYTES (OSError as ever when it cannot be read)."""
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC)
    except OSError as exc:
        if exc.errno == errno.ELOOP and os.path.islink(path):
            raise _refuse(path, "is a symbolic link (not followed)", errno.ELOOP) from None
        raise
    with os.fdopen(fd, "rb") as fh:
        st = os.fstat(fd)
        if not stat.S_ISREG(st.st_mode):
            kind = next((name for test, name in _KINDS if test(st.st_mode)), "not a regular file")
            raise _refuse(path, f"is {kind}")
        data = fh.read(MAX_BYTES + 1)
    if len(data) > MAX_BYTES:
        raise _refuse(path, f"is larger than {MAX_BYTES // (1024 * 1024)} MiB", errno.EFBIG)
    return data


def read_text(path: Path) -> str:
    """The text (UTF-8) of regular file ``path``; as :func:`read_bytes`. A byte
    that is not UTF-8 raises UnicodeDecodeError (a ValueError), as ``Path.read_text`` does."""
    return read_bytes(path).decode("utf-8")


MAX_DEPTH = 200  # nesting a JSON data file may have (results files nest about 8 deep)


def parse_json(text: str) -> object:
    """``json.loads(text)``, but a document nested deeper than MAX_DEPTH (whose
    readers would exhaust Python's recursion) is a ValueError like any other
    malformed JSON."""
    try:
        data = json.loads(text)  # the C parser: a deep document is a RecursionError here
    except RecursionError as exc:
        raise ValueError(f"nested more than {MAX_DEPTH} levels deep") from exc
    stack: list[tuple[object, int]] = [(data, 1)]  # the depth of what it holds, without recursion
    while stack:
        value, depth = stack.pop()
        if isinstance(value, dict | list):
            if depth > MAX_DEPTH:
                raise ValueError(f"nested more than {MAX_DEPTH} levels deep")
            stack += [(v, depth + 1) for v in (value.values() if isinstance(value, dict) else value)]
    return data


def load_json(path: Path) -> object:
    """The JSON data of regular file ``path`` (:func:`read_text`, :func:`parse_json`)."""
    return parse_json(read_text(path))
