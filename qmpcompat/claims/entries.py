"""The history lint for what is not a vector expectation: known defects, the
cross-version pair vectors (XV-*) and the consumer profiles (CP-*).

- A known defect of a vector records what builds in its range do instead of the
  expectation. It is held against the schema of every known release in that
  range as an expectation is (``history.check_claim``): where the release's input
  visitor rejects the vector's arguments, no build of it can show the defect
  (an accept, a crash, another error); a release not in its ``observed-on``
  whose schema does not decide it needs ``inferred-from``.
- A pair expectation claims how a real guest migrates from every source to
  every destination in its ranges, in each of its forms. For each form, a
  release on which a side's command is rejected by its input visitor (the form
  is not n/a there: the side's schema has what the form needs) contradicts it;
  the pairs of known releases it covers that are not in its ``observed-on``
  need ``inferred-from``. A known defect of a pair vector is held the same way.
- A consumer profile's expectation: the pairs of known releases it covers that
  are not in its ``observed-on`` need ``inferred-from``; what the releases'
  schemas decide of its steps is held against it and its known defects
  (``qmpcompat.claims.profilesteps``).
- Every ``observed-on`` version (each side of a pair) must be one a build was
  run of (``history.ran``).

Each problem names the entry (file, line, id), the release and the fact.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from qmpcompat.claims.history import Release, applies, check_claim, never_run, ran
from qmpcompat.claims.profilesteps import step_findings
from qmpcompat.derive.visit import visit
from qmpcompat.schema.model.query import schema_has
from qmpcompat.vectors.lint import Problem
from qmpcompat.vectors.load import VectorSet
from qmpcompat.vectors.match import describe
from qmpcompat.vectors.model import KnownDefect, Vector
from qmpcompat.vectors.pairs import PairVector, case_vector
from qmpcompat.vectors.profiles import ProfileExpectation
from qmpcompat.vectors.versions import VersionRange, pair_label

SHOWN = 4  # unmarked pairs named in a problem (then "and N more")


@dataclass(frozen=True)
class PairClaim:
    """What one pair expectation, or one known defect of a pair vector, claims."""

    vector: PairVector
    source: VersionRange
    destination: VersionRange
    forms: tuple[str, ...]
    said: str  # "claims migration completed for sources *, destinations *"
    observed_on: tuple[str, ...]
    inferred_from: str | None


def _side(vec: Vector, rel: Release, side: str) -> str | None:
    """The input visitor's rejection of one side's command of a cell on ``rel``, or None."""
    if side == "source":
        command, args = vec.command, vec.arguments
    elif vec.peer is not None:  # a cell's destination is its peer
        command = vec.peer.command
        args = vec.peer.arguments if vec.peer.arguments is not None else vec.arguments
    else:
        return None
    answer = visit(rel.index, command, args, rel.ordered)
    if answer.refused:
        return f"the {side}'s {command} is rejected there ({rel.source}): {answer.prediction} " \
               f"({answer.fact})"
    return None


def check_pair_claim(claim: PairClaim, releases: Sequence[Release]) -> list[tuple[str, str]]:
    """(release, message) for each contradiction of ``claim`` and, once, for the
    known pairs it covers that are neither observed nor said to be inferred."""
    pv = claim.vector
    out: list[tuple[str, str]] = []
    cells: set[tuple[Release, Release]] = set()
    for form in claim.forms:
        vec = case_vector(pv, form)
        need = dict(zip(("source", "destination"), pv.needs(form), strict=True))
        commands = {"source": vec.command, "destination": vec.peer.command if vec.peer else ""}
        ranges = {"source": claim.source, "destination": claim.destination}
        usable: dict[str, list[Release]] = {}
        for side in ("source", "destination"):
            usable[side] = []
            for rel in releases:
                if rel.version not in ranges[side] or commands[side] not in rel.index \
                        or not all(schema_has(rel.index, q) for q in need[side]):
                    continue  # outside the claim, or the form is n/a on that side
                if why := _side(vec, rel, side):
                    out.append((rel.label, f"{claim.said} in form {form}, but {why}"))
                else:
                    usable[side].append(rel)
        cells |= {(s, d) for s in usable["source"] for d in usable["destination"]}
    unmarked = sorted((c for c in cells if pair_label(c[0].version, c[1].version)
                       not in claim.observed_on), key=lambda c: (c[0].version, c[1].version))
    if unmarked and not claim.inferred_from:
        names = [pair_label(s.version, d.version) for s, d in unmarked]
        more = f" and {len(names) - SHOWN} more" if len(names) > SHOWN else ""
        out.append((names[0], f"{claim.said}; {len(names)} pairs of known releases it covers "
                    f"are not in its observed-on ({', '.join(names[:SHOWN])}{more}) and no "
                    "schema decides a migration's end: say what they are inferred from "
                    "(inferred-from), or narrow the ranges"))
    return out


def pair_claims(pv: PairVector) -> list[PairClaim]:
    """The claims of ``pv``'s expectations."""
    return [PairClaim(pv, e.source, e.destination, e.forms,
                      f"claims migration {e.migration} for sources {e.source}, destinations "
                      f"{e.destination}", e.observed_on, e.inferred_from) for e in pv.expect]


