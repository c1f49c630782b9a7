"""Results remembered under the cache, by a digest of everything they depend on.

A remembered result is one JSON file, ``DIR/DIGEST.json``, written whole and
renamed into place (``write_atomic``); one that does not read is no entry. At
most ``keep`` entries are kept in a directory, the least recently written
removed first; a cache that cannot be written is no error. The digest is the
caller's: ``package_digest`` (every file of the qmpcompat package, so changed
code never takes an older result) and ``tree_files`` (the regular files of a
tree, refusing one that holds anything else) are what both users build it of
(``qmpcompat.vectors.lintmemo``: a vector set's lint; ``qmpcompat.checkmemo``:
a build's self-check). Nothing here starts a process.
"""

from __future__ import annotations

import contextlib
import functools
import hashlib
import json
import os
import stat
import sys
from pathlib import Path

import qmpcompat
from qmpcompat import datafile
from qmpcompat.reaper import write_atomic
from qmpcompat.types import JSON

KEEP = 256  # entries kept in one directory
# A tree past this is not keyed (the committed vector set: about 80 files; the
# package about 200; a provisioned build's own dirs 600-800 entries).
MAX_FILES = 5000


def tree_files(root: Path, skip: frozenset[str] = frozenset()) -> list[Path] | None:
    """Every regular file under ``root``, sorted; None when the tree holds
    anything else (a symbolic link, whose target could change behind a key; a
    FIFO; a device), more than ``MAX_FILES`` files, or changes while it is
    walked. Directories named in ``skip`` are left out."""
    found: list[Path] = []
    for top, dirs, files in os.walk(root, followlinks=False):
        dirs[:] = [d for d in dirs if d not in skip]
        for name in [*dirs, *files]:
            try:
                mode = os.lstat(os.path.join(top, name)).st_mode
            except OSError:
                return None
            if not (stat.S_ISDIR(mode) or stat.S_ISREG(mode)):
                return None
        found += [Path(top, f) for f in files]
        if len(found) > MAX_FILES:
            return None
    return sorted(found)


@functools.cache
def package_digest() -> str | None:
    """A digest of the Python version and of every file of the qmpcompat
    package (path and bytes), read once per process (the code a process runs
    is the code it imported); None when the package's tree cannot be keyed."""
    package = Path(qmpcompat.__file__).resolve().parent
    files = tree_files(package, frozenset({"__pycache__"}))
    if files is None:
        return None
    digest = hashlib.sha256(f"{sys.version}\0".encode())
    for path in files:
        try:
            data = datafile.read_bytes(path)
        except OSError:
            return None
        digest.update(f"{path.relative_to(package)}\0{len(data)}\0".encode() + data)
    return digest.hexdigest()


def read(cache: Path, name: str) -> JSON | None:
    """The entry ``name`` under ``cache``; None when there is none or it does not read."""
    try:
        return json.loads((cache / f"{name}.json").read_text())  # type: ignore[no-any-return]
    except (OSError, ValueError):
        return None


def write(cache: Path, name: str, value: JSON, keep: int = KEEP) -> None:
    """Write the entry ``name`` (whole) and drop the oldest past ``keep``."""
    with contextlib.suppress(OSError):
        write_atomic(cache / f"{name}.json", json.dumps(value))
        entries = sorted(cache.glob("*.json"), key=lambda p: p.stat().st_mtime_ns)
        for old in entries[:-keep]:
            old.unlink(missing_ok=True)
