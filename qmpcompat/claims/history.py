"""The history lint: every expectation held against the schema of every known
QEMU release its version range covers.

For each vector, expectation and release in its range (where the vector's
``requires.schema`` holds), the input visitor's answer for that release's
schema (``qmpcompat.derive.visit``) is compared with the claim:

- the visitor rejects the arguments: the claim must be that reject, in the
  visitor's words (an accept, or another error, is contradicted);
- the visitor rejects them whatever the values it cannot judge (a member the
  release does not know, anywhere in the arguments, beside an integer whose
  range introspection does not show): an accept, or an error that cannot be
  among those it may name first, is contradicted; a claim of one of those
  errors is not decided by the schema;
- the visitor lets them through: a claimed error that only the input visitor
  gives (``is unexpected``, ``Invalid parameter type``, ``does not accept
  value``, ``is missing`` for a nested path) is contradicted; the command's
  own errors and a migration's end are beyond what the schema decides;
- an accepted migration needs its peer's command accepted too, and the
  set-up (``migrate-set-parameters`` / ``-capabilities``) must be accepted.

A claim beyond what the schema decides, on a release that is not in the
expectation's ``observed-on``, must say what it is inferred from
(``inferred-from``); a release the vector applies to (its ``requires.schema``
holds) must have an expectation. Every problem names the vector, the release
and the fact.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass

from qmpcompat.derive.predict import Prediction
from qmpcompat.derive.visit import Answer, visit
from qmpcompat.schema.model.query import SchemaIndex, schema_has
from qmpcompat.schema.sources.releases import KnownSchema, known_schemas
from qmpcompat.types import JSONObject, Version
from qmpcompat.vectors import pattern
from qmpcompat.vectors.lint import Problem
from qmpcompat.vectors.match import describe
from qmpcompat.vectors.model import Expectation, Vector

# Errors only the input visitor gives: a claim of one where the visitor lets the
# arguments through is contradicted. A bare ``Parameter 'uri' is missing`` is left
# out: command code says it too (QEMU's QERR_MISSING_PARAMETER).
VISITOR_ONLY = (
    r"Parameter '[^']+' is unexpected",
    r"Invalid parameter type for '[^']+', expected: .+",
    r"Parameter '[^']+' does not accept value '.*'",
    r"Parameter '[^']*[.\[][^']*' is missing",
)


@dataclass(frozen=True)
class Release:
    """One QEMU release of the history: its version and recorded schema."""

    version: Version
    source: str  # where the schema comes from, e.g. "recorded by libvirt 11.3.0 (caps_8.2.0_...)"
    index: SchemaIndex
    ordered: bool = True  # members in QEMU's order (snapshots keep it; see schema.snapshot)
    origin: str = "recorded"  # recorded (libvirt), source (QAPI source) or binary (a build run here)

    @property
    def label(self) -> str:
        return ".".join(map(str, self.version))

    @classmethod
    def of(cls, known: KnownSchema) -> Release:
        return cls(known.key, known.describe(), known.index, origin=known.origin)


def known_releases() -> list[Release]:
    """Every QEMU release whose schema is committed (vectors/schema/releases/ and
    the build baselines), oldest first."""
    return [Release.of(k) for k in known_schemas()]


@dataclass(frozen=True)
class Finding:
    """A claim a release's schema contradicts (``kind`` contradiction), one beyond
    the schema on a release nobody ran that does not say it is inferred (``kind``
    unmarked), or no claim at all for a release the vector applies to (``kind``
    uncovered)."""

    vector: Vector
    release: Release
    kind: str
    message: str

    def __str__(self) -> str:
        return f"{self.vector.id} on QEMU {self.release.label}: {self.message}"


def agrees(exp: Expectation, pred: Prediction) -> bool:
    """True unless the reject ``exp`` claims is certainly not ``pred``'s error
    (two patterns cannot be compared, and are taken to agree)."""
    if exp.error_class != pred.error_class:
        return False
    if exp.desc is not None:
        return pred.matches(exp.error_class, exp.desc)
    if pred.desc is not None:
        return pattern.fullmatch(exp.desc_pattern or "", pred.desc)
    return True


def visitor_only(exp: Expectation) -> bool:
    """True when the claimed error is one that only QEMU's input visitor gives."""
    return exp.result == "reject" and exp.desc is not None and \
        any(pattern.fullmatch(p, exp.desc) for p in VISITOR_ONLY)


def decided(exp: Expectation, answer: Answer) -> bool:
    """True when the schema alone makes ``exp`` true: a reject in the visitor's words."""
    return answer.decided and answer.prediction is not None and exp.result == "reject" \
        and agrees(exp, answer.prediction)


def _claim(exp: Expectation) -> str:
    return f"claims {describe(exp)} for {exp.versions}"


def ran(releases: Iterable[Release]) -> set[str]:
    """The versions a build of was run here: those with a committed baseline (a
    build's schema, ``vectors/schema/qemu-X.Y.Z.json``)."""
    return {r.label for r in releases if r.origin == "binary"}


def never_run(observed_on: Iterable[str], run: set[str]) -> list[tuple[str, str]]:
    """(version, message) for each version ``observed_on`` names (a pair: either
    side) that no build was run of."""
    out = []
    for text in observed_on:
        for version in dict.fromkeys(text.split("->")):
            if version not in run:
                out.append((version, f"observed-on names {text}, but no build of {version} was run "
                            "here (no committed baseline in vectors/schema/): an observation needs "
                            "a run; commit the build's baseline (qmpcompat snapshot QEMU -o "
                            f"vectors/schema/qemu-{version}.json) with the run that observed it, "
                            "or move the version to inferred-from"))
    return out


