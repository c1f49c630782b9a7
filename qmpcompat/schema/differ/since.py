"""The ``Since:`` audit of QAPI source: do the doc comments agree with the history?

QAPI doc comments say when each definition came (``Since: 8.2``) and, for a
member or an enum value added later, ``(since 9.1)`` in its description. For a
QAPI-source input, every path of the migration interface gets the release its
docs name (its own tag, else its definition's), and that is held against the
first release the history shows it in:

- seen since the oldest known release: a tag naming a later release is wrong;
- first seen in release F after release P: the tag must name F's release line,
  or a line between P and F that has no known schema (it may have come there);
- what came together with what holds it (the members of a type that became
  reachable, like ``InetSocketAddress.to`` with ``MigrationChannel``) is left
  out: its tag dates its own type, which the migration slice cannot see.

Each disagreement is a ``SINCE_MISMATCH`` finding, reported with the differ's.
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field

from qmpcompat.schema.differ.compare import Comparison
from qmpcompat.schema.differ.rules import RULES, Finding
from qmpcompat.schema.differ.timeline import Timeline, build, point
from qmpcompat.schema.model.normalize import DEFAULT_ROOTS, MAX_DEPTH, resolve_roots
from qmpcompat.schema.model.query import SchemaIndex
from qmpcompat.schema.sources.input import SchemaInput
from qmpcompat.schema.sources.qapi_source import Expr
from qmpcompat.schema.sources.releases import known_schemas
from qmpcompat.types import Level, Version

RULE = "SINCE_MISMATCH"
_MEMBER = re.compile(r"^#\s*@([\w-]+):\s*(.*)$")
_SECTION = re.compile(r"^#\s*(Returns|Errors|Features|Examples?|Notes?|TODO|Use|Alias|Target)"
                      r"\s*:|^#\s*\.\.\s")
_DEF_SINCE = re.compile(r"^#\s*Since:\s*([0-9][0-9.]*)")
# "(since 9.1)", "(Since: 8.2)", "(default: false, since 3.0)"
_INLINE_SINCE = re.compile(r"[(,;]\s*since:?\s*([0-9]+\.[0-9]+(?:\.[0-9]+)?)\s*\)", re.IGNORECASE)


@dataclass
class Doc:
    """What one doc comment says: the definition's release, and its members'."""

    name: str
    since: str = ""
    members: dict[str, str] = field(default_factory=dict)   # member -> "" when untagged


def parse_doc(block: str) -> Doc | None:
    """The ``Doc`` of one ``##`` block (None for free-form documentation)."""
    lines = [ln.rstrip() for ln in block.splitlines()]
    head = next((ln for ln in lines if ln.strip("# ")), "")
    match = _MEMBER.match(head)
    if not match or match.group(2):
        return None
    doc = Doc(match.group(1))
    current: str | None = None
    text: list[str] = []
    in_features = False

    def close() -> None:
        if current is not None and not in_features:
            found = _INLINE_SINCE.search(" ".join(text))
            doc.members[current] = found.group(1) if found else ""

    for line in lines[lines.index(head) + 1:]:
        since = _DEF_SINCE.match(line)
        if since:
            close()
            current, doc.since = None, since.group(1).rstrip(".")
            continue
        member = _MEMBER.match(line)
        if member:
            close()
            current, text = member.group(1), [member.group(2)]
            continue
        if _SECTION.match(line):
            close()
            current = None
            in_features = line.lstrip("# ").startswith("Features")
            continue
        if current is not None:
            text.append(line.lstrip("#"))
    close()
    return doc


def line_of(version: str) -> tuple[int, int]:
    """The release line (major, minor) a version or Since tag names."""
    return Version.parse(version).line


@dataclass
class SinceTags:
    """The Since tags of one QAPI source input, by definition."""

    docs: dict[str, Doc]
    bases: dict[str, str]   # definition -> its base struct, where it has a named one
    own: dict[str, set[str]]  # definition -> the member names its own 'data' declares

    def owner(self, entry: str, member: str) -> str:
        """The definition that declares ``member`` of entry ``entry`` (through bases;
        a command's implicit argument type ``q_obj_NAME-arg`` is the command's)."""
        name = entry.removeprefix("q_obj_").removesuffix("-arg") if entry.startswith("q_obj_") \
            else entry
        seen: set[str] = set()
        while name not in seen:
            seen.add(name)
            if member in self.own.get(name, ()) or name not in self.bases:
                return name
            name = self.bases[name]
        return name

    def tag(self, definition: str, member: str | None = None) -> str:
        """The release the docs give a definition or one of its members ("" if none)."""
        doc = self.docs.get(definition)
        if doc is None:
            return ""
        if member is not None and doc.members.get(member):
            return doc.members[member]
        return doc.since


