"""Snapshots: an introspected schema (or a slice of it) in a canonical JSON form.

Masked type names change from build to build, so a snapshot renames every type
after the first path that reaches it, in libvirt query syntax, breadth first
with members in name order (``migrate/arg-type``, ``MigrationChannel/addr``,
``[migrate/arg-type/channels]``); roots that are types keep their root name,
builtins their own. Lists are sorted, except an object's members, which keep
QEMU's order (its input visitor checks them in that order, so the order decides
which error a malformed call gets); keys are sorted, one entry per line group:
two builds with the same interface give byte-identical snapshots, and a change
shows as a reviewable diff.
"""

from __future__ import annotations

import json
from collections import deque
from collections.abc import Mapping, Sequence
from pathlib import Path

from qmpcompat import datafile
from qmpcompat.errors import SchemaError
from qmpcompat.schema.model.normalize import DEFAULT_ROOTS, all_roots, resolve_roots
from qmpcompat.schema.model.query import Entry, Member, SchemaIndex
from qmpcompat.schema.sources.input import SchemaInput
from qmpcompat.schema.sources.qapi_convert import slice_conditions
from qmpcompat.types import JSONObject, qemu_id

FORMAT = "qmpcompat-schema-snapshot/1"
BASELINE_DIR = Path(__file__).resolve().parents[3] / "vectors" / "schema"
RELEASE_DIR = BASELINE_DIR / "releases"
# The migration slice: the differ's roots plus what vectors set up before them.
SLICE_ROOTS = (*DEFAULT_ROOTS, "migrate-set-capabilities", "migrate-set-parameters",
               "query-migrate")


def _branch_kind(entry: Entry) -> str:
    meta = entry.get("meta-type")
    if meta == "builtin":
        return str(entry.get("json-type"))
    return {"enum": "string"}.get(str(meta), str(meta))


def _children(entry: Entry, index: SchemaIndex) -> list[tuple[str, str]]:
    """(suffix, type) of each reference out of ``entry``, in canonical order."""
    meta = entry.get("meta-type")
    if meta in ("command", "event"):
        return [(f"/{k}", t) for k, t in (("arg-type", entry.get("arg-type")),
                                           ("ret-type", entry.get("ret-type"))) if t is not None]
    if meta == "object":
        out = [(f"/{m['name']}", m["type"]) for m in sorted(entry.get("members") or (),
                                                            key=lambda m: m["name"])]
        out += [(f"/+{v['case']}", v["type"]) for v in sorted(entry.get("variants") or (),
                                                              key=lambda v: v["case"])]
        return out
    if meta == "alternate":
        branches = [(f"|{_branch_kind(index.lookup(m['type']))}", m["type"])
                    for m in entry.get("members") or ()]
        return sorted(branches)
    if meta == "array":
        return [("", entry["element-type"])]
    return []


def canonical_names(index: SchemaIndex, roots: Sequence[str]) -> dict[str, str]:
    """Old name -> canonical name of every entry reachable from ``roots``."""
    paths: dict[str, str] = {}  # first path that reaches each entry
    queue: deque[str] = deque()
    for root in resolve_roots(index, list(roots)):
        if root.entry and root.entry not in paths:
            paths[root.entry] = root.name
            queue.append(root.entry)
    while queue:
        name = queue.popleft()
        for suffix, child in _children(index.lookup(name), index):
            if child not in paths:
                meta = index.lookup(child).get("meta-type")
                keep = meta in ("builtin", "command", "event")
                paths[child] = child if keep else paths[name] + suffix
                queue.append(child)
    names: dict[str, str] = {}

    def name_of(entry: str) -> str:
        if entry not in names:
            target = index.lookup(entry)
            if target.get("meta-type") == "array" and entry not in {r for r in roots}:
                names[entry] = f"[{name_of(target['element-type'])}]"
            else:
                names[entry] = paths[entry]
        return names[entry]

    for entry in paths:
        name_of(entry)
    return names