def _setup(vec: Vector) -> list[tuple[str, JSONObject]]:
    """The commands the runner sends before the vector's own (on both sides)."""
    out: list[tuple[str, JSONObject]] = []
    if vec.capabilities:
        out.append(("migrate-set-capabilities", {"capabilities": [
            {"capability": k, "state": v} for k, v in vec.capabilities.items()]}))
    if vec.parameters:
        out.append(("migrate-set-parameters", dict(vec.parameters)))
    return out


def check_claim(vec: Vector, exp: Expectation, rel: Release, claim: str = "") -> list[Finding]:
    """The findings of one claim on one release; ``claim`` says what claims it (default:
    the expectation, ``claims ... for RANGE``; a known defect says ``records ...``)."""
    def found(kind: str, message: str) -> Finding:
        return Finding(vec, rel, kind, message)

    said = claim or _claim(exp)
    src = f"({rel.source})"
    for command, args in _setup(vec):
        setup = visit(rel.index, command, args, rel.ordered)
        if setup.refused:
            return [found("contradiction", f"{said}, but its set-up {command} is rejected "
                          f"there {src}: {setup.prediction} ({setup.fact})")]
    answer = visit(rel.index, vec.command, vec.arguments, rel.ordered)
    pred = answer.prediction
    if answer.decided and pred is not None:
        if exp.result == "accept" or not agrees(exp, pred):
            return [found("contradiction", f"{said}, but the input visitor of that "
                          f"release {src} answers first: {pred} ({answer.fact})")]
        return []
    if answer.rejects and pred is not None and (exp.result == "accept" or not agrees(exp, pred)):
        return [found("contradiction", f"{said}, but the input visitor of that release {src} "
                      f"rejects these arguments whatever the values it cannot judge: {pred} "
                      f"({answer.fact})")]
    if answer.accepted and visitor_only(exp):
        return [found("contradiction", f"{said}, but that release's schema {src} lets "
                      f"these arguments through ({answer.fact}), so no input error can arise")]
    if exp.result == "accept" and vec.peer is not None:
        peer_args = vec.peer.arguments if vec.peer.arguments is not None else vec.arguments
        peer = visit(rel.index, vec.peer.command, peer_args, rel.ordered)
        if peer.refused:
            return [found("contradiction", f"{said}, but the peer's {vec.peer.command} is "
                          f"rejected there {src}: {peer.prediction} ({peer.fact})")]
    if not exp.observed(rel.version) and not exp.inferred_from:
        seen = ", ".join(exp.observed_on) or "none"
        return [found("unmarked", f"{said}; {rel.label} is not in its observed-on ({seen}) "
                      "and its schema does not decide the claim: say what it is inferred from "
                      "(inferred-from), or narrow the range")]
    return []


def applies(vec: Vector, rel: Release) -> bool:
    """Whether ``vec`` runs on ``rel`` (else it is skipped there and claims nothing)."""
    return vec.command in rel.index and all(schema_has(rel.index, q) for q in vec.schema)


def check_vector(vec: Vector, releases: Iterable[Release]) -> list[Finding]:
    """Every finding of one vector against ``releases``."""
    out: list[Finding] = []
    for rel in releases:
        if not applies(vec, rel):
            continue  # the vector is skipped there: it claims nothing
        exp = vec.expectation_for(rel.version)
        if exp is None:
            out.append(Finding(vec, rel, "uncovered", f"has no expectation for {rel.label} ("
                               f"{rel.source}), which has what the vector needs: a run there fails "
                               "with 'no expectation'; add one (observed, decided by that schema, "
                               "or inferred)"))
            continue
        out += check_claim(vec, exp, rel)
    return out


def check_history(vectors: Sequence[Vector], releases: Sequence[Release]) -> list[Finding]:
    """Every finding of ``vectors`` against ``releases``, by vector then release."""
    ordered = sorted(releases, key=lambda r: r.version)
    return [f for vec in vectors for f in check_vector(vec, ordered)]


def history_problems(vectors: Sequence[Vector], releases: Sequence[Release]) -> list[Problem]:
    """The findings as lint problems: file, line and vector, then the release and the
    fact; and every ``observed-on`` version no build was run of."""
    run = ran(releases)
    out = [Problem(f.vector.file, f.vector.line, f.vector.id,
                   f"history: QEMU {f.release.label}: {f.message}")
           for f in check_history(vectors, releases)]
    by_label = {r.label: r for r in releases}
    return out + [Problem(vec.file, vec.line, vec.id, f"history: QEMU {version}: {message}")
                  for vec in vectors for exp in vec.expect
                  for version, message in [*never_run(exp.observed_on, run),
                                           *skipped_on(vec, exp.observed_on, by_label)]]


def skipped_on(vec: Vector, observed_on: Iterable[str],
               releases: Mapping[str, Release]) -> list[tuple[str, str]]:
    """(version, message) for each version ``observed_on`` names on which the vector
    does not run (its schema lacks what ``requires.schema`` asks): the suite never
    observes a claim there."""
    return [(v, f"observed-on names {v}, but the vector is skipped there (its schema lacks "
                f"what requires.schema asks): the suite cannot observe this claim on it; "
                "drop the version, or the expectation")
            for v in observed_on if v in releases and not applies(vec, releases[v])]
