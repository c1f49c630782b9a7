"""libvirt-style queries over an introspected QAPI schema.

A query is ``command_or_event/arg-type/member/...`` (see libvirt's
``virQEMUQAPISchemaPathGet``). Each part after the first two:

- ``name``      selects the object member ``name``;
- ``*name``     the same, but only if the member is optional;
- ``+case``     selects the union branch ``case``;
- ``^value``    true if the enum reached has ``value``;
- ``!jsontype`` true if the builtin reached has that json-type;
- ``$feature``  true if the entry reached (or the member or branch that led
  to it) has ``feature``.

The boolean parts (``^ ! $``) may only come last. Arrays are stepped through to
their element type; alternates are tried branch by branch, first success wins.
A name that starts with a character other than a letter is written with a
leading space (`` 1name``), as in libvirt.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import TypedDict, cast

from qmpcompat.errors import SchemaError
from qmpcompat.types import JSON


class Member(TypedDict, total=False):
    """An object member (``name``, ``type``, ``default`` when optional), an enum
    member (``name``), an alternate branch (``type``) or a union variant
    (``case``, ``type``), each with its ``features``."""

    name: str
    type: str
    default: JSON
    case: str
    features: list[str]


Entry = TypedDict("Entry", {
    "name": str, "meta-type": str, "features": list[str],
    "members": list[Member], "values": list[str], "tag": str, "variants": list[Member],
    "element-type": str, "arg-type": str, "ret-type": str, "allow-oob": bool,
    "json-type": str,
}, total=False)
"""One entry of a ``query-qmp-schema`` reply (qapi/introspect.json's SchemaInfo)."""


def as_entry(raw: object, source: str = "") -> Entry:
    """A copy of ``raw`` as a schema entry: an object with a string ``name`` and a
    ``meta-type`` (SchemaError otherwise); what lies below is as QEMU wrote it,
    and the walkers check each part's shape where they use it."""
    if not isinstance(raw, Mapping) or not isinstance(raw.get("name"), str) \
            or "meta-type" not in raw:
        raise SchemaError(f"not a query-qmp-schema entry: {raw!r:.120}", source)
    return cast(Entry, dict(raw))

SELECTORS = ("*", "+")
TESTS = ("^", "!", "$")
_MAX_DEPTH = 1000


class SchemaIndex:
    """The entries of a ``query-qmp-schema`` reply, looked up by name."""

    def __init__(self, entries: Iterable[object], source: str = "") -> None:
        self.source = source
        self.entries: dict[str, Entry] = {}
        for raw in entries:
            entry = as_entry(raw, source)
            self.entries[entry["name"]] = entry

    def __contains__(self, name: object) -> bool:
        return name in self.entries

    def __len__(self) -> int:
        return len(self.entries)

    def get(self, name: str) -> Entry | None:
        """The entry called ``name`` (a command, event or masked type name), or None."""
        return self.entries.get(name)

    def lookup(self, name: str) -> Entry:
        """The entry called ``name``; SchemaError if the schema does not have it
        (a reference to a missing type means the schema itself is broken)."""
        entry = self.entries.get(name)
        if entry is None:
            raise SchemaError(f"the schema refers to type {name!r}, which it does not define",
                              self.source)
        return entry

    def names(self, meta_type: str) -> list[str]:
        """Sorted names of the entries of one meta-type (``command``, ``event``, ...)."""
        return sorted(n for n, e in self.entries.items() if e.get("meta-type") == meta_type)


@dataclass(frozen=True)
class Step:
    """One part of a parsed query: ``kind`` is '' (member), '*', '+', '^', '!' or '$'."""

    kind: str
    name: str

    def __str__(self) -> str:
        if self.kind:
            return self.kind + self.name
        return self.name if self.name[:1].isalpha() else " " + self.name


def parse_query(query: str) -> tuple[str, list[Step]]:
    """Split ``query`` into its root (command or event) and steps.

    Raises SchemaError for an empty query or part, a step without a name, or a
    boolean part (``^ ! $``) that is not last.
    """
    if not isinstance(query, str) or not query.strip():
        raise SchemaError("empty schema query")
    parts = query.split("/")
    root, rest = parts[0], parts[1:]
    if not root:
        raise SchemaError("does not start with a command or event name", query)
    steps: list[Step] = []
    for i, part in enumerate(rest):
        if not part:
            raise SchemaError("has an empty part", query)
        first = part[0]
        if first in SELECTORS or first in TESTS:
            kind, name = first, part[1:]
        elif first == " ":
            kind, name = "", part[1:]
        elif first.isalpha() or first == "_":
            kind, name = "", part
        else:
            raise SchemaError(f"part {part!r} starts with {first!r}; use one of"
                              " * + ^ ! $, or a space before a name that starts with it", query)
        if not name:
            raise SchemaError(f"part {part!r} has no name", query)
        if kind in TESTS and i != len(rest) - 1:
            raise SchemaError(f"{kind}{name} tests a value and must come last", query)
        steps.append(Step(kind, name))
    return root, steps


def _find(items: list[Member] | None, key: str, value: str) -> Member | None:
    if not isinstance(items, list):
        return None
    for item in items:
        if isinstance(item, Mapping) and item.get(key) == value:
            return item
    return None


def _features(*holders: Entry | Member | None) -> set[str]:
    found: set[str] = set()
    for holder in holders:
        if holder:
            found.update(f for f in holder.get("features") or () if isinstance(f, str))
    return found


def _enum_has(entry: Entry, value: str) -> bool:
    if value in (entry.get("values") or ()):
        return True
    return _find(entry.get("members"), "name", value) is not None


class _Walk:
    """One evaluation of a query: returns the entry reached, or None."""

    def __init__(self, index: SchemaIndex) -> None:
        self.index = index
        self.depth = 0

    def type_(self, name: object, steps: list[Step], via: Member | None) -> Entry | None:
        if not isinstance(name, str):
            return None
        entry = self.index.get(name)
        if entry is None:
            return None
        self.depth += 1
        if self.depth > _MAX_DEPTH:
            raise SchemaError("query does not terminate: the schema loops", self.index.source)
        meta = entry.get("meta-type")
        if meta == "array" and steps:
            return self.type_(entry.get("element-type"), steps, via)
        if meta == "alternate" and steps:
            if steps[0].kind == "$" and self.test(entry, steps[0], via):
                return entry
            for branch in entry.get("members") or ():
                found = self.type_(branch.get("type"), steps, via)
                if found is not None:
                    return found
            return None
        if not steps:
            return entry
        step, rest = steps[0], steps[1:]
        if step.kind in TESTS:
            return entry if self.test(entry, step, via) else None
        if meta in ("command", "event"):
            if step.kind or step.name not in ("arg-type", "ret-type"):
                return None
            return self.type_(entry.get(step.name), rest, None)
        if meta != "object":
            return None
        if step.kind == "+":
            chosen = _find(entry.get("variants"), "case", step.name)
        else:
            chosen = _find(entry.get("members"), "name", step.name)
            if chosen is not None and step.kind == "*" and "default" not in chosen:
                return None
        if chosen is None:
            return None
        return self.type_(chosen.get("type"), rest, chosen)

    @staticmethod
    def test(entry: Entry, step: Step, via: Member | None) -> bool:
        meta = entry.get("meta-type")
        if step.kind == "^":
            return meta == "enum" and _enum_has(entry, step.name)
        if step.kind == "!":
            return meta == "builtin" and entry.get("json-type") == step.name
        return step.name in _features(entry, via)


def schema_get(index: SchemaIndex, query: str) -> Entry | None:
    """The entry that ``query`` reaches in ``index``, or None when it reaches nothing
    (or a boolean part is false). For a query ending in ``^ ! $`` the entry is the
    enum, builtin or type the test was made on. Raises SchemaError on bad syntax."""
    root, steps = parse_query(query)
    return _Walk(index).type_(root, steps, None)


def schema_has(index: SchemaIndex, query: str) -> bool:
    """True when ``query`` reaches an entry (and its boolean part, if any, holds)."""
    return schema_get(index, query) is not None
