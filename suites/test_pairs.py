"""The cross-version matrix: every pair vector, form and ordered pair of selected builds."""

from __future__ import annotations

from qmpcompat.pytest_plugin import RecordPair, RunState, conclude
from qmpcompat.schema.sources.live import SchemaCache
from qmpcompat.vectors.paircheck import PairCase, check_pair
from qmpcompat.vectors.run import Runner


def test_pair(pair_case: PairCase, qmpcompat_run: RunState, vector_runner: Runner,
              schema_cache: SchemaCache, record_pair: RecordPair) -> None:
    pv = pair_case.vector
    result = check_pair(pair_case, vector_runner, qmpcompat_run.vectors.defects_for(pv.id),
                        schema_cache, allow_exec=qmpcompat_run.allow_exec,
                        lint=qmpcompat_run.lint_of(pv), rules=qmpcompat_run.rules)
    record_pair(result)
    obs = result.observation
    observed = obs.summary() if obs else "(not run)"
    detail = f" ({obs.detail})" if obs and obs.detail and obs.result != "corrupt" else ""
    conclude(result.verdict, lambda: (
        f"{pv.id} {pair_case.form} ({pv.where}), QEMU {pair_case.source.label} -> "
        f"{pair_case.destination.label}: {result.verdict.message}\n"
        f"  expected: {result.verdict.expected}\n  observed: {observed}{detail}"))
