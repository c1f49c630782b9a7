"""Schema gate: each binary's migration interface against the committed schemas.

Regression: the schema of the binary's own version must match its baseline
(any change fails for an exact-version baseline). Release gate: against the
real previous release from the history (a recorded release or a build's
baseline), nothing at or above --qmpcompat-fail-on may change unless
vectors/schema/ignore.yaml accepts it with a reason.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from qmpcompat.provision import QemuBuild
from qmpcompat.pytest_plugin import RecordFindings
from qmpcompat.schema.differ.gate import (
    IGNORE_FILE,
    explain,
    findings,
    overdue,
    own_baseline,
    previous_release,
)
from qmpcompat.schema.differ.rules import Finding
from qmpcompat.schema.sources.input import SchemaInput
from qmpcompat.schema.sources.live import from_build
from qmpcompat.types import Level


def _live(build: QemuBuild) -> SchemaInput:
    return from_build(build, build.binary)


def _fail_on(config: pytest.Config) -> str:
    return str(config.getoption("qmpcompat_fail_on", default="breaking") or "breaking")


def _gate(record: RecordFindings, build: QemuBuild, baseline: Path, gate: str,
          found: list[Finding], fail_on: str) -> list[Finding]:
    """Record the findings (warning and up) for the reports; return those that fail."""
    record(build, baseline.name, gate, [f for f in found if Level(f.level).at_least(Level.WARNING)])
    return [f for f in found if Level(f.level).at_least(fail_on)]


def test_schema_matches_own_baseline(record_schema_findings: RecordFindings, qemu_build: QemuBuild,
                                     pytestconfig: pytest.Config) -> None:
    baseline, exact = own_baseline(qemu_build.version)
    if baseline is None:
        pytest.skip(f"no baseline for the {qemu_build.version[0]}.{qemu_build.version[1]} line")
    level = "info" if exact else _fail_on(pytestconfig)
    found = _gate(record_schema_findings, qemu_build, baseline, "regression",
                  findings(baseline, _live(qemu_build), "info"), level)
    assert not found, f"{qemu_build.describe()} differs from {baseline.name}:\n{explain(found)}"


def test_schema_release_gate(record_schema_findings: RecordFindings, qemu_build: QemuBuild,
                             pytestconfig: pytest.Config) -> None:
    previous, gap = previous_release(qemu_build.version)
    if previous is None:
        pytest.skip(f"no known schema of a release line before {qemu_build.version_str}")
    baseline = previous.path
    live = _live(qemu_build)
    late = overdue(IGNORE_FILE, qemu_build.version_str, baseline.stem, live.label)
    found = _gate(record_schema_findings, qemu_build, baseline, "release",
                  findings(baseline, live, "info", IGNORE_FILE) + late, _fail_on(pytestconfig))
    unknown = f"; no schema is known of {', '.join(gap)}" if gap else ""
    assert not found, (f"{qemu_build.describe()} breaks the interface of {previous.describe()},"
                       f" the previous release known{unknown} (accept a change in"
                       f" {IGNORE_FILE.name} with a reason):\n{explain(found)}")
