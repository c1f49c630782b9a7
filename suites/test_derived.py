"""Cases derived from each binary's own schema, each with its predicted error,
on every selected QEMU binary (see docs/hunt.md)."""

from __future__ import annotations

import pytest

from qmpcompat.derive.cases import DerivedCase
from qmpcompat.derive.run import derive_for, run_case
from qmpcompat.errors import QmpCompatError
from qmpcompat.provision import QemuBuild
from qmpcompat.pytest_plugin import STATE, RunState, record
from qmpcompat.vectors.check import CaseResult, SchemaCache
from qmpcompat.vectors.run import Runner


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    """One test per derived case and binary, in the same order on every worker:
    binaries in selection order, cases in derivation order (both lists)."""
    st = metafunc.config.stash.get(STATE, None)
    if "derived" not in metafunc.fixturenames or st is None:
        return
    schemas = SchemaCache()
    params: list[tuple[QemuBuild, DerivedCase]] = []
    for build in st.builds:
        try:
            cases = derive_for(schemas.entries(build))
        except QmpCompatError:
            continue  # an unusable binary fails test_qemu_usable
        params += [(build, case) for case in cases]
    metafunc.parametrize("derived", params, ids=[f"{c.id}-qemu-{b.label}" for b, c in params])


def test_derived(request: pytest.FixtureRequest, derived: tuple[QemuBuild, DerivedCase],
                 qmpcompat_run: RunState, vector_runner: Runner) -> None:
    build, case = derived
    result = run_case(case, build, vector_runner, qmpcompat_run.vectors.defects_for(case.id))
    record(request.node, CaseResult(result.verdict, result.observation, result.record))
    verdict = result.verdict
    if verdict.outcome == "xfailed":
        pytest.xfail(verdict.message)
    if verdict.outcome == "failed":
        pytest.fail(f"{case.id} on QEMU {build.label}: the binary disagrees with its own schema: "
                    f"{verdict.message}\n  arguments: {case.arguments}\n"
                    f"  expected: {verdict.expected}\n"
                    f"  observed: {result.observation.summary()}", pytrace=False)
