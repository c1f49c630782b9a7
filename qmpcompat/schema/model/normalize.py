"""The normalized structural model that every schema input is compared in.

Starting from roots (commands, events, or types reached by a query), each
type reference is replaced by the structure it names, so type names (masked
in introspection, real in source) never matter. Members, enum values,
branches and features are dicts keyed by name, so order never matters.
Nodes are plain JSON values:

- builtin: its json-type as a string (``"int"``, ``"string"``, ``"value"`` ...);
- ``{"kind": "enum", "values": {value: {"features": {...}}}, "features": {...}}``;
- ``{"kind": "object", "members": {name: {"optional": bool, "type": node,
  "features": {...}}}, "features": {...}}`` plus ``"tag"`` and ``"variants":
  {case: node}`` for a union (branches without members are left out, as a
  union's implicit empty branches are);
- ``{"kind": "array", "element": node}``;
- ``{"kind": "alternate", "branches": {json_kind: node}, "features": {...}}``
  (branches keyed by the JSON kind that selects them);
- ``{"kind": "command", "arg": node, "ret": node, "features": {...},
  "allow-oob": bool}`` and ``{"kind": "event", "arg": node, "features": {...}}``;
- ``{"kind": "ref", "root": name}`` where another root's type is used;
- ``{"kind": "recursive", "up": n}`` for a type that contains itself, ``n``
  levels up.
"""

from __future__ import annotations

from dataclasses import dataclass

from qmpcompat.errors import SchemaError
from qmpcompat.schema.model.query import Entry, Member, SchemaIndex, schema_get
from qmpcompat.types import JSON, JSONObject, json_object

Node = JSON

# Type roots that introspection cannot name: where the type is found.
TYPE_PATHS = {
    "MigrationChannel": "migrate/arg-type/channels",
    "MigrationAddress": "migrate/arg-type/channels/addr",
    "MigrateSetParameters": "migrate-set-parameters/arg-type",
    "MigrationParameters": "query-migrate-parameters/ret-type",
    "MigrationInfo": "query-migrate/ret-type",
}
DEFAULT_ROOTS = ("MigrationChannel", "migrate", "migrate-incoming")
# Deepest type nesting a model may have. QEMU's whole schema nests about 12
# levels deep; the differ's walks recurse a few frames per level, so a bound
# far below Python's recursion limit keeps every later step safe.
MAX_DEPTH = 64


@dataclass(frozen=True)
class Root:
    """A root of the model: a name, and the entry it starts from (None if absent)."""

    name: str
    entry: str | None


def _type_name(name: str) -> bool:
    """True for a QAPI type name (CamelCase), not a command or an EVENT_NAME."""
    return name[:1].isupper() and any(c.islower() for c in name) and "/" not in name


def resolve_roots(index: SchemaIndex, names: tuple[str, ...] | list[str]) -> list[Root]:
    """Find each root in ``index``: a command or event by name, a type by name
    (source, snapshots) or by its known path or a query path (introspection).
    A root the schema lacks has entry None; a type name that introspection
    cannot resolve (masked names, no known path) is a SchemaError."""
    named_types = any(_type_name(n) for n in index.entries)
    roots = []
    for name in names:
        entry = index.get(name)
        if entry is None:
            path = TYPE_PATHS.get(name, name if "/" in name else None)
            if path is None and _type_name(name) and not named_types:
                raise SchemaError(f"type {name!r} has no name in introspection: give a query path"
                                  " to it instead (e.g. migrate/arg-type/channels)", name)
            entry = schema_get(index, path) if path else None
        while entry is not None and entry.get("meta-type") == "array":
            entry = index.lookup(entry["element-type"])
        roots.append(Root(name, entry["name"] if entry else None))
    return roots


def _features(holder: Entry | Member) -> JSONObject:
    return {str(f): True for f in sorted(holder.get("features") or ())}


def _json_kind(node: Node) -> str:
    """The JSON kind that selects an alternate branch: enums are strings,
    ints and numbers are numbers."""
    if isinstance(node, str):
        return "number" if node == "int" else node
    kind = json_object(node).get("kind")
    return {"enum": "string", "alternate": "value"}.get(str(kind), str(kind))


