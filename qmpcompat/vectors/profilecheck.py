"""Check one consumer-profile cell: a profile from a source build to a
destination build (the same build on both sides too); the verdict and the
record the reports keep (``consumers`` in results.json)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, replace

from qmpcompat.harness.features import lacking
from qmpcompat.provision import QemuBuild
from qmpcompat.resultdoc import ConsumerJSON
from qmpcompat.schema.sources.live import SchemaCache
from qmpcompat.types import Outcome
from qmpcompat.vectors.basis import Basis, defect_basis, pair_basis
from qmpcompat.vectors.match import Verdict, describe, judge_expectation
from qmpcompat.vectors.model import KnownDefect
from qmpcompat.vectors.paircheck import cell_fields
from qmpcompat.vectors.profilegate import gate_problems
from qmpcompat.vectors.profilerun import run_profile
from qmpcompat.vectors.profiles import Profile
from qmpcompat.vectors.run import Observation
from qmpcompat.vectors.verdict import NO_RULES, VerdictRules


@dataclass(frozen=True)
class ProfileCase:
    """One cell: ``profile`` from ``source`` to ``destination``."""

    profile: Profile
    source: QemuBuild
    destination: QemuBuild

    @property
    def id(self) -> str:
        """The test id, e.g. ``CP-0002-10.0.13-to-11.1.3``."""
        return f"{self.profile.id}-{self.source.label}-to-{self.destination.label}"


@dataclass(frozen=True)
class ProfileResult:
    verdict: Verdict
    observation: Observation | None
    record: ConsumerJSON


def profile_cases(profiles: Sequence[Profile], builds: Sequence[QemuBuild]) -> list[ProfileCase]:
    """Every cell: each profile, each ordered pair of builds (a build with itself
    too), in a stable order."""
    return [ProfileCase(p, src, dst) for p in profiles for src in builds for dst in builds]


def check_profile(case: ProfileCase, defects: Sequence[KnownDefect], schemas: SchemaCache,
                  timeout: float = 10.0, allow_exec: bool = False, lint: Sequence[str] = (),
                  rules: VerdictRules = NO_RULES) -> ProfileResult:
    """Run one cell unless the profile fails lint or the safety gate, or a side
    lacks the guest's machine (skipped; failed in strict mode). The record says
    what the claim rests on: the pair in the expectation's (or the known defect's)
    ``observed-on``, or inferred; the run's ``rules`` apply (strict mode refuses a
    pass or a known defect on an inferred claim)."""
    profile, src, dst = case.profile, case.source, case.destination
    refused = list(dict.fromkeys([*lint, *(f"unsafe: {p}" for p in gate_problems(profile, allow_exec))]))
    absent = [f"{side} QEMU {b.label} lacks feature {n}" for side, b in
              (("source", src), ("destination", dst)) for n in lacking(b, profile.needs())]
    exp = profile.expectation_for(src.version, dst.version)
    obs: Observation | None = None
    basis: Basis | None = None
    if refused:
        verdict = Verdict(Outcome.FAILED, "refused, the profile fails lint: " + "; ".join(refused))
    elif absent:
        verdict = Verdict(Outcome.FAILED if rules.strict else Outcome.SKIPPED, ", ".join(absent))
    else:
        obs = run_profile(profile, src, dst, schemas, timeout, allow_exec)
        if exp is None:
            verdict = Verdict(Outcome.FAILED, f"profile has no expectation for {src.version_str} -> "
                              f"{dst.version_str} (observed: {obs.summary()}); add one")
        else:
            known = [d for d in defects if d.applies(src.version, dst.version)]
            verdict = judge_expectation(exp.claim, obs, known, max(src.version, dst.version))
            if verdict.outcome == Outcome.FAILED and obs.summary() not in verdict.message:
                verdict = replace(verdict, message=f"{verdict.message} ({obs.summary()})")
            shown = next((d for d in known if d.id == verdict.defect), None)
            basis = (defect_basis(shown, src.version, dst.version) if shown is not None
                     else pair_basis(exp, src.version, dst.version))
            verdict = rules.apply(verdict, obs, basis)
    expected = describe(exp.claim) if exp is not None else ""
    return ProfileResult(verdict, obs, profile_record(case, verdict, obs, expected, basis))


def step_location(profile: Profile, step_id: str | None) -> str:
    """``FILE:LINE`` of a step (of the profile when there is none)."""
    step = profile.step(step_id) if step_id else None
    return f"{profile.file}:{step.line}" if step is not None and step.line else profile.where


def profile_record(case: ProfileCase, verdict: Verdict, obs: Observation | None,
                   expected: str = "", basis: Basis | None = None) -> ConsumerJSON:
    """The record of one cell, as results.json keeps it (under ``consumers``)."""
    profile = case.profile
    step = obs.step if obs is not None else None
    return {"profile": profile.id, "consumer": profile.consumer,
            "consumer_version": profile.version, "description": profile.description,
            "file": profile.where, "step": step, "location": step_location(profile, step),
            **cell_fields(profile.guest, case.source, case.destination, verdict, obs, expected,
                          basis)}
