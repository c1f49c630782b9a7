"""The lint of a vector set, remembered by what it reads.

Every run lints its vector set before it starts (``qmpcompat.pytest_plugin.state``),
about a second of CPU for the committed set. The same files linted by the
same qmpcompat (with the same Python, PyYAML and jsonschema, and the same
options) have the same problems, so a run whose set and code are unchanged
since an earlier one takes that lint's problems from ``CACHE/lint/``.

The key (``key``) is a digest of the root's name, of every file under the root
(its path and bytes), of every file of the qmpcompat package
(``qmpcompat.memo.package_digest``), of those versions and of the options. A
tree that holds anything but directories and regular files (a symbolic link,
whose target could change behind the key; a FIFO; a device), a file that
cannot be read, or more than ``memo.MAX_FILES`` files or ``MAX_BYTES`` bytes in
all is linted afresh every time and nothing is remembered. An entry is a JSON
list of the problems (``qmpcompat.memo``: written whole and renamed into place;
one that does not read is linted again). At most ``KEEP`` entries are kept, the
least recently written removed first.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from dataclasses import asdict
from importlib import metadata
from pathlib import Path
from typing import Any

import yaml

from qmpcompat import datafile, memo
from qmpcompat.vectors.lint import Problem

KEEP = 256  # entries kept under CACHE/lint/ (a clean set's is `[]`; one finding about 200 bytes)
# A set past this is linted afresh rather than read whole for its key (the committed
# set: about 1 MiB); past ``memo.MAX_FILES`` files as well.
MAX_BYTES = 64 * 1024 * 1024
Lint = Callable[[], list[Problem]]


def _versions() -> str:
    try:
        schema = metadata.version("jsonschema")
    except metadata.PackageNotFoundError:
        schema = "?"
    return f"{yaml.__version__}\0{schema}"


def key(root: Path, options: str) -> str | None:
    """The digest a lint of ``root`` with ``options`` is remembered by; None when
    the tree cannot be keyed (see the module doc)."""
    package = memo.package_digest()
    files = memo.tree_files(root)
    if package is None or files is None:
        return None
    digest = hashlib.sha256(f"{package}\0{_versions()}\0{options}\0{root.name}\0".encode())
    size = 0
    for path in files:
        try:
            data = datafile.read_bytes(path)
        except OSError:
            return None
        size += len(data)
        if size > MAX_BYTES:
            return None
        digest.update(f"{path.relative_to(root)}\0{len(data)}\0".encode() + data)
    return digest.hexdigest()


def _problems(entries: Any) -> list[Problem] | None:  # JSON as it was read
    """The problems of an entry; None when it is not a list of them."""
    try:
        return [Problem(str(e["file"]), e["line"], e["vector_id"], str(e["message"]))
                for e in entries]
    except (TypeError, KeyError):
        return None


def remembered(root: Path, options: str, cache: Path, lint: Lint) -> list[Problem]:
    """The problems ``lint()`` finds in the vector set under ``root`` linted with
    ``options``: remembered under ``cache`` from an earlier lint of the same
    files by the same code, else linted now (and remembered)."""
    name = key(root, options)
    if name is None:
        return lint()
    entries = memo.read(cache, name)
    found = _problems(entries) if isinstance(entries, list) else None
    if found is not None:
        return found
    problems = lint()
    memo.write(cache, name, [asdict(p) for p in problems], KEEP)
    return problems