def _rename(entry: Entry, names: dict[str, str]) -> Entry:
    out = entry.copy()
    out["name"] = names[entry["name"]]
    if "arg-type" in out:
        out["arg-type"] = names[out["arg-type"]]
    if "ret-type" in out:
        out["ret-type"] = names[out["ret-type"]]
    if "element-type" in out:
        out["element-type"] = names[out["element-type"]]
    if "features" in out:
        out["features"] = sorted(out["features"])
    if out.get("meta-type") == "enum":
        out["values"] = sorted(out.get("values") or [m["name"] for m in out.get("members", [])])
        if "members" in out:
            out["members"] = sorted((_sorted_features(m) for m in out["members"]),
                                    key=lambda m: m["name"])
    elif "members" in out:
        members = [_sorted_features(_retyped(m, names)) for m in out["members"]]
        if out.get("meta-type") == "alternate":  # branches are chosen by JSON type: order is free
            members = sorted(members, key=lambda m: (m.get("name", ""), m["type"]))
        out["members"] = members  # an object's in QEMU's order: its input visitor checks them so
    if "variants" in out:
        out["variants"] = sorted((_retyped(v, names) for v in out["variants"]),
                                 key=lambda v: v["case"])
    return out


def _sorted_features(item: Member) -> Member:
    if "features" not in item:
        return item
    out = item.copy()
    out["features"] = sorted(item["features"])
    return out


def _retyped(item: Member, names: dict[str, str]) -> Member:
    out = item.copy()
    out["type"] = names[item["type"]]
    return out


def snapshot(schema: SchemaInput, roots: Sequence[str] | None = SLICE_ROOTS) -> dict[str, object]:
    """The snapshot of ``schema``: the slice reachable from ``roots`` (all commands
    and events when None), renamed and sorted canonically, with where the schema
    came from (``source``) when the input says."""
    index = SchemaIndex(schema.entries, schema.spec)
    chosen = list(roots) if roots is not None else all_roots(index)
    names = canonical_names(index, chosen)
    entries = sorted((_rename(index.lookup(n), names) for n in names), key=lambda e: e["name"])
    out: dict[str, object] = {"format": FORMAT, "label": schema.label, "qemu": schema.version,
                              "roots": "all" if roots is None else chosen, "entries": entries}
    found = schema.meta.get("source")
    source: JSONObject = dict(found) if isinstance(found, dict) else {}
    if schema.kind == "source" and schema.definitions:
        source["if"] = list(slice_conditions(schema.definitions, set(names), schema.defines))
        source["note"] = (
            "read from QAPI source, not a binary's introspection: what a build of this source "
            "would introspect, with each if: condition evaluated for Debian's x86_64 build "
            "(the symbols qmpcompat.schema.sources.qapi_convert.defines_for gives); 'if' lists "
            "the conditions of this slice and how each fell")
    if source:
        out["source"] = source
    return out


def dumps(data: Mapping[str, object]) -> str:
    """The canonical text of a snapshot: sorted keys, one-space indent, final newline."""
    return json.dumps(data, indent=1, sort_keys=True, ensure_ascii=False) + "\n"


def check_canonical(path: Path) -> list[str]:
    """Problems that keep the snapshot file ``path`` from being canonical (none: [])."""
    try:
        text = datafile.read_text(path)
        data = datafile.parse_json(text)
    except OSError as exc:
        return [f"{path}: cannot read: {exc.strerror}"]
    except ValueError as exc:
        return [f"{path}: not JSON: {exc}"]
    if not isinstance(data, dict) or data.get("format") != FORMAT:
        return [f"{path}: not a {FORMAT} file"]
    roots = data.get("roots")
    meta = {"source": data["source"]} if "source" in data else {}
    schema = SchemaInput(str(path), str(data.get("label", "")), "snapshot", data["entries"],
                         str(data.get("qemu", "")), meta)
    try:
        again = snapshot(schema, None if roots == "all" else roots)
    except SchemaError as exc:
        return [f"{path}: {exc}"]
    if dumps(again) != text:
        return [f"{path}: not canonical; regenerate it with `qmpcompat snapshot --baselines`"]
    return []


def baseline_path(version: str, directory: Path = BASELINE_DIR) -> Path:
    """Where the committed baseline of QEMU ``version`` lives (a provisioned
    build's in ``BASELINE_DIR``, a recorded release's in ``RELEASE_DIR``)."""
    return directory / f"{qemu_id(version)}.json"


def from_snapshot(path: Path) -> SchemaInput:
    """The entries stored in a snapshot file (or a bare query-qmp-schema reply)."""
    try:
        data = datafile.load_json(path)
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
