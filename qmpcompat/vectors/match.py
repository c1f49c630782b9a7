"""Judging an observation against a vector's expectation and the known defects."""

from __future__ import annotations

from dataclasses import dataclass

from qmpcompat.schema.differ.ignore import past_review
from qmpcompat.types import Outcome, Version
from qmpcompat.vectors import pattern
from qmpcompat.vectors.model import Expectation, KnownDefect, Vector
from qmpcompat.vectors.run import Observation

NEVER_OK = ("crash", "hang", "error", "corrupt")


@dataclass(frozen=True)
class Verdict:
    """``outcome`` is passed, failed, xfailed (a known defect seen), skipped, or
    error (a case that could not run)."""

    outcome: Outcome
    message: str = ""
    expected: str = ""
    defect: str | None = None


def describe(exp: Expectation) -> str:
    if exp.result == "reject":
        text = exp.desc if exp.desc is not None else f"/{exp.desc_pattern}/"
        at = f" at step {exp.step}" if exp.step else ""
        return f"reject{at} {exp.error_class}: {text}"
    if exp.result == "accept":
        return "accept" + (f", migration {exp.migration}" if exp.migration else "")
    return exp.result


def differences(exp: Expectation, obs: Observation) -> list[str]:
    """What in ``obs`` differs from ``exp`` (empty when it matches)."""
    if obs.result != exp.result:
        return [f"result: expected {exp.result}, got {obs.result}"]
    out = []
    if exp.result == "reject":
        if obs.error_class != exp.error_class:
            out.append(f"error class: expected {exp.error_class}, got {obs.error_class}")
        if exp.desc is not None and obs.desc != exp.desc:
            out.append(f"desc: expected {exp.desc!r}, got {obs.desc!r}")
        if exp.desc_pattern and not pattern.fullmatch(exp.desc_pattern, obs.desc or ""):
            out.append(f"desc: expected /{exp.desc_pattern}/, got {obs.desc!r}")
        if exp.step is not None and obs.step != exp.step:
            out.append(f"refused at step {obs.step}, expected at step {exp.step}")
    elif exp.result == "accept" and exp.migration:
        sides = [obs.migration] + ([obs.peer_migration] if obs.peer_migration else [])
        if any(s != exp.migration for s in sides):
            out.append(f"migration: expected {exp.migration} on both sides, got "
                       + " / ".join(str(s) for s in sides))
        if exp.migration_error and not pattern.search(exp.migration_error, obs.migration_error or ""):
            out.append(f"migration error: expected /{exp.migration_error}/, "
                       f"got {obs.migration_error!r}")
    return out


def judge(vec: Vector, version: Version, obs: Observation,
          defects: list[KnownDefect]) -> Verdict:
    """The verdict for ``vec`` on a QEMU of ``version`` that did ``obs``."""
    exp = vec.expectation_for(version)
    if exp is None:
        return Verdict(Outcome.FAILED, f"vector has no expectation for QEMU {Version(*version).label}"
                       f" (observed: {obs.summary()}); add one")
    return judge_expectation(exp, obs, [d for d in defects if d.applies(version)], version)


def judge_expectation(exp: Expectation, obs: Observation, known: list[KnownDefect],
                      version: Version) -> Verdict:
    """The verdict for ``obs`` against ``exp``, given the known defects of this build
    (or pair of builds; ``version`` is then the newer one, for a defect's review-by)."""
    version = Version(*version)
    expected = describe(exp)
    for defect in known:
        if not differences(defect.observed, obs):
            if past_review(defect.review_by, version.label):
                return Verdict(Outcome.FAILED, f"known defect {defect.id} was to be reviewed by "
                               f"{defect.review_by}; QEMU {version.label} is past it and still shows "
                               f"it: look at it again, then renew review-by in {defect.file} or fix "
                               "the defect's range", expected)
            return Verdict(Outcome.XFAILED, f"known defect {defect.id}: {defect.summary}", expected,
                           defect.id)
    diffs = differences(exp, obs)
    if obs.result == "corrupt":
        return Verdict(Outcome.FAILED, f"migration completed, guest damaged: {obs.detail}", expected)
    if obs.environment:  # the case could not run as it should: no verdict on QEMU
        return Verdict(Outcome.ERROR, obs.detail, expected)
    if obs.result in NEVER_OK:
        return Verdict(Outcome.FAILED, f"QEMU {obs.result}: {obs.detail}", expected)
    if not diffs and known:
        ids = ", ".join(d.id for d in known)
        return Verdict(Outcome.FAILED, f"known defect {ids} no longer shows: the build now does what "
                       "the vector expects; the defect may be fixed (update known-defects.yaml)",
                       expected)
    if diffs:
        return Verdict(Outcome.FAILED, "; ".join(diffs), expected)
    return Verdict(Outcome.PASSED, "", expected)
