"""The lint of a vector set, remembered by what it reads.

Every run lints its vector set before it starts (``qmpcompat.pytest_plugin.state``),
about a second of CPU for the committed set. The same files linted by the
same qmpcompat (with the same Python, PyYAML and jsonschema, and the same
options) have the same problems, so a run whose set and code are unchanged
since an earlier one takes that lint's problems from ``CACHE/lint/``.

The key (``key``) is a digest of the root's name, of every file under the root
(its path and bytes), of every file of the qmpcompat package, of those
versions and of the options. A tree that holds anything but directories and
regular files (a symbolic link, whose target could change behind the key; a
FIFO; a device), a file that cannot be read, or more than ``MAX_FILES`` files
or ``MAX_BYTES`` bytes in all is linted afresh every time and nothing is
remembered. An entry is a JSON list of the problems, written whole and renamed
into place; one that does not read is linted again. At most ``KEEP`` entries
are kept, the least recently written removed first.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import stat
import sys
from collections.abc import Callable
from dataclasses import asdict
from importlib import metadata
from pathlib import Path

import yaml

import qmpcompat
from qmpcompat import datafile
from qmpcompat.reaper import write_atomic
from qmpcompat.vectors.lint import Problem

KEEP = 256  # entries kept under CACHE/lint/ (a clean set's is `[]`; one finding about 200 bytes)
# A tree past these is linted afresh rather than read whole for its key (the committed
# set: about 80 files, 1 MiB; the package about 200 files, 1.4 MiB).
MAX_FILES = 5000
MAX_BYTES = 64 * 1024 * 1024
Lint = Callable[[], list[Problem]]


def _tree(root: Path, skip: frozenset[str] = frozenset()) -> list[Path] | None:
    """Every regular file under ``root``, sorted; None when the tree holds
    anything else or changes while it is walked (directories named in ``skip``
    are left out)."""
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


def _versions() -> str:
    try:
        schema = metadata.version("jsonschema")
    except metadata.PackageNotFoundError:
        schema = "?"
    return f"{sys.version}\0{yaml.__version__}\0{schema}"


def key(root: Path, options: str) -> str | None:
    """The digest a lint of ``root`` with ``options`` is remembered by; None when
    the tree cannot be keyed (see the module doc)."""
    package = Path(qmpcompat.__file__).resolve().parent
    digest = hashlib.sha256(f"{_versions()}\0{options}\0{root.name}\0".encode())
    size = 0
    for base, skip in ((root, frozenset()), (package, frozenset({"__pycache__"}))):
        files = _tree(base, skip)
        if files is None:
            return None
        for path in files:
            try:
                data = datafile.read_bytes(path)
            except OSError:
                return None
            size += len(data)
            if size > MAX_BYTES:
                return None
            digest.update(f"{path.relative_to(base)}\0{len(data)}\0".encode() + data)
        digest.update(b"\1")
    return digest.hexdigest()


def _read(path: Path) -> list[Problem] | None:
    try:
        entries = json.loads(path.read_text())
        return [Problem(str(e["file"]), e["line"], e["vector_id"], str(e["message"]))
                for e in entries]
    except (OSError, ValueError, TypeError, KeyError):
        return None


def _write(cache: Path, name: str, problems: list[Problem]) -> None:
    """Write one entry (whole: ``write_atomic``) and drop the oldest past KEEP; a
    cache that cannot be written is no error."""
    with contextlib.suppress(OSError):
        write_atomic(cache / f"{name}.json", json.dumps([asdict(p) for p in problems]))
        entries = sorted(cache.glob("*.json"), key=lambda p: p.stat().st_mtime_ns)
        for old in entries[:-KEEP]:
            old.unlink(missing_ok=True)


def remembered(root: Path, options: str, cache: Path, lint: Lint) -> list[Problem]:
    """The problems ``lint()`` finds in the vector set under ``root`` linted with
    ``options``: remembered under ``cache`` from an earlier lint of the same
    files by the same code, else linted now (and remembered)."""
    name = key(root, options)
    if name is None:
        return lint()
    found = _read(cache / f"{name}.json")
    if found is not None:
        return found
    problems = lint()
    _write(cache, name, problems)
    return problems
