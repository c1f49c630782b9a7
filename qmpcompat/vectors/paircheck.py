"""Check one cell of the cross-version matrix: a pair vector, a form, a source
build and a destination build; the verdict and the record the reports keep."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, replace

from qmpcompat.guest.spec import GuestSpec
from qmpcompat.harness.features import lacking as features_lacking
from qmpcompat.provision import QemuBuild
from qmpcompat.resultdoc import BuildPairJSON, PairJSON
from qmpcompat.schema.sources.live import SchemaCache
from qmpcompat.types import Outcome
from qmpcompat.vectors.basis import Basis, defect_basis, pair_basis
from qmpcompat.vectors.match import Verdict, judge_expectation
from qmpcompat.vectors.model import Expectation, KnownDefect
from qmpcompat.vectors.pairs import PairVector, case_vector
from qmpcompat.vectors.run import Observation, Runner
from qmpcompat.vectors.safety import refusals
from qmpcompat.vectors.verdict import NO_RULES, VerdictRules
from qmpcompat.vectors.versions import VersionRange

EVERY = VersionRange.parse(None)


@dataclass(frozen=True)
class PairResult:
    """One cell's verdict, what QEMU did (None when it did not run) and its record."""

    verdict: Verdict
    observation: Observation | None
    record: PairJSON


@dataclass(frozen=True)
class PairCase:
    """One cell: ``vector`` in ``form`` from ``source`` to ``destination``."""

    vector: PairVector
    form: str
    source: QemuBuild
    destination: QemuBuild

    @property
    def id(self) -> str:
        """The test id: vector, form and both versions, e.g.
        ``XV-0001-uri-channels-10.0.13-to-11.1.3``."""
        return (f"{self.vector.id}-{self.form.replace('/', '-')}-"
                f"{self.source.label}-to-{self.destination.label}")


def pair_cases(pairs: Sequence[PairVector], builds: Sequence[QemuBuild]) -> list[PairCase]:
    """Every cell: each pair vector, each of its forms, each ordered pair of builds
    (a build with itself too), in a stable order."""
    return [PairCase(pv, form, src, dst) for pv in pairs for form in pv.forms
            for src in builds for dst in builds]


def check_pair(case: PairCase, runner: Runner, defects: Sequence[KnownDefect],
               schemas: SchemaCache, allow_exec: bool = False,
               lint: Sequence[str] = (), rules: VerdictRules = NO_RULES) -> PairResult:
    """Run one cell unless it fails lint or the safety gate, or a side lacks what the
    form needs (then it is skipped: the matrix covers the forms both sides support).
    The record says what the claim rests on (``basis``): the pair in the expectation's
    (or the known defect's) ``observed-on``, or inferred; the run's ``rules`` apply
    (strict mode refuses a pass or a known defect on an inferred claim)."""
    pv, src, dst = case.vector, case.source, case.destination
    vec = case_vector(pv, case.form)
    refused = list(dict.fromkeys([*lint, *refusals(vec, allow_exec)]))
    need_src, need_dst = pv.needs(case.form)
    lacking = ([f"source QEMU {src.label} lacks {q}" for q in schemas.missing(src, need_src)]
               + [f"destination QEMU {dst.label} lacks {q}" for q in schemas.missing(dst, need_dst)]
               + [f"{side} QEMU {b.label} lacks feature {n}" for side, b in
                  (("source", src), ("destination", dst)) for n in features_lacking(b, vec.needs())])
    obs: Observation | None = None
    basis: Basis | None = None
    exp = pv.expectation_for(src.version, dst.version, case.form)
    expected = f"migration {exp.migration}" if exp else ""
    if refused:
        verdict = Verdict(Outcome.FAILED, "refused, the vector fails lint: " + "; ".join(refused))
    elif lacking:
        verdict = Verdict(Outcome.SKIPPED, "not supported by both sides: " + ", ".join(lacking))
    else:
        obs = runner.run_fresh(vec, src, dst)
        if exp is None:
            verdict = Verdict(Outcome.FAILED, f"pair vector has no expectation for {src.version_str} -> "
                              f"{dst.version_str} ({case.form}) (observed: {obs.summary()}); add one")
        else:
            single = Expectation(EVERY, "accept", migration=exp.migration,
                                 migration_error=exp.migration_error)
            known = [d for d in defects if d.applies(src.version, dst.version)]
            verdict = judge_expectation(single, pair_end(obs), known, max(src.version, dst.version))
            shown = next((d for d in known if d.id == verdict.defect), None)
            basis = (defect_basis(shown, src.version, dst.version) if shown is not None
                     else pair_basis(exp, src.version, dst.version))
            verdict = rules.apply(verdict, obs, basis)
    return PairResult(verdict, obs, pair_record(case, verdict, obs, expected, basis))


def pair_end(obs: Observation) -> Observation:
    """The observation as a pair expectation reads it: a migration that failed on
    either side failed (the guest did not arrive), whatever the other side said."""
    if obs.result != "accept" or "failed" not in (obs.migration, obs.peer_migration):
        return obs
    return replace(obs, migration="failed", peer_migration="failed")


def cell_fields(guest: GuestSpec, src: QemuBuild, dst: QemuBuild, verdict: Verdict,
                obs: Observation | None, expected: str = "",
                basis: Basis | None = None) -> BuildPairJSON:
    """What the record of a cell run from ``src`` to ``dst`` (a cross-version cell,
    a consumer cell) says of the guest, both builds and the verdict, with what its
    claim rests on (``basis``; None when the cell did not run)."""
    return {
        "guest": guest.to_json(), "machine": guest.machine_type(min(src.version, dst.version)),
        "source": src.label, "source_version": src.version_str, "source_package": src.package,
        "destination": dst.label, "destination_version": dst.version_str,
        "destination_package": dst.package,
        "outcome": verdict.outcome, "expected": verdict.expected or expected,
        "message": verdict.message, "defect": verdict.defect,
        "observed": obs.to_json() if obs else None, "seconds": obs.seconds if obs else 0.0,
        "basis": basis.to_json() if basis else None,
    }


def pair_record(case: PairCase, verdict: Verdict, obs: Observation | None,
                expected: str = "", basis: Basis | None = None) -> PairJSON:
    """The record of one cell, as results.json keeps it (under ``pairs``)."""
    pv = case.vector
    return {"vector": pv.id, "form": case.form, "transport": pv.transport,
            "description": pv.description, "file": pv.where, "flags": list(pv.flags),
            **cell_fields(pv.guest, case.source, case.destination, verdict, obs, expected, basis)}
