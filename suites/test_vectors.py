"""Every golden vector on every selected QEMU binary."""

from __future__ import annotations

from qmpcompat.claims.basis import SchemaDecider
from qmpcompat.provision import QemuBuild
from qmpcompat.pytest_plugin import RecordCase, RunState, conclude
from qmpcompat.schema.sources.live import SchemaCache
from qmpcompat.vectors.check import check
from qmpcompat.vectors.model import Vector
from qmpcompat.vectors.run import Runner


def test_vector(vector: Vector, qemu_build: QemuBuild, qmpcompat_run: RunState,
                vector_runner: Runner, schema_cache: SchemaCache, record_case: RecordCase) -> None:
    result = check(vector, qemu_build, vector_runner, qmpcompat_run.vectors.defects_for(vector.id),
                   schema_cache, qmpcompat_run.rules, allow_exec=qmpcompat_run.allow_exec,
                   lint=qmpcompat_run.lint_of(vector), decides=SchemaDecider(schema_cache))
    record_case(result)
    observed = result.observation.summary() if result.observation else "(not run)"
    conclude(result.verdict, lambda: (
        f"{vector.id} ({vector.where}) on QEMU {qemu_build.label}: {result.verdict.message}\n"
        f"  expected: {result.verdict.expected}\n  observed: {observed}"))
