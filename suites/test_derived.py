"""Cases derived from each binary's own schema, each with its predicted error,
on every selected QEMU binary (see docs/hunt.md). The plugin parametrizes
``derived`` with every (binary, case) pair, in the same order on every worker."""

from __future__ import annotations

from qmpcompat.derive.cases import DerivedCase
from qmpcompat.derive.run import run_case
from qmpcompat.provision import QemuBuild
from qmpcompat.pytest_plugin import RecordCase, RunState, conclude
from qmpcompat.vectors.run import Runner


def test_derived(derived: tuple[QemuBuild, DerivedCase], qmpcompat_run: RunState,
                 vector_runner: Runner, record_case: RecordCase) -> None:
    build, case = derived
    result = run_case(case, build, vector_runner, qmpcompat_run.vectors.defects_for(case.id),
                      qmpcompat_run.rules)
    record_case(result)
    verdict = result.verdict
    observed = result.observation.summary() if result.observation else "(not run)"
    conclude(verdict, lambda: (
        f"{case.id} on QEMU {build.label}: the binary disagrees with its own schema: "
        f"{verdict.message}\n  arguments: {case.arguments}\n"
        f"  expected: {verdict.expected}\n  observed: {observed}"))
