"""The history lint of a consumer profile's steps: what each known release's
schema decides of the commands the consumer sends, held against the profile's
expectations and its known defects, pair by pair of known releases.

A step is judged only where the sides' schemas alone decide what it sends
(plain JSON, or a ``$when`` on the schema: a template that reads QEMU's replies
is not) and whether it is sent (its condition, ``when``). On a pair of releases:

- the first step (in the profile's order, one the consumer does not go on
  from when refused) whose condition certainly holds and whose command the
  side's schema lacks, or whose arguments its input visitor rejects, ends the
  run refused there or at an earlier step: a claim that the consumer migrates,
  or that its migration fails, is contradicted, and so is a refusal claimed
  at a later step or, at that step, with another error;
- a refusal claimed at a step with an error only the input visitor gives
  (``Parameter 'detach' is unexpected``), where that step's condition
  certainly holds and the side's schema lets its arguments through, is
  contradicted (no input error can arise).

A crash or a hang is not judged. The pair is covered when the expectation or a
known defect of the profile agrees: a consumer's expectation says how its
migration ends, and a known defect records where, against it, it does not.
"""

from __future__ import annotations

import itertools
import json
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

from qmpcompat.claims.history import Release, agrees, visitor_only
from qmpcompat.derive.predict import Prediction
from qmpcompat.derive.visit import Answer, visit
from qmpcompat.schema.model.query import schema_has
from qmpcompat.schema.sources.snapshot import SLICE_ROOTS
from qmpcompat.types import JSON
from qmpcompat.vectors.match import describe
from qmpcompat.vectors.model import Expectation, KnownDefect
from qmpcompat.vectors.profileprog import GENERATORS
from qmpcompat.vectors.profiles import Profile, Step
from qmpcompat.vectors.versions import pair_label

SHOWN = 4  # pairs named in a problem (then "and N more")


def command_not_found(command: str) -> Prediction:
    """What QEMU answers to a command its schema lacks."""
    return Prediction(f"The command {command} has not been found", error_class="CommandNotFound")


class _Undecided(Exception):
    """What a template sends depends on more than the schemas."""


_LEFT_OUT = object()  # a $when member whose condition is false


def resolve(tree: JSON, schema: Callable[[str, str], bool]) -> JSON | None:
    """What ``tree`` sends when the sides' schemas alone decide it (each ``$when``
    whose condition they decide taken or left out); None when it holds a
    template that reads QEMU's replies (``$capabilities``, ``$parameters``, a
    ``$when`` on a saved reply)."""
    def walk(node: JSON) -> object:
        if isinstance(node, list):
            return [x for x in (walk(v) for v in node) if x is not _LEFT_OUT]
        if not isinstance(node, dict):
            return node
        if "$when" in node:
            taken = certainly(node["$when"], schema)
            if taken is None:
                raise _Undecided
            return walk(node.get("value")) if taken else _LEFT_OUT
        if any(k in GENERATORS for k in node):
            raise _Undecided
        out = {k: walk(v) for k, v in node.items()}
        return {k: v for k, v in out.items() if v is not _LEFT_OUT}

    try:
        return walk(tree)  # type: ignore[return-value]
    except _Undecided:
        return None


def certainly(cond: JSON, schema: Callable[[str, str], bool]) -> bool | None:
    """Whether ``cond`` holds when only the sides' schemas decide it; None when
    it reads anything else (a saved reply, an earlier step's answer)."""
    if not isinstance(cond, dict):
        return None
    if "schema" in cond:
        return schema(str(cond.get("side")), str(cond["schema"]))
    for key, decisive in (("all", False), ("any", True)):
        if isinstance(items := cond.get(key), list):
            parts = [certainly(c, schema) for c in items]
            if decisive in parts:
                return decisive
            return None if None in parts else not decisive
    if "not" in cond:
        inner = certainly(cond["not"], schema)
        return None if inner is None else not inner
    return None


@dataclass(frozen=True)
class Refusal:
    """A step the schema of its side refuses: its error and the fact that decides it."""

    step: Step
    prediction: Prediction
    fact: str


def _sides_read(step: Step) -> frozenset[str]:
    """The sides whose schema decides what ``step`` sends and whether: its own,
    and each a ``schema`` condition in it names."""
    out: set[str] = {step.side}
    todo: list[JSON] = [step.when, step.arguments]
    while todo:
        node = todo.pop()
        if isinstance(node, dict):
            if "schema" in node:
                out.add(str(node.get("side")))
            todo += node.values()
        elif isinstance(node, list):
            todo += node
    return frozenset(out)


