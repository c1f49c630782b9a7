"""Every golden vector on every selected QEMU binary."""

from __future__ import annotations

import pytest

from qmpcompat.provision import QemuBuild
from qmpcompat.pytest_plugin import RunState, lint_of, record
from qmpcompat.vectors.check import SchemaCache, check
from qmpcompat.vectors.model import Vector
from qmpcompat.vectors.run import Runner


def test_vector(request: pytest.FixtureRequest, vector: Vector, qemu_build: QemuBuild,
                qmpcompat_run: RunState, vector_runner: Runner, schema_cache: SchemaCache) -> None:
    result = check(vector, qemu_build, vector_runner, qmpcompat_run.vectors.defects_for(vector.id),
                   schema_cache, strict=qmpcompat_run.strict, allow_exec=qmpcompat_run.allow_exec,
                   lint=lint_of(qmpcompat_run, vector), fail_on_known=qmpcompat_run.fail_on_known)
    record(request.node, result)
    verdict = result.verdict
    if verdict.outcome == "skipped":
        pytest.skip(verdict.message)
    if verdict.outcome == "xfailed":
        pytest.xfail(verdict.message)
    if verdict.outcome == "failed":
        observed = result.observation.summary() if result.observation else "(not run)"
        pytest.fail(f"{vector.id} ({vector.where}) on QEMU {qemu_build.label}: {verdict.message}\n"
                    f"  expected: {verdict.expected}\n  observed: {observed}", pytrace=False)