def since_tags(exprs: Sequence[Expr]) -> SinceTags:
    """The Since tags of every definition of a parsed QAPI schema."""
    docs, bases, own = {}, {}, {}
    for expr in exprs:
        kind = next((k for k in ("struct", "union", "alternate", "enum", "command", "event")
                     if k in expr.data), None)
        if kind is None:
            continue
        name = str(expr.data[kind])
        doc = parse_doc(getattr(expr, "doc", "") or "")
        if doc is not None and doc.name == name:
            docs[name] = doc
        base = expr.data.get("base")
        if isinstance(base, str):
            bases[name] = base
        data = expr.data.get("data")
        if isinstance(data, dict):
            own[name] = {k.removeprefix("*") for k in data}
        elif isinstance(data, list):
            own[name] = {str(v["name"]) if isinstance(v, dict) else str(v) for v in data}
    return SinceTags(docs, bases, own)


def tagged_paths(schema: SchemaInput, tags: SinceTags,
                 roots: Sequence[str] = DEFAULT_ROOTS) -> Iterator[tuple[str, str, str]]:
    """(path, Since tag, where the tag is) for every member and enum value reachable
    from ``roots``, in the history's path syntax (iterative, bounded depth)."""
    index = SchemaIndex(schema.entries, schema.spec)
    found = [r for r in resolve_roots(index, list(roots)) if r.entry]
    root_entries = {r.entry for r in found}
    todo: list[tuple[str, str, int]] = []
    for root in found:
        entry = index.lookup(str(root.entry))
        yield root.name, tags.tag(str(root.entry)), str(root.entry)
        if entry.get("meta-type") == "command":
            todo += [(entry["arg-type"], f"{root.name}/arg-type", 0)]
        else:
            todo.append((str(root.entry), root.name, 0))
    while todo:
        name, path, depth = todo.pop()
        entry = index.lookup(name)
        while entry.get("meta-type") == "array":
            entry = index.lookup(entry["element-type"])
        if depth > MAX_DEPTH or (path.count("/") and entry["name"] in root_entries):
            continue
        meta = entry.get("meta-type")
        if meta == "object":
            for member in entry.get("members") or ():
                owner = tags.owner(entry["name"], member["name"])
                sub = f"{path}/{member['name']}"
                yield sub, tags.tag(owner, member["name"]), f"{owner}.{member['name']}"
                todo.append((member["type"], sub, depth + 1))
            for variant in entry.get("variants") or ():
                todo.append((variant["type"], f"{path}/+{variant['case']}", depth + 1))
        elif meta == "enum":
            for value in entry.get("values") or ():
                yield f"{path}/^{value}", tags.tag(entry["name"], value), f"{entry['name']}.{value}"


def audit(schema: SchemaInput, tags: SinceTags, timeline: Timeline,
          roots: Sequence[str] = DEFAULT_ROOTS) -> list[Finding]:
    """The SINCE_MISMATCH findings of one QAPI source input against ``timeline``."""
    rows = {r["path"]: r for r in timeline.lifecycle()}
    versions = [p.version for p in timeline.points]
    oldest = line_of(versions[0])
    level, explanation = RULES[RULE]
    out = []
    for path, tag, where in tagged_paths(schema, tags, roots):
        row = rows.get(path)
        if not tag or row is None:
            continue
        first = row["first"]
        parent = rows.get(re.sub(r"/(arg|ret)-type$", "", path.rsplit("/", 1)[0])) \
            if "/" in path else None
        if parent is not None and parent["first"] == first and not row["since_oldest"]:
            continue  # came with what holds it: its tag dates its own type, not this place
        if row["since_oldest"]:
            if line_of(tag) <= oldest:
                continue
            change = (f"Since: {tag} ({where}), but it is already in {first}, the oldest known"
                      " release")
        else:
            previous = versions[versions.index(first) - 1]
            allowed = {line_of(first)} | {line_of(v) for v in timeline.unrecorded
                                          if line_of(previous) < line_of(v) < line_of(first)}
            if line_of(tag) in allowed:
                continue
            change = f"Since: {tag} ({where}), but first seen in {first} (not in {previous})"
        out.append(Finding("history", schema.label, path.split("/")[0], path, change, RULE,
                           Level(level), "doc", explanation))
    return out


def since_audits(schemas: Sequence[SchemaInput]) -> list[Comparison]:
    """One ``since-audit`` comparison per QAPI-source input among ``schemas``
    (none when there is none), each against the history of the migration
    interface over the committed schemas and ``schemas`` themselves."""
    sources = [s for s in schemas if s.definitions and s.version]
    if not sources:
        return []
    points = [point(k.schema) for k in known_schemas()] + [point(s) for s in schemas if s.version]
    timeline = build(points, DEFAULT_ROOTS)
    return [Comparison("history", s.label, "since-audit",
                       audit(s, since_tags(s.definitions), timeline)) for s in sources]
