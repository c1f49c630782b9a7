"""A build's self-check, remembered by what its outcome depends on.

Every run self-checks each build before it starts (``qmpcompat.selfcheck``,
then the feature probe, ``qmpcompat.harness.features``): five QEMUs, about
0.3 s of CPU a build. What they see depends on the build's own files, on which
of the host's QEMU dirs exist and whether this host lets them be hidden, and on
qmpcompat's code. So a check that passed is remembered under
``CACHE/selfcheck/``, and a later run whose build, host dirs and code are all
unchanged takes its result instead of starting those QEMUs again. The result
says so: its ``Provenance.remembered`` is when the check ran, and every report
shows it. The start check (``check_starts``) still runs every time.

The key (``key``) is a digest of:

- every file of the qmpcompat package (``qmpcompat.memo.package_digest``);
- the build as the run has it (``QemuBuild.to_json``: binary, loader, library
  path, environment, data dirs, label, request, ...) and the ``QEMU*``
  variables of this process's environment, which its QEMUs inherit;
- its isolation (``selfcheck.isolation_of``: the host's QEMU dirs that exist
  here, and why they cannot be hidden, if they cannot);
- every entry under each of the build's own dirs (``QemuBuild.own_dirs``),
  and under the host's QEMU dirs when they cannot be hidden from it (or, for
  a binary used in place, its compiled-in dirs, which are its own): path,
  kind, size, modification time and inode, a link's target.

Never remembered: a check that failed (it runs again every time), a build
whose binary is not an ELF file (a wrapper decides at each start what it
runs), a build with more than ``memo.MAX_FILES`` entries in those dirs.
``recheck`` checks afresh (and remembers that): ``qmpcompat provision`` and a
run with ``--qmpcompat-fresh`` do.
"""

from __future__ import annotations

import hashlib
import json
import os
import stat
from collections.abc import Callable
from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path

from qmpcompat import memo
from qmpcompat.provision.build import QemuBuild
from qmpcompat.provision.elf import is_elf
from qmpcompat.provision.provenance import compiled_dirs
from qmpcompat.selfcheck import isolation_of
from qmpcompat.types import json_object

KEEP = 64  # entries kept under CACHE/selfcheck/ (one a build and host state, about 6 KB each)
Check = Callable[[QemuBuild], QemuBuild]


def _entries(root: str, out: list[str]) -> bool:
    """Append a line per entry under ``root`` (``root`` itself included) to
    ``out``; False past ``memo.MAX_FILES`` entries in all."""
    for top, dirs, files in os.walk(root, followlinks=False):
        for name in sorted([*dirs, *files]):
            path = os.path.join(top, name)
            try:
                st = os.lstat(path)
                link = os.readlink(path) if stat.S_ISLNK(st.st_mode) else ""
            except OSError:
                link, st = "?", None
            kind = "?" if st is None else stat.S_IFMT(st.st_mode)
            sized = "" if st is None or stat.S_ISDIR(st.st_mode) else \
                f"{st.st_size} {st.st_mtime_ns} {st.st_ino}"
            out.append(f"{path}\0{kind}\0{sized}\0{link}")
        if len(out) > memo.MAX_FILES:
            return False
    return True


def key(build: QemuBuild) -> str | None:
    """The digest a self-check of ``build`` is remembered by; None when it is
    never remembered (see the module doc)."""
    package = memo.package_digest()
    if package is None or not is_elf(Path(build.binary)):
        return None
    mode, present, note = isolation_of(build)
    dirs = list(build.own_dirs())
    if mode == "unavailable":
        dirs += present
    elif mode == "in place":
        dirs += [d for d in compiled_dirs(Path(build.binary)) if os.path.isdir(d)]
    lines: list[str] = []
    for d in dict.fromkeys(dirs):
        lines.append(f"{d}\0{os.path.isdir(d)}")
        if not _entries(d, lines):
            return None
    env = sorted((k, v) for k, v in os.environ.items() if k.startswith("QEMU"))  # QEMU reads these
    text = json.dumps([package, build.to_json(), env, mode, present, note, lines], sort_keys=True)
    return hashlib.sha256(text.encode()).hexdigest()


def checked(build: QemuBuild, check: Check, cache: Path, recheck: bool = False) -> QemuBuild:
    """``check(build)``, or its result remembered under ``cache`` from an earlier
    check of the same build in the same state (its provenance then says when
    that check ran). A result ``check`` returns is remembered; what it raises
    is not."""
    name = key(build)
    if name is not None and not recheck:
        found = memo.read(cache, name)
        if isinstance(found, dict):
            try:
                stored = QemuBuild.from_json(json_object(found["build"]))
                when = str(found["checked"])
            except (KeyError, TypeError, ValueError):
                stored = None
            if stored is not None and stored.provenance is not None \
                    and stored.binary == build.binary:
                return replace(stored, provenance=replace(stored.provenance, remembered=when))
    done = check(build)
    if name is not None:
        when = datetime.now(UTC).isoformat(timespec="seconds")
        memo.write(cache, name, {"checked": when, "build": done.to_json()}, KEEP)  # type: ignore[dict-item]
    return done
