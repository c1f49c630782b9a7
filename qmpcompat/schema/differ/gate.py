"""The schema gate: a binary's schema against the committed baselines.

Regression: the baseline of the binary's own version (or, for a version with
no baseline, the newest of its release line) must match. Release gate: the
real previous release from the history (the newest committed schema, recorded
release or build baseline, of an earlier release line), with the accepted
changes of ``vectors/schema/ignore.yaml`` left out, must show nothing at or
above the chosen level.
"""

from __future__ import annotations

import json
from pathlib import Path

from qmpcompat.schema.differ.compare import compare, load
from qmpcompat.schema.differ.ignore import apply_ignore, load_ignore
from qmpcompat.schema.differ.rules import Finding
from qmpcompat.schema.differ.timeline import lines_between
from qmpcompat.schema.sources.input import SchemaInput
from qmpcompat.schema.sources.releases import KnownSchema, known_schemas
from qmpcompat.schema.sources.snapshot import BASELINE_DIR, from_snapshot
from qmpcompat.types import Version

IGNORE_FILE = BASELINE_DIR / "ignore.yaml"


def baselines(directory: Path = BASELINE_DIR) -> dict[Version, Path]:
    """The committed baselines by QEMU version."""
    out = {}
    for path in sorted(directory.glob("qemu-*.json")):
        version = str(json.loads(path.read_text()).get("qemu", ""))
        if version:
            out[Version.parse(version)] = path
    return out


def own_baseline(version: Version, directory: Path = BASELINE_DIR) -> tuple[Path | None, bool]:
    """(baseline to compare with, whether it is the exact version's)."""
    known = baselines(directory)
    if version in known:
        return known[version], True
    line = [v for v in known if v[:2] == version[:2]]
    return (known[max(line)], False) if line else (None, False)


def previous_release(version: Version, known: list[KnownSchema] | None = None
                     ) -> tuple[KnownSchema | None, list[str]]:
    """The real previous release from the history: the newest known schema
    (recorded release or build baseline) of a release line before ``version``'s,
    and the release lines between the two that no schema covers (the previous
    release proper may be one of them)."""
    schemas = known if known is not None else known_schemas()
    older = [k for k in schemas if k.key.line < version.line]
    if not older:
        return None, []
    previous = older[-1]
    have = {k.key.line for k in schemas}
    gap = [f"{a}.{b}" for a, b in lines_between(previous.key.line, version.line)[1:-1]
           if (a, b) not in have]
    return previous, gap


def previous_line_baseline(version: Version) -> Path | None:
    """The file of ``previous_release(version)``, or None."""
    previous, _gap = previous_release(version)
    return previous.path if previous else None


def findings(baseline: Path, live: SchemaInput, fail_on: str,
             ignore: Path | None = None) -> list[Finding]:
    """Findings of baseline -> live at or above ``fail_on`` that ``ignore`` does not accept."""
    result = compare(load(from_snapshot(baseline)), load(live))
    found = result.findings
    if ignore is not None and ignore.exists():
        found, _ignored, _used = apply_ignore(found, load_ignore(ignore), live.version)
    return [f for f in found if f.level.at_least(fail_on)]


def overdue(ignore: Path, version: str, old: str, new: str) -> list[Finding]:
    """A finding (IGNORE_REVIEW_OVERDUE) per entry of ``ignore`` whose review-by
    release QEMU ``version`` is past."""
    if not ignore.exists():
        return []
    return [e.overdue_finding(old, new, version) for e in load_ignore(ignore) if e.overdue(version)]


def explain(found: list[Finding]) -> str:
    """One line per finding, for a test failure."""
    return "\n".join(f"{f.level:8} {f.rule:28} {f.path}: {f.change} ({f.explanation})"
                     for f in found)
