"""QAPI source as a schema input: a ``qapi/`` directory or schema file, a git ref
of a QEMU checkout, or a Debian ``qemu`` source package, converted to the
entries introspection would give (with real type names)."""

from __future__ import annotations

import subprocess
from dataclasses import replace
from pathlib import Path

from qmpcompat.errors import SchemaError
from qmpcompat.provision.debian import upstream_version
from qmpcompat.schema.model.query import as_entry
from qmpcompat.schema.sources.debsrc import debian_qapi_dir
from qmpcompat.schema.sources.input import SchemaInput
from qmpcompat.schema.sources.qapi_convert import Conditions, conditionals, defines_for, to_entries
from qmpcompat.schema.sources.qapi_source import ROOT_FILE, Expr, dir_reader, git_reader, parse_schema
from qmpcompat.types import JSONObject


def _as_input(exprs: list[Expr], spec: str, label: str, version: str = "",
              meta: JSONObject | None = None, conditions: Conditions | None = None) -> SchemaInput:
    # the parsed definitions keep their doc comments (the Since audit reads them)
    defines = (conditions or Conditions()).apply(defines_for(str((meta or {}).get("debian-version", ""))))
    source = {"kind": "source", "input": spec,
              **({"package": meta["debian-version"]} if meta and "debian-version" in meta else {})}
    meta = {**(meta or {}), "source": source}
    entries = [as_entry(e, spec) for e in to_entries(exprs, defines)]
    return SchemaInput(spec, label, "source", entries, version, meta, conditionals(exprs),
                       list(exprs), defines)


def _qemu_version(base: Path) -> str:
    try:
        return (base.parent / "VERSION").read_text().strip()
    except OSError:
        return ""


def from_source(path: Path, conditions: Conditions | None = None) -> SchemaInput:
    """The schema of a ``qapi/`` directory (or a QEMU tree holding one) or of a file."""
    path = path.expanduser()
    if path.is_dir():
        base = path / "qapi" if (path / "qapi" / ROOT_FILE).exists() else path
        if not (base / ROOT_FILE).exists():
            raise SchemaError(f"no {ROOT_FILE} here; name the qapi/ directory or a schema file",
                              str(path))
        exprs = parse_schema(ROOT_FILE, dir_reader(base))
        return _as_input([_relocate(e, base) for e in exprs], str(path), base.name,
                         _qemu_version(base), conditions=conditions)
    exprs = parse_schema(path.name, dir_reader(path.parent))
    return _as_input([_relocate(e, path.parent) for e in exprs], str(path), path.stem,
                     conditions=conditions)


def _relocate(expr: Expr, base: Path) -> Expr:
    return replace(expr, file=str(base / expr.file))


def from_git(repo: str, ref: str, conditions: Conditions | None = None) -> SchemaInput:
    """The schema of ``qapi/`` at git ``ref`` of the QEMU checkout ``repo``."""
    if not Path(repo, ".git").exists() and not Path(repo, "HEAD").exists():
        raise SchemaError("not a git checkout", repo)
    exprs = parse_schema(ROOT_FILE, git_reader(repo, ref, "qapi"))
    version = subprocess.run(["git", "-C", repo, "show", "--end-of-options", f"{ref}:VERSION"],
                             capture_output=True, text=True, check=False).stdout.strip()
    return _as_input(exprs, f"{repo}@{ref}", ref, version, {"repo": repo, "ref": ref},
                     conditions)


def from_debian(spec: str, conditions: Conditions | None = None) -> SchemaInput:
    """The schema of the Debian ``qemu`` source package ``spec`` names."""
    base, version = debian_qapi_dir(spec)
    exprs = parse_schema(ROOT_FILE, dir_reader(base))
    upstream = upstream_version(version)
    return _as_input([_relocate(e, base) for e in exprs], f"debian:{spec}",
                     f"debian-{upstream}", upstream, {"debian-version": version}, conditions)
