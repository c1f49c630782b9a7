"""Turning what the user names into a schema: a list of introspection entries.

An input is one of

- a provisioned QEMU version (``7.2``, ``11.1``, ``10.0.13``): components are
  matched as a prefix and the newest match wins;
- the path of a QEMU binary (its ``query-qmp-schema`` is read);
- a snapshot JSON written by ``qmpcompat snapshot``;
- a QAPI source directory or schema file (``qapi/``, ``qapi/qapi-schema.json``);
- ``REPO@REF``: the QAPI source of a git ref in a QEMU checkout;
- ``debian:VERSION``: the QAPI source of a Debian source package of qemu;
- ``libvirt:VERSION[:ARCH]``: a QEMU release's ``query-qmp-schema`` as libvirt
  recorded it in its test data (``schema/libvirt.py``).

QAPI source is converted to the entries introspection would give, with real
type names, so every input feeds the same normalizer.
"""

from __future__ import annotations

import json
import os
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from qmpcompat.errors import SchemaError
from qmpcompat.types import qemu_id, version_prefix

if TYPE_CHECKING:
    from qmpcompat.schema.qapi_convert import Conditions

VERSION_RE = re.compile(r"^\d+(\.\d+){0,2}$")


@dataclass
class SchemaInput:
    """A schema read from one input: ``entries`` in query-qmp-schema form."""

    spec: str
    label: str
    kind: str  # "qemu", "snapshot", "source", "recorded"
    entries: list[dict[str, Any]]
    version: str = ""
    meta: dict[str, Any] = field(default_factory=dict)
    # QAPI source only: what has an ``if``, {kind: {name: condition}} (qapi_convert.conditionals)
    conditionals: dict[str, dict[str, str]] = field(default_factory=dict)
    definitions: list[Any] = field(default_factory=list)  # a source input's QAPI ``Expr``s


def pick_build(spec: str, builds: list[Any]) -> Any:
    """The provisioned build whose version starts with ``spec`` component-wise,
    the newest when several do. SchemaError when none does."""
    matches = [b for b in builds if version_prefix(spec, b.version_str)]
    if not matches:
        have = ", ".join(b.version_str for b in builds) or "none"
        raise SchemaError(f"no provisioned QEMU matches version {spec!r} (provisioned: {have})",
                          spec)
    return max(matches, key=lambda b: b.version)


def provisioned_builds() -> list[Any]:
    """The builds of the default Debian suites (from the cache when provisioned)."""
    from qmpcompat.provision import provision

    return provision().builds


_INTROSPECTED: dict[str, list[dict[str, Any]]] = {}


def introspect(build: Any) -> list[dict[str, Any]]:
    """Start ``build`` and return its ``query-qmp-schema`` reply (read once per
    binary and process; callers must not modify it)."""
    from qmpcompat.harness import Qemu

    if build.binary in _INTROSPECTED:
        return _INTROSPECTED[build.binary]

    with Qemu(build) as qemu:
        reply = qemu.cmd("query-qmp-schema")
    if not isinstance(reply, list):
        raise SchemaError("query-qmp-schema did not return a list", build.binary)
    _INTROSPECTED[build.binary] = reply
    return reply


def from_build(build: Any, spec: str = "") -> SchemaInput:
    """The introspected schema of a QemuBuild."""
    return SchemaInput(spec or build.version_str, qemu_id(build.version_str), "qemu",
                       introspect(build), build.version_str,
                       {"binary": build.binary, "package": build.package,
                        "source": {"kind": "binary", "package": build.package}})


def from_snapshot(path: Path) -> SchemaInput:
    """The entries stored in a snapshot file (or a bare query-qmp-schema reply)."""
    try:
        data = json.loads(path.read_text())
    except OSError as exc:
        raise SchemaError(f"cannot read: {exc.strerror}", str(path)) from exc
    except ValueError as exc:
        line = getattr(exc, "lineno", None)
        raise SchemaError(f"not JSON: {exc}", str(path), line) from exc
    if isinstance(data, list):
        return SchemaInput(str(path), path.stem, "snapshot", data)
    if not isinstance(data, dict) or not isinstance(data.get("entries"), list):
        raise SchemaError("neither a qmpcompat snapshot nor a query-qmp-schema reply", str(path))
    version = str(data.get("qemu", ""))
    return SchemaInput(str(path), str(data.get("label") or path.stem), "snapshot",
                       data["entries"], version, {k: v for k, v in data.items() if k != "entries"})


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


def _build_for_path(path: Path, builds: list[Any] | None) -> Any:
    """The QemuBuild of a binary: the provisioned build when it is one of them
    (it runs through its own loader), else the binary as it is."""
    from qmpcompat.provision import build_from_path, cache_dir

    resolved = path.resolve()
    if resolved.is_relative_to(cache_dir().resolve()):
        for build in builds if builds is not None else provisioned_builds():
            if Path(build.binary).resolve() == resolved:
                return build
    return build_from_path(str(path))


def load_input(spec: str, builds: list[Any] | None = None,
               conditions: Conditions | None = None) -> SchemaInput:
    """Read the schema ``spec`` names (see the module doc); ``conditions``
    adjust the symbols QAPI source conditionals see. Raises SchemaError (or a
    provisioning error) with the input named when it cannot."""
    if spec.startswith("debian:"):
        from qmpcompat.schema.qapi_source import from_debian

        return from_debian(spec.removeprefix("debian:"), conditions)
    if spec.startswith("libvirt:"):
        from qmpcompat.schema.libvirt import from_libvirt

        return from_libvirt(spec.removeprefix("libvirt:"))
    path = Path(spec).expanduser()
    if "@" in spec and not path.exists():
        from qmpcompat.schema.qapi_source import from_git

        repo, ref = spec.rsplit("@", 1)
        return from_git(repo, ref, conditions)
    if path.is_dir():
        from qmpcompat.schema.qapi_source import from_source

        return from_source(path, conditions)
    if path.is_file():
        if _is_program(path):
            return from_build(_build_for_path(path, builds), spec)
        if _is_json_file(path):
            return from_snapshot(path)
        from qmpcompat.schema.qapi_source import from_source

        return from_source(path, conditions)
    if VERSION_RE.match(spec):
        return from_build(pick_build(spec, builds if builds is not None
                                     else provisioned_builds()), spec)
    raise SchemaError("not a provisioned version, binary, snapshot, QAPI source, REPO@REF,"
                      " debian:VERSION or libvirt:VERSION", spec)