def defect_claim(pv: PairVector, d: KnownDefect) -> PairClaim:
    """The claim of a known defect of the pair vector ``pv``."""
    return PairClaim(pv, d.versions, d.destination or VersionRange.parse(None), pv.forms,
                     f"records {describe(d.observed)} for sources {d.versions}, destinations "
                     f"{d.destination} (vector {pv.id})", d.observed_on, d.inferred_from)


def defect_findings(defect: KnownDefect, vec: Vector,
                    releases: Sequence[Release]) -> list[tuple[str, str]]:
    """(release, message) for each release in ``defect``'s range that contradicts it,
    or where it is neither observed nor said to be inferred."""
    said = f"records {describe(defect.observed)} for {defect.versions} (vector {vec.id})"
    return [(rel.label, f.message) for rel in releases
            if rel.version in defect.versions and applies(vec, rel)
            for f in check_claim(vec, defect.observed, rel, said)]


def entry_problems(vs: VectorSet, releases: Sequence[Release]) -> list[Problem]:
    """The history lint of ``vs``'s known defects and pair vectors, as lint problems."""
    ordered = sorted(releases, key=lambda r: r.version)
    run = ran(ordered)
    vectors = {v.id: v for v in vs.vectors}
    pairs = {p.id: p for p in vs.pairs}
    out: list[Problem] = []
    for d in vs.defects:
        found = never_run(d.observed_on, run)
        if d.vector in vectors:
            found = defect_findings(d, vectors[d.vector], ordered) + found
        elif d.vector in pairs:
            found = check_pair_claim(defect_claim(pairs[d.vector], d), ordered) + found
        out += [Problem(d.file, d.line, d.id, f"history: QEMU {rel}: {msg}") for rel, msg in found]
    for pv in vs.pairs:
        for claim in pair_claims(pv):
            found = check_pair_claim(claim, ordered) + never_run(claim.observed_on, run)
            out += [Problem(pv.file, pv.line, pv.id, f"history: QEMU {rel}: {msg}")
                    for rel, msg in found]
    for profile in vs.profiles:
        for exp in profile.expect:
            found = never_run(exp.observed_on, run) + _unmarked(exp, ordered)
            out += [Problem(profile.file, profile.line, profile.id, f"history: QEMU {rel}: {msg}")
                    for rel, msg in found]
        for defect, pair, msg in step_findings(profile, vs.defects, ordered):
            file, line, ident = (defect.file, defect.line, defect.id) if defect else \
                (profile.file, profile.line, profile.id)
            out.append(Problem(file, line, ident, f"history: QEMU {pair}: {msg}"))
    return out


def _unmarked(exp: ProfileExpectation, releases: Sequence[Release]) -> list[tuple[str, str]]:
    """Once, when a consumer profile's expectation covers known pairs it neither
    observed nor says it infers."""
    pairs = [pair_label(s.version, d.version) for s in releases if s.version in exp.source
             for d in releases if d.version in exp.destination]
    unmarked = [p for p in pairs if p not in exp.observed_on]
    if not unmarked or exp.inferred_from:
        return []
    return [(unmarked[0], f"the expectation for sources {exp.source}, destinations "
             f"{exp.destination} covers {len(unmarked)} pairs neither observed nor said to be "
             "inferred: add observed-on for the pairs run, or inferred-from")]
