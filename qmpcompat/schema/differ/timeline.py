"""The schema history: when each part of the migration interface appeared,
became optional, was deprecated or was removed, over every known release.

Each schema (a *point*: a release with its version and where it was seen) is
normalized (``model.py``) and flattened into *facts*, one per path in libvirt
query syntax: a member (``migrate/arg-type/uri``, with its optionality and type),
an enum value (``.../^main``), a union branch (``.../+socket``), an alternate
branch (``...|string``), a feature (``.../$deprecated``). Comparing the facts of
consecutive points gives the *events*; a gap of release lines between two points
(a release nobody recorded) is named on every event that crosses it.

Evidence: ``observed`` (a real QEMU answered ``query-qmp-schema``: a build, a
binary, libvirt's recorded replies, or a snapshot of one of them), ``source``
(the release's QAPI source), ``inferred`` (QEMU's deprecation documents),
``unknown`` (a snapshot that does not say where it came from); and ``patch``
(derived from a neighbour and QAPI changes), whose events name the commit of
the change that made them.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from itertools import pairwise
from typing import Required, TypedDict

from qmpcompat.errors import SchemaError
from qmpcompat.historydoc import EventJSON, LifecycleRow, ReleaseJSON, TimelineJSON
from qmpcompat.schema.differ.compare import load
from qmpcompat.schema.model.normalize import DEFAULT_ROOTS
from qmpcompat.schema.sources.input import SchemaInput
from qmpcompat.schema.sources.patch import change_note
from qmpcompat.schema.sources.releases import ORIGINS
from qmpcompat.types import JSON, JSONObject, Version, json_object


class Fact(TypedDict, total=False):
    """What a path of the schema is at one point: a member (its type, whether it
    is optional), an enum value, a branch, a feature, a command, a type."""

    what: Required[str]
    type: str
    optional: bool


Facts = dict[str, Fact]


EVIDENCE = ("observed", "source", "inferred", "unknown")


@dataclass
class Point:
    """One schema of the history."""

    version: str
    label: str
    origin: str     # recorded, binary, source, snapshot
    evidence: str   # a value of ORIGINS (observed, source, patch) or unknown
    where: str      # one line: where the schema was seen
    schema: SchemaInput = field(repr=False)

    @property
    def key(self) -> Version:
        return Version.parse(self.version)

    @property
    def line(self) -> tuple[int, int]:
        return self.key.line


@dataclass(frozen=True)
class Event:
    """One change of one fact between two consecutive points."""

    version: str            # the first point that shows the change
    previous: str           # the point before it ("" for the oldest)
    path: str
    what: str               # member, enum value, branch, alternate branch, feature, command
    change: str             # added, removed, became optional, became mandatory, type changed,
                            # deprecated, no longer deprecated, feature added, feature removed
    old: str = ""
    new: str = ""
    evidence: str = "observed"
    unrecorded: tuple[str, ...] = ()   # release lines between previous and version with no schema
    note: str = ""

    def to_json(self) -> EventJSON:
        out: EventJSON = {"version": self.version, "previous": self.previous, "path": self.path,
                          "what": self.what, "change": self.change, "evidence": self.evidence,
                          "unrecorded": list(self.unrecorded)}
        if self.old:
            out["old"] = self.old
        if self.new:
            out["new"] = self.new
        if self.note:
            out["note"] = self.note
        return out


def origin_of(schema: SchemaInput) -> tuple[str, str, str]:
    """(origin, evidence, one-line description) of an input."""
    found = schema.meta.get("source")
    source: JSONObject = found if isinstance(found, dict) else {}
    kind = str(source.get("kind") or {"qemu": "binary"}.get(schema.kind, schema.kind))
    if kind == "recorded":
        where = f"recorded by libvirt {source.get('libvirt', '?')} ({source.get('file', '?')})"
    elif kind == "binary":
        where = f"build {source.get('package') or schema.meta.get('package') or schema.spec}"
    elif kind == "source":  # a committed slice names the input it was read from
        package = f", Debian {source['package']}" if source.get("package") else ""
        where = f"QAPI source {source.get('input') or schema.spec}{package}"
    elif kind == "patch":  # derived from a recorded release and a stable back-port
        where = str(source.get("note") or f"derived from {source.get('base', '?')}")
    else:
        kind, where = "snapshot", f"snapshot {schema.spec} (it does not say where it came from)"
    evidence = ORIGINS.get(kind, "unknown")
    return kind, evidence, where


def point(schema: SchemaInput) -> Point:
    """The point of an input; SchemaError when it names no QEMU version."""
    if not schema.version:
        raise SchemaError("names no QEMU version, so it has no place in a history", schema.spec)
    origin, evidence, where = origin_of(schema)
    return Point(schema.version, schema.label, origin, evidence, where, schema)


def order(points: Sequence[Point]) -> list[Point]:
    """Points in version order, one per version (a later one in ``points``
    replaces an earlier one of the same version)."""
    by_version = {p.version: p for p in points}
    return sorted(by_version.values(), key=lambda p: p.key)


# --- facts -------------------------------------------------------------------


def type_name(node: JSON) -> str:
    """A short description of a model node's type."""
    if isinstance(node, str):
        return node
    node = json_object(node)
    kind = node.get("kind")
    if kind == "array":
        return f"array of {type_name(node['element'])}"
    if kind == "ref":
        return str(node["root"])
    if kind == "recursive":
        return "recursive"
    return str(kind)


