"""Check one vector on one build: requirements, run, verdict, and the record
that goes into the reports."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from qmpcompat.harness.features import lacking
from qmpcompat.provision import QemuBuild
from qmpcompat.resultdoc import CaseRecord
from qmpcompat.schema.sources.live import SchemaCache
from qmpcompat.types import Outcome
from qmpcompat.vectors.basis import Basis, SchemaDecides, basis_of, defect_basis
from qmpcompat.vectors.match import Verdict, judge
from qmpcompat.vectors.model import KnownDefect, Vector
from qmpcompat.vectors.run import Observation, Runner
from qmpcompat.vectors.safety import refusals
from qmpcompat.vectors.verdict import NO_RULES, VerdictRules


@dataclass(frozen=True)
class CaseResult:
    """One case on one build: its verdict, what QEMU did (None when it did not
    run) and its record for the reports."""

    verdict: Verdict
    observation: Observation | None
    record: CaseRecord


def check(vec: Vector, build: QemuBuild, runner: Runner, defects: list[KnownDefect],
          schemas: SchemaCache, rules: VerdictRules = NO_RULES, allow_exec: bool = False,
          lint: Sequence[str] = (), decides: SchemaDecides | None = None) -> CaseResult:
    """Run ``vec`` on ``build`` unless it is unsafe, fails ``lint`` (the lint
    problems of this vector), or needs what the build lacks (a failure under
    strict ``rules``, else a skip), and judge it under ``rules``. The record says
    what the expectation rests on (``decides`` tells a claim the build's schema
    decides)."""
    refused = _refused(vec, allow_exec, lint)
    obs: Observation | None = None
    basis: Basis | None = None
    if refused:
        verdict = Verdict(Outcome.FAILED, "refused, the vector fails lint: " + "; ".join(refused))
    elif why := unmet(vec, build, schemas):
        verdict = Verdict(Outcome.FAILED if rules.strict else Outcome.SKIPPED,
                          ("strict mode: " if rules.strict else "") + why)
    else:
        obs = (runner.ahead(vec, build) if runner.ahead else None) or runner.run(vec, build)
        verdict = judge(vec, build.version, obs, defects)
        exp = vec.expectation_for(build.version)
        basis = basis_of(vec, exp, build, decides) if exp is not None else None
        shown = next((d for d in defects if d.id == verdict.defect), None)
        if verdict.outcome == Outcome.XFAILED and shown is not None:
            basis = defect_basis(shown, build.version)  # judged on the defect's claim
        verdict = rules.apply(verdict, obs, basis)
    return CaseResult(verdict, obs, case_record(vec, build, verdict, obs, basis))


def _refused(vec: Vector, allow_exec: bool, lint: Sequence[str]) -> list[str]:
    return list(dict.fromkeys([*lint, *refusals(vec, allow_exec)]))


def runs(vec: Vector, build: QemuBuild, schemas: SchemaCache, allow_exec: bool = False,
         lint: Sequence[str] = ()) -> bool:
    """Whether ``check`` runs ``vec`` on ``build``: it is not refused and needs
    nothing the build lacks."""
    return not _refused(vec, allow_exec, lint) and not unmet(vec, build, schemas)


def unmet(vec: Vector, build: QemuBuild, schemas: SchemaCache) -> str:
    """Why ``vec`` cannot run on ``build`` (its schema or its features lack what
    the vector needs), or "" when it can."""
    if missing := schemas.missing(build, vec.schema):
        return "binary's schema lacks " + ", ".join(missing)
    if absent := lacking(build, vec.needs()):
        return "build lacks feature " + ", ".join(absent)
    return ""


def case_record(vec: Vector, build: QemuBuild, verdict: Verdict,
                obs: Observation | None, basis: Basis | None = None) -> CaseRecord:
    """The record of one case (a vector's, or a derived case as a vector), with
    what its expectation rests on for the build's version."""
    return CaseRecord(
        vector=vec.id, command=vec.command, flags=list(vec.flags),
        description=vec.description, file=vec.where,
        qemu=build.label, qemu_version=build.version_str, package=build.package,
        binary=build.binary, outcome=verdict.outcome, expected=verdict.expected,
        message=verdict.message, defect=verdict.defect,
        observed=obs.to_json() if obs else None, seconds=obs.seconds if obs else 0.0,
        basis=basis.to_json() if basis else None)