class Normalizer:
    """Turns the entries reachable from ``roots`` into model nodes."""

    def __init__(self, index: SchemaIndex, roots: list[Root]) -> None:
        self.index = index
        self.roots = {r.entry: r.name for r in roots if r.entry}
        self.stack: list[str] = []
        self.memo: dict[str, Node] = {}
        self.lowest = 0

    def node(self, name: str, top: bool = False) -> Node:
        """The model of entry ``name``; memoized unless it refers to a type
        further up the stack (then it depends on where it is reached from)."""
        if not top and name in self.roots:
            return {"kind": "ref", "root": self.roots[name]}
        if name in self.stack:
            pos = self.stack.index(name)
            self.lowest = min(self.lowest, pos)
            return {"kind": "recursive", "up": len(self.stack) - pos}
        if name in self.memo:
            return self.memo[name]
        pos = len(self.stack)
        if pos >= MAX_DEPTH:
            chain = " -> ".join([*self.stack[:3], "...", *self.stack[-2:], name])
            raise SchemaError(f"types nest more than {MAX_DEPTH} levels deep ({chain}); QEMU's"
                              " own schemas nest about 12 levels deep", self.index.source)
        outer, self.lowest = self.lowest, pos
        self.stack.append(name)
        try:
            result = self._build(self.index.lookup(name))
        finally:
            self.stack.pop()
        inner, self.lowest = self.lowest, min(outer, self.lowest)
        if inner >= pos and not top:
            self.memo[name] = result
        return result

    def _build(self, entry: Entry) -> Node:
        meta = entry.get("meta-type")
        if meta == "builtin":
            return entry["json-type"]
        if meta == "enum":
            values: JSONObject
            if entry.get("members"):
                values = {m["name"]: {"features": _features(m)} for m in entry["members"]}
            else:
                values = {v: {"features": {}} for v in entry.get("values") or ()}
            return {"kind": "enum", "values": values, "features": _features(entry)}
        if meta == "array":
            return {"kind": "array", "element": self.node(entry["element-type"])}
        if meta == "alternate":
            branches = {}
            for member in entry.get("members") or ():
                branch = self.node(member["type"])
                branches[_json_kind(branch)] = branch
            return {"kind": "alternate", "branches": branches, "features": _features(entry)}
        if meta == "object":
            return self._object(entry)
        if meta in ("command", "event"):
            out: JSONObject = {"kind": meta, "arg": self.node(entry["arg-type"])}
            if meta == "command":
                out["ret"] = self.node(entry["ret-type"])
                out["allow-oob"] = bool(entry.get("allow-oob"))
            out["features"] = _features(entry)
            return out
        raise SchemaError(f"entry {entry.get('name')!r} has unknown meta-type {meta!r}",
                          self.index.source)

    def _object(self, entry: Entry) -> Node:
        members: JSONObject = {}
        for member in entry.get("members") or ():
            members[member["name"]] = {"optional": "default" in member,
                                       "type": self.node(member["type"]),
                                       "features": _features(member)}
        out: JSONObject = {"kind": "object", "members": members, "features": _features(entry)}
        if entry.get("tag") is not None:
            out["tag"] = entry["tag"]
            variants: JSONObject = {}
            for variant in entry.get("variants") or ():
                branch = self.node(variant["type"])
                if isinstance(branch, dict) and branch.get("kind") == "object" \
                        and not branch["members"] and "variants" not in branch:
                    continue
                variants[variant["case"]] = branch
            out["variants"] = variants
        return out


def normalize(index: SchemaIndex, roots: tuple[str, ...] | list[str] = DEFAULT_ROOTS
              ) -> dict[str, Node]:
    """The model of each root found in ``index`` (absent roots are left out)."""
    found = resolve_roots(index, roots)
    normalizer = Normalizer(index, found)
    return {r.name: normalizer.node(r.entry, top=True) for r in found if r.entry}


def all_roots(index: SchemaIndex) -> list[str]:
    """Every command and event of the schema, sorted: the roots of a whole schema."""
    return index.names("command") + index.names("event")
