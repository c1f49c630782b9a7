"""Turning what the user names into a schema: a list of introspection entries.

An input is one of

- a provisioned QEMU version (``7.2``, ``11.1``, ``10.0.13``, ``8.2.2``: a build
  of the default set); components are matched as a prefix and the newest match
  wins;
- the path of a QEMU binary (its ``query-qmp-schema`` is read);
- a snapshot JSON written by ``qmpcompat snapshot``;
- a QAPI source directory or schema file (``qapi/``, ``qapi/qapi-schema.json``);
- ``REPO@REF``: the QAPI source of a git ref in a QEMU checkout;
- ``debian:VERSION``: the QAPI source of a Debian source package of qemu;
- ``libvirt:VERSION[:ARCH]``: a QEMU release's ``query-qmp-schema`` as libvirt
  recorded it in its test data (``libvirt.py``).

QAPI source is converted to the entries introspection would give, with real
type names, so every input feeds the same normalizer.
"""

from __future__ import annotations

import os
import re
from pathlib import Path

from qmpcompat import datafile
from qmpcompat.errors import SchemaError
from qmpcompat.provision import build_from_path, cache_dir
from qmpcompat.provision.build import QemuBuild, manifest_of
from qmpcompat.schema.sources.input import SchemaInput
from qmpcompat.schema.sources.libvirt import from_libvirt
from qmpcompat.schema.sources.live import from_build
from qmpcompat.schema.sources.qapi import from_debian, from_git, from_source
from qmpcompat.schema.sources.qapi_convert import Conditions
from qmpcompat.schema.sources.snapshot import from_snapshot
from qmpcompat.selection import select
from qmpcompat.types import version_prefix

VERSION_RE = re.compile(r"^\d+(\.\d+){0,2}$")


def pick_build(spec: str, builds: list[QemuBuild]) -> QemuBuild:
    """The provisioned build whose version starts with ``spec`` component-wise,
    the newest when several do. SchemaError when none does."""
    matches = [b for b in builds if version_prefix(spec, b.version_str)]
    if not matches:
        have = ", ".join(b.version_str for b in builds) or "none"
        raise SchemaError(f"no provisioned QEMU matches version {spec!r} (provisioned: {have})",
                          spec)
    return max(matches, key=lambda b: b.version)


def provisioned_builds() -> list[QemuBuild]:
    """The builds of the default set (the default Debian suites' and the default
    foreign ones; from the cache when provisioned), by version."""
    return select().builds


def _is_program(path: Path) -> bool:
    """True for an executable file that is an ELF binary or a script."""
    with path.open("rb") as fh:
        magic = fh.read(4)
    return os.access(path, os.X_OK) and (magic == b"\x7fELF" or magic[:2] == b"#!")


def _is_json_file(path: Path) -> bool:
    """True when ``path`` holds JSON rather than QAPI source (which has # comments
    and single quotes)."""
    with path.open("rb") as fh:
        head = fh.read(4096).lstrip()
    return head[:1] in (b"[", b"{") and b"'" not in head[:200] and not head.startswith(b"{ '")


def _build_for_path(path: Path, builds: list[QemuBuild] | None) -> QemuBuild:
    """The QemuBuild of a binary: the provisioned build when it is one of them
    (it runs through its own loader), else the binary as it is."""
    resolved = path.resolve()
    if resolved.is_relative_to(cache_dir().resolve()):
        for build in builds or ():
            if Path(build.binary).resolve() == resolved:
                return build
        if (cached := manifest_of(path)) is not None:
            return cached
    return build_from_path(str(path))


def load_input(spec: str, builds: list[QemuBuild] | None = None,
               conditions: Conditions | None = None) -> SchemaInput:
    """Read the schema ``spec`` names (see the module doc); ``conditions``
    adjust the symbols QAPI source conditionals see. Raises SchemaError (or a
    provisioning error) with the input named when it cannot."""
    if spec.startswith("debian:"):
        return from_debian(spec.removeprefix("debian:"), conditions)
    if spec.startswith("libvirt:"):
        return from_libvirt(spec.removeprefix("libvirt:"))
    path = Path(spec).expanduser()
    if "@" in spec and not path.exists():
        repo, ref = spec.rsplit("@", 1)
        return from_git(repo, ref, conditions)
    if path.is_dir():
        return from_source(path, conditions)
    if path.is_file():
        if _is_program(path):
            return from_build(_build_for_path(path, builds), spec)
        if _is_json_file(path):
            return from_snapshot(path)
        return from_source(path, conditions)
    if datafile.given(path):  # a FIFO, a device, a dangling link: refused as a data file
        return from_snapshot(path)
    if VERSION_RE.match(spec):
        return from_build(pick_build(spec, builds if builds is not None
                                     else provisioned_builds()), spec)
    raise SchemaError("not a provisioned version, binary, snapshot, QAPI source, REPO@REF,"
                      " debian:VERSION or libvirt:VERSION", spec)
