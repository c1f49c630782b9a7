"""Derived predictions against the real binaries: they agree, on every build;
a deliberately wrong prediction is caught; the version differences are real."""

from __future__ import annotations

import dataclasses

from qmpcompat.derive.cases import DerivedCase, derive
from qmpcompat.derive.predict import Prediction
from qmpcompat.derive.run import derive_for, run_case
from qmpcompat.provision import QemuBuild
from qmpcompat.schema.model.query import SchemaIndex
from qmpcompat.schema.sources.live import SchemaCache
from qmpcompat.vectors.persistent import PersistentRunner
from qmpcompat.vectors.run import Runner

SCHEMAS = SchemaCache()
RUNNER = Runner()


def _sample(cases: list[DerivedCase]) -> list[DerivedCase]:
    """Every case that is not a wrong type, and the wrong types of one member per
    place kind (the full set runs in suites/test_derived.py)."""
    picked, seen = [], set()
    for case in cases:
        key = (case.kind, case.id.rsplit("=", 1)[-1] if case.kind == "type" else case.id)
        if key not in seen:
            seen.add(key)
            picked.append(case)
    return picked


def test_predictions_agree_with_every_binary(builds: list[QemuBuild]) -> None:
    """Run as the suite runs them: in persistent mode, its default (one QEMU serves
    the rejected cases; test_persistent.py holds it to a fresh QEMU's outcomes)."""
    disagreements = []
    with PersistentRunner() as runner:
        for build in builds:
            for case in _sample(derive_for(SCHEMAS.entries(build))):
                result = run_case(case, build, runner)
                if result.verdict.outcome != "passed":
                    disagreements.append(f"{build.label} {case.id}: {result.verdict.message}")
    assert not disagreements, "\n".join(disagreements)


def test_a_wrong_prediction_is_caught(newest: QemuBuild) -> None:
    cases = {c.id: c for c in derive_for(SCHEMAS.entries(newest))}
    case = cases["D-migrate-missing-channels.0.addr+socket+unix.path"]
    assert run_case(case, newest, RUNNER).verdict.outcome == "passed"
    for wrong in (Prediction("Parameter 'path' is missing"),  # bare name instead of the path
                  Prediction(case.prediction.desc, error_class="CommandNotFound"),
                  Prediction(pattern=r"Parameter '\S+' is unexpected", why="deliberately wrong")):
        result = run_case(dataclasses.replace(case, prediction=wrong), newest, RUNNER)
        assert result.verdict.outcome == "failed", wrong
        assert result.observation.desc == "Parameter 'channels[0].addr.path' is missing"
        assert result.record.outcome == "failed" and result.record.vector == case.id


def test_uri_is_required_only_where_the_schema_says_so(builds: list[QemuBuild]) -> None:
    """7.2's schema makes uri required: a derived case, and the binary agrees; the
    later schemas make it optional, so there is no such case."""
    for build in builds:
        ids = {c.id: c for c in derive(SchemaIndex(SCHEMAS.entries(build)), ["migrate"])}
        required = build.version < (8, 2, 0)
        assert ("D-migrate-missing-uri" in ids) == required, build.label
        if required:
            result = run_case(ids["D-migrate-missing-uri"], build, RUNNER)
            assert result.verdict.outcome == "passed", result.verdict.message
            assert result.observation.desc == "Parameter 'uri' is missing"