def _feature_facts(holder: JSON, path: str, out: Facts) -> None:
    if isinstance(holder, dict):
        for name in json_object(holder.get("features") or {}):
            out[f"{path}/${name}"] = {"what": "feature"}


def facts(model: JSONObject) -> Facts:
    """Every fact of a normalized model, keyed by path (iterative: no recursion
    on the depth of the schema)."""
    out: Facts = {}
    todo: list[tuple[JSON, str]] = []
    for root, node in model.items():
        if isinstance(node, dict) and node.get("kind") in ("command", "event"):
            out[root] = {"what": str(node["kind"])}
            _feature_facts(node, root, out)
            todo.append((node["arg"], f"{root}/arg-type"))
            if "ret" in node:
                todo.append((node["ret"], f"{root}/ret-type"))
        else:
            out[root] = {"what": "type", "type": type_name(node)}
            todo.append((node, root))
    while todo:
        node, path = todo.pop()
        while isinstance(node, dict) and node.get("kind") == "array":
            node = node["element"]
        if not isinstance(node, dict):
            continue
        kind = node.get("kind")
        if kind == "object":
            for name, value in json_object(node["members"]).items():
                member = json_object(value)
                sub = f"{path}/{name}"
                out[sub] = {"what": "member", "optional": bool(member["optional"]),
                            "type": type_name(member["type"])}
                _feature_facts(member, sub, out)
                _feature_facts(member["type"], sub, out)
                todo.append((member["type"], sub))
            for case, branch in json_object(node.get("variants") or {}).items():
                out[f"{path}/+{case}"] = {"what": "branch"}
                todo.append((branch, f"{path}/+{case}"))
        elif kind == "enum":
            for value, info in json_object(node["values"]).items():
                out[f"{path}/^{value}"] = {"what": "enum value"}
                _feature_facts(info, f"{path}/^{value}", out)
        elif kind == "alternate":
            for json_kind, branch in json_object(node["branches"]).items():
                out[f"{path}|{json_kind}"] = {"what": "alternate branch",
                                              "type": type_name(branch)}
                todo.append((branch, f"{path}|{json_kind}"))
    return out


def point_facts(p: Point, roots: Sequence[str] = DEFAULT_ROOTS) -> Facts:
    """The facts of one point's schema."""
    return facts(load(p.schema, roots).model)


# --- events ------------------------------------------------------------------


def lines_between(lo: tuple[int, int], hi: tuple[int, int]) -> list[tuple[int, int]]:
    """QEMU's release lines from ``lo`` to ``hi`` (both included): since 4.0,
    three a year (X.0, X.1, X.2)."""
    lines = []
    major, minor = lo
    while (major, minor) <= hi:
        lines.append((major, minor))
        major, minor = (major + 1, 0) if minor >= 2 and major >= 4 else (major, minor + 1)
    return lines


def release_lines(points: Sequence[Point]) -> list[tuple[int, int]]:
    """QEMU's release lines from the oldest point's to the newest's."""
    return lines_between(points[0].line, points[-1].line) if points else []


def unrecorded(points: Sequence[Point]) -> list[str]:
    """The release lines between the oldest and the newest point with no schema."""
    have = {p.line for p in points}
    return [f"{a}.{b}" for a, b in release_lines(points) if (a, b) not in have]


def _gap(prev: Point, cur: Point, missing: list[str]) -> tuple[str, ...]:
    return tuple(m for m in missing if prev.line < Version.parse(m).line < cur.line)


def _parent(path: str) -> str:
    cut = max(path.rfind("/"), path.rfind("|"))
    return path[:cut] if cut > 0 else ""


