"""Ignore files: accepted changes, each with the reason it is accepted.

A YAML list; each entry names a ``rule`` and a ``path`` (a shell-style
pattern over the finding's query path) or a ``fingerprint``, and must give a
non-empty ``reason``::

    - rule: INPUT_MEMBER_REMOVED
      path: migrate/arg-type/blk
      reason: block migration was withdrawn in 9.1; libvirt stopped using it in 8.x

An entry that matches no finding of a run is stale and reported as such.
An entry may carry ``review-by: 11.2``, the release after which it must be
looked at again: compared with a newer QEMU (11.3, 12.0) it accepts nothing
any more and is reported as overdue, which fails the gate.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from fnmatch import fnmatchcase
from pathlib import Path

import yaml

from qmpcompat import datafile
from qmpcompat.errors import SchemaError
from qmpcompat.schema.differ.rules import RULES, Finding
from qmpcompat.types import Level

KEYS = {"rule", "path", "fingerprint", "reason", "review-by"}
_RELEASE = re.compile(r"^\d+\.\d+(\.\d+)?$")


def past_review(review_by: str, version: str) -> bool:
    """True when QEMU ``version`` is a release after ``review_by`` (``11.2``:
    every 11.2.x is still within it, 11.3 is past it); False when either is unknown."""
    if not review_by or not _RELEASE.match(review_by) or not re.match(r"^\d+(\.\d+)*", version or ""):
        return False
    want = tuple(int(p) for p in review_by.split("."))
    have = tuple(int(p) for p in re.findall(r"\d+", version))[:len(want)]
    return have > want


@dataclass(frozen=True)
class IgnoreEntry:
    """One accepted change."""

    rule: str
    path: str
    fingerprint: str
    reason: str
    line: int
    review_by: str = ""

    def overdue(self, version: str) -> bool:
        """True when QEMU ``version`` is past this entry's review-by release."""
        return past_review(self.review_by, version)

    def overdue_message(self, version: str) -> str:
        return (f"ignore entry {self.describe()} was to be reviewed by {self.review_by}; QEMU {version} "
                "is past it: look at the accepted change again, then renew review-by or remove the entry")

    def overdue_finding(self, old: str, new: str, version: str) -> Finding:
        """This entry, overdue for QEMU ``version``, as a finding of ``old -> new``
        (rule IGNORE_REVIEW_OVERDUE, breaking): it fails every gate."""
        level, explanation = RULES["IGNORE_REVIEW_OVERDUE"]
        path = self.path or self.fingerprint
        return Finding(old, new, path.split("/")[0], path, self.overdue_message(version),
                       "IGNORE_REVIEW_OVERDUE", Level(level), "", explanation)

    def matches(self, finding: Finding) -> bool:
        if self.fingerprint:
            return finding.fingerprint == self.fingerprint
        return finding.rule == self.rule and fnmatchcase(finding.path, self.path)

    def describe(self) -> str:
        what = self.fingerprint or f"{self.rule} {self.path}"
        return f"line {self.line}: {what}"


def _raw(node: yaml.Node, key: str) -> str:
    """The text of scalar ``key`` of a mapping node as the file spells it ('' if absent)."""
    for k, v in node.value:
        if getattr(k, "value", None) == key and isinstance(v, yaml.ScalarNode):
            return str(v.value).strip()
    return ""


def load_ignore(path: Path) -> list[IgnoreEntry]:
    """The entries of ignore file ``path``; SchemaError (with the line) for a
    malformed one, an unknown rule, or an entry without a reason."""
    try:
        text = datafile.read_text(path)
    except (OSError, UnicodeDecodeError) as exc:
        raise SchemaError(f"cannot read ignore file: {getattr(exc, 'strerror', None) or exc}",
                          str(path)) from exc
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
        review_by = _raw(node, "review-by")  # as written: YAML would read 11.10 as 11.1
        if review_by and not _RELEASE.match(review_by):
            raise SchemaError(f"review-by must be a release such as 11.2 (got {review_by!r})",
                              str(path), line)
        entries.append(IgnoreEntry(rule, pattern, fingerprint, reason, line, review_by))
    return entries


def apply_ignore(findings: list[Finding], entries: list[IgnoreEntry], version: str = ""
                 ) -> tuple[list[Finding], dict[Finding, IgnoreEntry], set[IgnoreEntry]]:
    """(findings kept, ignored finding -> entry, entries that matched something);
    entries overdue for QEMU ``version`` accept nothing."""
    entries = [e for e in entries if not e.overdue(version)]
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
