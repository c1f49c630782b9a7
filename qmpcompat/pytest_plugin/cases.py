"""The cases a run parametrizes (vectors, derived cases, binaries, broken files),
and how a suite records one case's result and turns its verdict into a pytest
outcome.

Test ids are ``CASE-qemu-LABEL`` (``qmpcompat.types.case_id``) for a case on a
build and ``qemu-LABEL`` for a build alone; the recorder parses them back to
rebuild the record of a case whose worker died.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping, Sequence
from typing import Any, Protocol

import pytest

from qmpcompat.derive.cases import DerivedCase
from qmpcompat.derive.run import derive_for
from qmpcompat.errors import QmpCompatError
from qmpcompat.escape import terminal, visible
from qmpcompat.provision.build import QemuBuild
from qmpcompat.pytest_plugin.state import RunState
from qmpcompat.report.runmodes import junit_properties
from qmpcompat.schema.sources.live import SchemaCache
from qmpcompat.types import Outcome, case_id, qemu_id
from qmpcompat.vectors.check import CaseResult
from qmpcompat.vectors.match import Verdict
from qmpcompat.vectors.paircheck import PairResult
from qmpcompat.vectors.profilecheck import ProfileResult

RECORD = "qmpcompat"  # user property carrying a case's record (JSON)
PAIR_RECORD = "qmpcompat-pair"  # ... a cross-version cell's record
GATE_RECORD = "qmpcompat-schema-gate"  # ... and a schema gate's findings
CONSUMER_RECORD = "qmpcompat-consumer"  # ... a consumer-profile cell's record


def derived_cases(st: RunState, schemas: SchemaCache,
                  builds: list[QemuBuild] | None = None) -> list[tuple[QemuBuild, DerivedCase]]:
    """Every derived case on every build (``builds``, default all selected), in
    the same order on every worker: builds in selection order, cases in
    derivation order. A build whose schema cannot be read has none (it fails
    ``test_qemu_usable``)."""
    params: list[tuple[QemuBuild, DerivedCase]] = []
    for build in st.builds if builds is None else builds:
        try:
            cases = derive_for(schemas.entries(build))
        except QmpCompatError:
            continue
        params += [(build, case) for case in cases]
    return params


NONE_MARK = "qmpcompat_none"  # the placeholder of an empty parameter list (deselected)


def _parametrize(metafunc: pytest.Metafunc, name: str, values: Sequence[object], ids: list[str],
                 **options: str) -> None:
    """Parametrize ``name``; an empty list gets one placeholder marked ``NONE_MARK``,
    which the plugin deselects (an empty set is no skip worth reporting)."""
    if values:
        metafunc.parametrize(name, values, ids=ids, **options)  # type: ignore[arg-type]
    else:
        metafunc.parametrize(name, [pytest.param(None, marks=getattr(pytest.mark, NONE_MARK))],
                             ids=["none"], **options)  # type: ignore[arg-type]


def parametrize(metafunc: pytest.Metafunc, st: RunState) -> None:
    """Parametrize the plugin's case arguments a test function asks for:
    ``qemu_problem``, ``vector_file_error``, ``vector``, ``derived``, ``qemu_build``,
    ``pair_case`` (a cross-version cell: ``XV-NNNN-FORM-SOURCE-to-DESTINATION``),
    ``consumer_case`` (a consumer profile's cell: ``CP-NNNN-SOURCE-to-DESTINATION``)."""
    names = metafunc.fixturenames
    if "qemu_problem" in names:
        _parametrize(metafunc, "qemu_problem", st.problems, [p.name for p in st.problems])
    if "vector_file_error" in names:
        _parametrize(metafunc, "vector_file_error", st.lint,
                     [f"{p.file}:{p.line or 0}:{p.vector_id or ''}" for p in st.lint])
    if "derived" in names:
        params = derived_cases(st, SchemaCache())
        _parametrize(metafunc, "derived", params, [case_id(c.id, b.label) for b, c in params])
    if "pair_case" in names:
        cells = st.pair_cases
        _parametrize(metafunc, "pair_case", cells, [c.id for c in cells])
    if "consumer_case" in names:
        cases = st.consumer_cases
        _parametrize(metafunc, "consumer_case", cases, [c.id for c in cases])
    if "vector" in names:
        _parametrize(metafunc, "vector", st.vectors.vectors, [v.id for v in st.vectors.vectors])
    if "qemu_build" in names:
        _parametrize(metafunc, "qemu_build", st.builds, [qemu_id(b.label) for b in st.builds],
                     scope="session" if "vector" not in names else "function")


RecordCase = Callable[[CaseResult], None]


class _Summarized(Protocol):
    def summary(self) -> str: ...


def _attach(item: pytest.Item, rec: Mapping[str, Any], keys: tuple[str, ...],
            observation: _Summarized | None, record_key: str) -> None:
    """The JUnit properties of a record (``keys``, what QEMU did, how its QEMU ran),
    escaped, and the record itself under ``record_key`` for the controller (it
    travels back from xdist workers)."""
    item.user_properties += [(key, visible(rec.get(key))) for key in keys]
    if observation is not None:
        item.user_properties.append(("observed", visible(observation.summary())))
    item.user_properties += junit_properties(rec.get("observed"))
    item.user_properties.append((record_key, json.dumps(rec)))


def record_on(item: pytest.Item, result: CaseResult) -> None:
    """Attach a case's record to the test report and to the JUnit XML."""
    _attach(item, result.record.to_json(), ("vector", "outcome", "expected"), result.observation,
            RECORD)


def record_pair_on(item: pytest.Item, result: PairResult) -> None:
    """Attach a cross-version cell's record to the test report and the JUnit XML."""
    _attach(item, result.record, ("vector", "form", "source_version", "destination_version",
                                  "outcome", "expected"), result.observation, PAIR_RECORD)


def record_consumer_on(item: pytest.Item, result: ProfileResult) -> None:
    """Attach a consumer-profile cell's record to the test report and the JUnit XML."""
    _attach(item, result.record, ("profile", "consumer", "consumer_version", "source_version",
                                  "destination_version", "outcome", "expected", "location"),
            result.observation, CONSUMER_RECORD)


def record_gate_on(item: pytest.Item, rows: list[dict[str, object]]) -> None:
    """Attach schema-gate findings (JSON rows) to the test report."""
    item.user_properties.append((GATE_RECORD, json.dumps(rows)))


def conclude(verdict: Verdict, failure: Callable[[], str]) -> None:
    """End the test as ``verdict`` says: skip, xfail, fail with ``failure()``'s
    text, or return (passed). The one verdict-to-pytest mapping of the suites."""
    if verdict.outcome == Outcome.SKIPPED:
        pytest.skip(terminal(verdict.message))
    if verdict.outcome == Outcome.XFAILED:
        pytest.xfail(terminal(verdict.message))
    if verdict.outcome in (Outcome.FAILED, Outcome.ERROR):
        pytest.fail(terminal(failure()), pytrace=False)


def conclude_cell(result: PairResult | ProfileResult, title: str) -> None:
    """End a cross-version or consumer cell's test as its verdict says; a failure
    says ``title`` (the cell and where it is written), the verdict's words, what
    was expected and what QEMU did."""
    verdict, obs = result.verdict, result.observation
    observed = obs.summary() if obs else "(not run)"
    detail = f" ({obs.detail})" if obs and obs.detail and obs.result != "corrupt" else ""
    conclude(verdict, lambda: f"{title}: {verdict.message}\n  expected: {verdict.expected}\n"
                              f"  observed: {observed}{detail}")
