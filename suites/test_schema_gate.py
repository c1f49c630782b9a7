"""Schema gate: each binary's migration interface against the committed baselines.

Regression: the schema of the binary's own version must match its baseline
(any change fails for an exact-version baseline). Release gate: against the
previous release line's baseline, nothing at or above --qmpcompat-fail-on may
change unless vectors/schema/ignore.yaml accepts it with a reason.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from qmpcompat.provision import QemuBuild
from qmpcompat.pytest_plugin import record_schema_findings
from qmpcompat.schema.gate import (
    IGNORE_FILE,
    explain,
    findings,
    own_baseline,
    previous_line_baseline,
)
from qmpcompat.schema.inputs import SchemaInput
from qmpcompat.schema.rules import level_rank


def _live(build: QemuBuild, schema_cache: Any) -> SchemaInput:
    return SchemaInput(build.binary, f"qemu-{build.version_str}", "qemu",
                       schema_cache.entries(build), build.version_str)


def _fail_on(config: pytest.Config) -> str:
    return str(config.getoption("qmpcompat_fail_on", default="breaking") or "breaking")


def _gate(request: pytest.FixtureRequest, build: QemuBuild, baseline: Path, gate: str,
          found: list[Any], fail_on: str) -> list[Any]:
    """Record the findings (warning and up) for the reports; return those that fail."""
    record_schema_findings(request.node, build, baseline.name, gate,
                           [f for f in found if level_rank(f.level) >= level_rank("warning")])
    return [f for f in found if level_rank(f.level) >= level_rank(fail_on)]


def test_schema_matches_own_baseline(request: pytest.FixtureRequest, qemu_build: QemuBuild,
                                     schema_cache: Any, pytestconfig: pytest.Config) -> None:
    baseline, exact = own_baseline(qemu_build.version)
    if baseline is None:
        pytest.skip(f"no baseline for the {qemu_build.version[0]}.{qemu_build.version[1]} line")
    level = "info" if exact else _fail_on(pytestconfig)
    found = _gate(request, qemu_build, baseline, "regression",
                  findings(baseline, _live(qemu_build, schema_cache), "info"), level)
    assert not found, f"{qemu_build.describe()} differs from {baseline.name}:\n{explain(found)}"


def test_schema_release_gate(request: pytest.FixtureRequest, qemu_build: QemuBuild,
                             schema_cache: Any, pytestconfig: pytest.Config) -> None:
    baseline = previous_line_baseline(qemu_build.version)
    if baseline is None:
        pytest.skip(f"no baseline of a release line before {qemu_build.version_str}")
    found = _gate(request, qemu_build, baseline, "release",
                  findings(baseline, _live(qemu_build, schema_cache), "info", IGNORE_FILE),
                  _fail_on(pytestconfig))
    assert not found, (f"{qemu_build.describe()} breaks {baseline.name}'s interface"
                       f" (accept a change in {IGNORE_FILE.name} with a reason):\n"
                       f"{explain(found)}")
