"""Comparing schemas: one pair, or a history of several inputs.

A history of inputs A, B, C, ... compares each consecutive step (A->B, B->C)
and, transitively, the oldest with every later one (A->C, ...), so a change
that one step adds and the next takes back still shows.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from itertools import pairwise

from qmpcompat.schema.differ.diff import diff_models
from qmpcompat.schema.differ.rules import Finding, as_configuration, classify, conditional_kind
from qmpcompat.schema.model.normalize import DEFAULT_ROOTS, normalize, resolve_roots
from qmpcompat.schema.model.query import SchemaIndex
from qmpcompat.schema.sources.input import SchemaInput
from qmpcompat.types import JSON, JSONObject


@dataclass
class Loaded:
    """One input with its index and model."""

    input: SchemaInput
    index: SchemaIndex
    model: JSONObject

    @property
    def label(self) -> str:
        return self.input.label


@dataclass
class Comparison:
    """The findings of one old -> new comparison."""

    old: str
    new: str
    step: str  # "step" (consecutive) or "transitive"
    findings: list[Finding] = field(default_factory=list)


def load(schema: SchemaInput, roots: Sequence[str] = DEFAULT_ROOTS) -> Loaded:
    """Index and normalize one input."""
    index = SchemaIndex(schema.entries, schema.spec)
    return Loaded(schema, index, normalize(index, list(roots)))


def _reach(index: SchemaIndex, start: str, target: str) -> bool:
    """True when entry ``target`` is reachable from entry ``start``."""
    seen: set[str] = set()
    todo = [start]
    while todo:
        name = todo.pop()
        if name == target:
            return True
        if name in seen:
            continue
        seen.add(name)
        entry = index.get(name) or {}
        todo.extend(m["type"] for m in entry.get("members") or () if isinstance(m, dict)
                    and "type" in m)
        todo.extend(v["type"] for v in entry.get("variants") or ())
        if "element-type" in entry:
            todo.append(entry["element-type"])
    return False


def usage(index: SchemaIndex, entry: str) -> str:
    """How the schema uses type ``entry``: input, output, both or unused."""
    found: set[str] = set()
    for name in index.names("command") + index.names("event"):
        cmd = index.entries[name]
        if cmd["meta-type"] == "command" and _reach(index, cmd["arg-type"], entry):
            found.add("input")
        if cmd["meta-type"] == "event" and _reach(index, cmd["arg-type"], entry):
            found.add("output")
        if "ret-type" in cmd and _reach(index, cmd["ret-type"], entry):
            found.add("output")
        if len(found) == 2:
            return "both"
    return found.pop() if found else "unused"


def _root_info(loaded: list[Loaded], root: str) -> tuple[str, str]:
    """(kind of the root's node, direction it is used in), from whichever side has it."""
    directions = set()
    kind = ""
    for side in loaded:
        node = side.model.get(root)
        if node is None:
            continue
        kind = kind or (str(node.get("kind", "")) if isinstance(node, dict) else "builtin")
        if kind in ("command", "event"):
            return kind, "output" if kind == "event" else "both"
        entry = next((r.entry for r in resolve_roots(side.index, [root]) if r.entry), None)
        if entry:
            directions.add(usage(side.index, entry))
    directions.discard("unused")
    if len(directions) == 1:
        return kind, directions.pop()
    return kind, "both"


def _at(node: JSON, path: tuple[str, ...]) -> JSON:
    for key in path:
        if not isinstance(node, dict) or key not in node:
            return None
        node = node[key]
    return node


def _removed_flags(model: JSONObject, path: tuple[str, ...]) -> frozenset[str]:
    """Features of the tag value of a removed union branch at ``path``."""
    if len(path) < 2 or path[-2] != "variants":
        return frozenset()
    union = _at(model, path[:-2])
    tag_member = union.get("tag") if isinstance(union, dict) else None
    flags = _at(union, ("members", str(tag_member), "type", "values", path[-1], "features"))
    return frozenset(flags) if isinstance(flags, dict) else frozenset()


def _unstable(*nodes: JSON) -> bool:
    return any(isinstance(n, dict) and isinstance(flags := n.get("features", {}), dict)
               and "unstable" in flags for n in nodes)


def _condition(old: Loaded, new: Loaded, path: tuple[str, ...],
               op: str) -> tuple[str, str] | None:
    """(condition, the side it is off in) when ``path`` names something the QAPI
    source side has an ``if`` on, and both sides are the same QEMU version
    (QAPI source against a binary of that version); else None."""
    source = old if old.input.conditionals else new
    if not source.input.conditionals or not old.input.version or \
            old.input.version != new.input.version:
        return None
    thing = conditional_kind(path)
    if thing is None:
        return None
    kind, name = thing
    kinds = kind.split("|")
    cond = next((source.input.conditionals.get(k, {}).get(name) for k in kinds
                 if name in source.input.conditionals.get(k, {})), None)
    if cond is None:
        return None
    return cond, (new if op == "removed" else old).label


def compare(old: Loaded, new: Loaded, step: str = "step") -> Comparison:
    """Classified findings of ``old`` -> ``new``. Between QAPI source and a binary
    of the same version, what one side lacks because of an ``if`` is a
    configuration difference (CONFIG_CONDITION, info), not a compatibility one."""
    result = Comparison(old.label, new.label, step)
    info: dict[str, tuple[str, str]] = {}
    for change in diff_models(old.model, new.model):
        root = change.path[0]
        if root not in info:
            info[root] = _root_info([old, new], root)
        kind, direction = info[root]
        finding = classify(
            change, direction, kind, old.label, new.label,
            _removed_flags(old.model, change.path) if change.op == "removed" else frozenset(),
            _unstable(old.model.get(root), new.model.get(root)))
        if change.op in ("added", "removed") and (cond := _condition(old, new, change.path, change.op)):
            finding = as_configuration(finding, *cond)
        result.findings.append(finding)
    return result


def history(loaded: Sequence[Loaded]) -> list[Comparison]:
    """Each consecutive step, then the oldest against each later input beyond
    the first step."""
    out = [compare(a, b) for a, b in pairwise(loaded)]
    out += [compare(loaded[0], later, "transitive") for later in loaded[2:]]
    return out
