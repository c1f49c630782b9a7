"""Ignore files: accepted changes, each with the reason it is accepted.

A YAML list; each entry names a ``rule`` and a ``path`` (a shell-style
pattern over the finding's query path) or a ``fingerprint``, and must give a
non-empty ``reason``::

    - rule: INPUT_MEMBER_REMOVED
      path: migrate/arg-type/blk
      reason: block migration was withdrawn in 9.1; libvirt stopped using it in 8.x

An entry that matches no finding of a run is stale and reported as such.
"""

from __future__ import annotations

from dataclasses import dataclass
from fnmatch import fnmatchcase
from pathlib import Path

import yaml

from qmpcompat.errors import SchemaError
from qmpcompat.schema.rules import RULES, Finding

KEYS = {"rule", "path", "fingerprint", "reason"}


@dataclass(frozen=True)
class IgnoreEntry:
    """One accepted change."""

    rule: str
    path: str
    fingerprint: str
    reason: str
    line: int

    def matches(self, finding: Finding) -> bool:
        if self.fingerprint:
            return finding.fingerprint == self.fingerprint
        return finding.rule == self.rule and fnmatchcase(finding.path, self.path)

    def describe(self) -> str:
        what = self.fingerprint or f"{self.rule} {self.path}"
        return f"line {self.line}: {what}"


def load_ignore(path: Path) -> list[IgnoreEntry]:
    """The entries of ignore file ``path``; SchemaError (with the line) for a
    malformed one, an unknown rule, or an entry without a reason."""
    try:
        text = path.read_text()
    except OSError as exc:
        raise SchemaError(f"cannot read ignore file: {exc.strerror}", str(path)) from exc
    try:
        root = yaml.compose(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        raise SchemaError(f"not YAML: {exc}", str(path),
                          mark.line + 1 if mark else None) from exc
    if root is None:
        return []
    if not isinstance(root, yaml.SequenceNode):
        raise SchemaError("an ignore file is a list of entries", str(path), root.start_mark.line + 1)
    entries = []
    for node in root.value:
        line = node.start_mark.line + 1
        data = yaml.safe_load(yaml.serialize(node)) if isinstance(node, yaml.MappingNode) else None
        if not isinstance(data, dict):
            raise SchemaError("each entry is a mapping with rule, path and reason", str(path), line)
        unknown = set(data) - KEYS
        if unknown:
            raise SchemaError(f"unknown keys {sorted(unknown)}", str(path), line)
        reason = str(data.get("reason") or "").strip()
        if not reason:
            raise SchemaError("every entry needs a reason", str(path), line)
        rule, pattern = str(data.get("rule", "")), str(data.get("path", ""))
        fingerprint = str(data.get("fingerprint", ""))
        if not fingerprint and (rule not in RULES or not pattern):
            raise SchemaError(f"needs a known rule (got {rule!r}) and a path, or a fingerprint",
                              str(path), line)
        entries.append(IgnoreEntry(rule, pattern, fingerprint, reason, line))
    return entries


def apply_ignore(findings: list[Finding], entries: list[IgnoreEntry]
                 ) -> tuple[list[Finding], dict[Finding, IgnoreEntry], set[IgnoreEntry]]:
    """(findings kept, ignored finding -> entry, entries that matched something)."""
    kept: list[Finding] = []
    ignored: dict[Finding, IgnoreEntry] = {}
    used: set[IgnoreEntry] = set()
    for finding in findings:
        entry = next((e for e in entries if e.matches(finding)), None)
        if entry is None:
            kept.append(finding)
        else:
            ignored[finding] = entry
            used.add(entry)
    return kept, ignored, used
