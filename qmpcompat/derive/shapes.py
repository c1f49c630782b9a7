"""Walking an argument type of an introspected schema the way QEMU's input
visitor does: objects member by member in schema order (a union's base members,
then the chosen branch's members, flattened into one JSON object), arrays element
by element, and a safe valid value for every type.

A ``Shape`` is one concrete layout of an object type: a union contributes one
shape per branch (recursively, so ``MigrationAddress`` has one shape per
transport, and its ``socket`` branch one per socket type).
"""

from __future__ import annotations

from dataclasses import dataclass

from qmpcompat.derive.values import valid_scalar
from qmpcompat.errors import SchemaError
from qmpcompat.schema.model.query import Entry, SchemaIndex
from qmpcompat.types import JSON, JSONObject

JSON_TYPES = ("string", "int", "number", "boolean", "null", "object", "array")


@dataclass(frozen=True)
class Member:
    """One member of a shape, in the order QEMU visits it."""

    name: str
    type: str  # a (masked) type name of the schema
    optional: bool
    tag: bool = False  # the discriminator of a union


@dataclass(frozen=True)
class Shape:
    """An object type with every union tag fixed to one branch."""

    members: tuple[Member, ...]
    tags: tuple[tuple[str, str], ...] = ()  # (tag member, branch), outermost first

    def label(self, upto: str | None = None) -> str:
        """``+case`` for each tag visited before member ``upto`` (all tags when None):
        the branches that decide how QEMU reaches that member."""
        out = ""
        for member in self.members:
            if member.name == upto:
                break
            out += "".join(f"+{case}" for tag, case in self.tags if tag == member.name)
        return out

    @property
    def required(self) -> list[Member]:
        return [m for m in self.members if not m.optional]


class TypeWalker:
    """Answers questions about types of one schema: what a type is, its shapes,
    the JSON types it accepts, and a safe valid value for it."""

    def __init__(self, index: SchemaIndex) -> None:
        self.index = index

    def entry(self, name: str) -> Entry:
        return self.index.lookup(name)

    def meta(self, name: str) -> str:
        return str(self.entry(name)["meta-type"])

    def arg_type(self, command: str) -> str:
        """The argument type of ``command``; SchemaError if the binary lacks the command."""
        entry = self.index.get(command)
        if entry is None or entry.get("meta-type") != "command":
            raise SchemaError(f"the binary has no command {command!r}", self.index.source)
        return str(entry["arg-type"])

    def enum_values(self, name: str) -> list[str]:
        """An enum's values, from ``members`` (6.2+) or the older ``values``."""
        entry = self.entry(name)
        if entry.get("members"):
            return [str(m["name"]) for m in entry["members"]]
        return [str(v) for v in entry.get("values") or ()]

    def shapes(self, name: str, depth: int = 0) -> list[Shape]:
        """Every shape of object type ``name``, branches in schema order. A tag value
        without a branch gives a shape with the base members only."""
        if depth > 20:
            raise SchemaError(f"type {name!r} nests unions too deeply", self.index.source)
        entry = self.entry(name)
        tag = entry.get("tag")
        base = tuple(Member(str(m["name"]), str(m["type"]), "default" in m, m["name"] == tag)
                     for m in entry.get("members") or ())
        if not tag:
            return [Shape(base)]
        tag_type = next(m.type for m in base if m.name == tag)
        branches = {str(v["case"]): str(v["type"]) for v in entry.get("variants") or ()}
        out: list[Shape] = []
        for case in self.enum_values(tag_type):
            if case not in branches:
                out.append(Shape(base, ((tag, case),)))
                continue
            for sub in self.shapes(branches[case], depth + 1):
                out.append(Shape(base + sub.members, ((tag, case), *sub.tags)))
        return out

    def accepts(self, name: str) -> set[str]:
        """The JSON types (of ``JSON_TYPES``) a value of type ``name`` may have."""
        entry = self.entry(name)
        meta = entry["meta-type"]
        if meta == "builtin":
            jt = entry["json-type"]
            if jt == "value":
                return set(JSON_TYPES)
            return {"int", "number"} if jt == "number" else {jt if jt != "integer" else "int"}
        if meta == "enum":
            return {"string"}
        if meta == "alternate":
            out: set[str] = set()
            for branch in entry.get("members") or ():
                out |= self.accepts(str(branch["type"]))
            return out
        return {meta}  # object, array

    def valid(self, name: str, member: str = "", depth: int = 0) -> JSON:
        """A valid value of type ``name`` for a member called ``member``: required
        members only, every union on its first branch, addresses safe (see values)."""
        if depth > 40:
            raise SchemaError(f"type {name!r} has no finite valid value", self.index.source)
        entry = self.entry(name)
        meta = entry["meta-type"]
        if meta == "builtin":
            return valid_scalar(str(entry["json-type"]), member)
        if meta == "enum":
            return self.enum_values(name)[0]
        if meta == "array":
            element = str(entry["element-type"])
            scalar = valid_scalar("array", member)
            return scalar if scalar is not None else [self.valid(element, member, depth + 1)]
        if meta == "alternate":  # a scalar branch if there is one: it cannot recurse
            branches = sorted((str(b["type"]) for b in entry["members"]),
                              key=lambda t: self.meta(t) in ("object", "array"))
            return self.valid(branches[0], member, depth + 1)
        return self.fill(self.shapes(name)[0], depth)

    def fill(self, shape: Shape, depth: int = 0) -> JSONObject:
        """The valid object of ``shape``: its tags set, its required members valid."""
        tags = dict(shape.tags)
        return {m.name: tags[m.name] if m.name in tags else self.valid(m.type, m.name, depth + 1)
                for m in shape.required}
