"""The cross-version matrix: every pair vector, form and ordered pair of selected builds."""

from __future__ import annotations

from qmpcompat.pytest_plugin import RecordPair, RunState, conclude_cell
from qmpcompat.schema.sources.live import SchemaCache
from qmpcompat.vectors.paircheck import PairCase, check_pair
from qmpcompat.vectors.run import Runner


def test_pair(pair_case: PairCase, qmpcompat_run: RunState, vector_runner: Runner,
              schema_cache: SchemaCache, record_pair: RecordPair) -> None:
    pv, st = pair_case.vector, qmpcompat_run
    result = check_pair(pair_case, vector_runner, st.vectors.defects_for(pv.id), schema_cache,
                        allow_exec=st.allow_exec, lint=st.lint_of(pv), rules=st.rules)
    record_pair(result)
    conclude_cell(result, f"{pv.id} {pair_case.form} ({pv.where}), QEMU {pair_case.source.label} -> "
                          f"{pair_case.destination.label}")