@dataclass
class _Judge:
    """The schema's answers for one profile: each step judged once for each
    release of each side it reads, each visit once per release and arguments."""

    profile: Profile
    answers: dict[tuple[str, str, str], Answer] = field(default_factory=dict)
    judged: dict[tuple[str, object, object], tuple[bool, Answer | None]] = field(
        default_factory=dict)
    reads: dict[str, frozenset[str]] = field(default_factory=dict)

    @staticmethod
    def _schema(src: Release, dst: Release) -> Callable[[str, str], bool]:
        sides = {"source": src, "destination": dst}
        return lambda side, query: side in sides and schema_has(sides[side].index, query)

    def _judge(self, step: Step, src: Release, dst: Release) -> tuple[bool, Answer | None]:
        """Whether ``step`` is certainly sent on this pair, and its answer there."""
        reads = self.reads.get(step.id) or self.reads.setdefault(step.id, _sides_read(step))
        key = (step.id, src.version if "source" in reads else None,
               dst.version if "destination" in reads else None)
        if key not in self.judged:
            schema = self._schema(src, dst)
            sure = step.when is None or certainly(step.when, schema) is True
            self.judged[key] = (sure, self._visit(step, src if step.side == "source" else dst,
                                                  schema))
        return self.judged[key]

    def _visit(self, step: Step, rel: Release, schema: Callable[[str, str], bool]) -> Answer | None:
        if step.execute not in SLICE_ROOTS:
            return None
        args = resolve(step.arguments or {}, schema)
        if not isinstance(args, dict):
            return None
        key = (step.execute, rel.label, json.dumps(args, sort_keys=True))
        if key not in self.answers:
            if step.execute not in rel.index:
                self.answers[key] = Answer(command_not_found(step.execute),
                                           f"{step.execute} is not a command of that release")
            else:
                self.answers[key] = visit(rel.index, step.execute, args, rel.ordered)
        return self.answers[key]

    def answer(self, step: Step, src: Release, dst: Release) -> Answer | None:
        """The input visitor's answer to ``step`` on its side's release; None when
        what the step sends depends on QEMU's replies, or its command is not one
        the committed schemas keep (``SLICE_ROOTS``); a refusal when the release
        lacks the command."""
        return self._judge(step, src, dst)[1]

    def refusal(self, src: Release, dst: Release) -> Refusal | None:
        """The first step of the run the schemas certainly refuse, or None."""
        for step in self.profile.steps:
            if step.stop_on_error:
                sure, answer = self._judge(step, src, dst)
                if sure and answer is not None and answer.refused and answer.prediction is not None:
                    return Refusal(step, answer.prediction, answer.fact)
        return None

    def contradiction(self, claim: Expectation, src: Release, dst: Release) -> str | None:
        """Why the schemas contradict ``claim`` on this pair, or None."""
        order = [s.id for s in self.profile.steps]
        refused = self.refusal(src, dst)
        if refused is not None:
            at, said = refused.step, f"{refused.prediction} ({refused.fact})"
            if claim.result == "accept":
                return f"but the {at.side}'s schema refuses step {at.id} ({at.execute}): {said}"
            if claim.result == "reject" and claim.step in order:
                if order.index(claim.step) > order.index(at.id):
                    return f"but step {at.id} ({at.execute}) comes first and is refused: {said}"
                if claim.step == at.id and not agrees(claim, refused.prediction):
                    return f"but the {at.side}'s schema answers {said}"
        step = self.profile.step(claim.step or "")
        if step is not None and visitor_only(claim):
            sure, answer = self._judge(step, src, dst)
            if sure and answer is not None and answer.accepted:
                return (f"but the {step.side}'s schema lets step {step.id}'s arguments through "
                        f"({answer.fact}), so no input error can arise")
        return None


def step_findings(profile: Profile, defects: Sequence[KnownDefect],
                  releases: Sequence[Release]) -> list[tuple[KnownDefect | None, str, str]]:
    """(the known defect, or None for the profile's expectation; the first pair;
    the message) for each claim the schemas contradict, one per claim and reason
    with the pairs it holds for counted."""
    judge = _Judge(profile)
    mine = {d.id: d for d in defects if d.vector == profile.id}
    found: dict[tuple[str, str], list[str]] = {}
    for src, dst in itertools.product(releases, repeat=2):
        exp = profile.expectation_for(src.version, dst.version)
        claims: list[tuple[str, Expectation, str]] = []
        if exp is not None:
            claims.append(("", exp.claim, f"the expectation for sources {exp.source}, "
                           f"destinations {exp.destination} claims {exp.outcome}"))
        claims += [(d.id, d.observed, f"records {describe(d.observed)}")
                   for d in mine.values() if d.applies(src.version, dst.version)]
        why = [judge.contradiction(claim, src, dst) for _, claim, _ in claims]
        if exp is not None and why[0] is not None and any(w is None for w in why[1:]):
            why[0] = None  # a known defect records what the expectation does not
        for (owner, _, said), reason in zip(claims, why, strict=True):
            if reason is not None:
                found.setdefault((owner, f"{said}, {reason}"), []).append(
                    pair_label(src.version, dst.version))
    out = []
    for (owner, message), pairs in found.items():
        more = f" and {len(pairs) - SHOWN} more" if len(pairs) > SHOWN else ""
        out.append((mine.get(owner), pairs[0], f"{message} (on {len(pairs)} pairs of known "
                    f"releases: {', '.join(pairs[:SHOWN])}{more})"))
    return out