def _step_events(prev: Point, cur: Point, old: Facts, new: Facts,
                 gap: tuple[str, ...]) -> Iterator[Event]:
    evidence = next((e for e in ("unknown", "patch", "source") if e in (prev.evidence, cur.evidence)),
                    "observed")

    found = cur.schema.meta.get("source") if cur.origin == "patch" else None
    source = json_object(found) if isinstance(found, dict) else {}

    def event(path: str, what: str, change: str, before: str = "", after: str = "") -> Event:
        note = change_note(source, path) if source else ""
        return Event(cur.version, prev.version, path, what, change, before, after, evidence, gap,
                     note)

    for path in sorted(old.keys() | new.keys()):
        a, b = old.get(path), new.get(path)
        if a == b:
            continue
        what = (b or a or Fact(what=""))["what"]
        parent = _parent(path)
        if what == "feature":
            # a feature is reported on what carries it: "deprecated", "feature unstable added"
            name = path.rsplit("$", 1)[1]
            if (parent in new) != (parent in old):
                continue  # came or went with what carries it
            holder = (new.get(parent) or old.get(parent) or Fact(what=""))["what"]
            if name == "deprecated":
                yield event(parent, holder, "deprecated" if b else "no longer deprecated")
            else:
                yield event(parent, holder, f"feature {name} {'added' if b else 'removed'}")
        elif a is None:
            if parent and parent in new and parent not in old:
                continue  # came with its parent
            yield event(path, what, "added")
        elif b is None:
            if parent and parent in old and parent not in new:
                continue  # went with its parent
            yield event(path, what, "removed")
        else:
            if a.get("optional") != b.get("optional"):
                yield event(path, what, "became optional" if b.get("optional")
                            else "became mandatory")
            if a.get("type") != b.get("type"):
                yield event(path, what, "type changed", str(a.get("type")), str(b.get("type")))


@dataclass
class Timeline:
    """The history of the migration interface over ``points``."""

    roots: list[str]
    points: list[Point]
    facts: list[Facts]
    events: list[Event]
    unrecorded: list[str]
    notes: list[Event] = field(default_factory=list)   # inferred, from documents
    # per release: how far its inferred claims held when a build of it was first run
    # (the inference ledger, vectors/inference-ledger.yaml)
    inference: dict[str, str] = field(default_factory=dict)

    def lifecycle(self) -> list[LifecycleRow]:
        """Per path: what it is, when it was first and last seen, since when it is
        optional and deprecated, and in which releases it was removed."""
        rows: list[LifecycleRow] = []
        paths = sorted({p for f in self.facts for p in f})
        for path in paths:
            seen = [pt.version for pt, f in zip(self.points, self.facts, strict=True) if path in f]
            mine = [e for e in self.events if e.path == path]
            last = next(f[path] for f in reversed(self.facts) if path in f)
            if last["what"] == "feature":
                continue  # shown as changes of what carries it
            rows.append({
                "path": path, "what": last["what"],
                "first": seen[0], "since_oldest": seen[0] == self.points[0].version,
                "last": seen[-1], "current": path in self.facts[-1],
                "optional": last.get("optional"),
                "type": last.get("type", ""),
                "features": sorted(q.rsplit("$", 1)[1] for q in self.facts[-1]
                                   if q.startswith(f"{path}/$")) if path in self.facts[-1] else [],
                "changes": [{"version": e.version, "change": e.change} for e in mine],
            })
        return rows

    def _release(self, p: Point) -> ReleaseJSON:
        out: ReleaseJSON = {"version": p.version, "label": p.label, "origin": p.origin,
                            "evidence": p.evidence, "where": p.where}
        if p.version in self.inference:
            out["inference"] = self.inference[p.version]
        return out

    def to_json(self) -> TimelineJSON:
        return {
            "format": FORMAT,
            "roots": self.roots,
            "releases": [self._release(p) for p in self.points],
            "unrecorded": self.unrecorded,
            "events": [e.to_json() for e in self.events],
            "inferred": [e.to_json() for e in self.notes],
            "lifecycle": self.lifecycle(),
        }


FORMAT = "qmpcompat-schema-history/1"


def build(points: Sequence[Point], roots: Sequence[str] = DEFAULT_ROOTS) -> Timeline:
    """The timeline of ``points`` (ordered and deduplicated by version)."""
    ordered = order(points)
    if not ordered:
        raise SchemaError("no schema to build a history from")
    all_facts = [point_facts(p, roots) for p in ordered]
    missing = unrecorded(ordered)
    events: list[Event] = []
    for (prev, old), (cur, new) in pairwise(zip(ordered, all_facts, strict=True)):
        events.extend(_step_events(prev, cur, old, new, _gap(prev, cur, missing)))
    return Timeline(list(roots), ordered, all_facts, events, missing)
