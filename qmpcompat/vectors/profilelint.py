"""The rules a consumer profile keeps beyond its JSON Schema (``qmpcompat
lint`` reports them with file, line and profile id): its id is well-formed and
not retired; every saved reply a condition or template reads is saved by an
earlier step (a cancel step may read any step's); every condition and template
is one of the language's forms; expectations do not overlap, say what they
rest on and observe pairs inside their ranges; a step's ``observed`` claims
hold against the recordings of the real consumer (``qmpcompat.vectors.wirecheck``);
the safety gate passes."""

from __future__ import annotations

from pathlib import Path

from qmpcompat.types import JSON
from qmpcompat.vectors.profilegate import gate_problems
from qmpcompat.vectors.profileprog import ProgramError, holds, references, widest
from qmpcompat.vectors.profiles import Profile, Step
from qmpcompat.vectors.versions import parse_pair_label
from qmpcompat.vectors.wirecheck import observed_problems


def _never(_side: str, _query: str) -> bool:
    return False


def _form_problems(step: Step) -> list[str]:
    """A condition or template that is not one of the language's forms."""
    out = []
    try:
        if step.when is not None:
            holds(step.when, {}, _never)
        widest(step.arguments or {})
        _conditions_in(step.arguments)
    except ProgramError as exc:
        out.append(f"step {step.id}: {exc}")
    return out


def _conditions_in(tree: JSON) -> None:
    """Evaluate every condition inside a template once (ProgramError for a bad one)."""
    todo = [tree]
    while todo:
        node = todo.pop()
        if isinstance(node, dict):
            if "$when" in node:
                holds(node["$when"], {}, _never)
            enable = node.get("enable") if "in" in node else None
            for item in enable if isinstance(enable, list) else []:
                if isinstance(item, dict) and item.get("when") is not None:
                    holds(item["when"], {}, _never)
            todo += node.values()
        elif isinstance(node, list):
            todo += node


def _reference_problems(profile: Profile) -> list[str]:
    out: list[str] = []
    saved: set[str] = set()
    every = {s.save for s in profile.steps if s.save}
    for group, steps in (("steps", profile.steps), ("cancel", profile.cancel)):
        for step in steps:
            known = saved if group == "steps" else every | saved
            used = references(step.when) + references(step.arguments)
            out += [f"step {step.id} reads {name!r}, which no earlier step saves"
                    for name in dict.fromkeys(used) if name not in known]
            if step.save:
                saved.add(step.save)
    return out


def _expectation_problems(profile: Profile) -> list[str]:
    out = []
    for i, a in enumerate(profile.expect):
        out += [f"expectations for sources {a.source}, destinations {a.destination} overlap"
                for b in profile.expect[i + 1:] if a.overlaps(b)]
        if not a.observed_on and not a.inferred_from:
            out.append(f"the expectation for sources {a.source}, destinations {a.destination} says "
                       "neither where it was observed (observed-on) nor what it is inferred from "
                       "(inferred-from)")
        for text in a.observed_on:
            pair = parse_pair_label(text)
            if pair is None:
                out.append(f"observed-on {text!r} is not a pair MAJOR.MINOR.MICRO->MAJOR.MINOR.MICRO")
            elif not a.applies(*pair):
                out.append(f"observed-on {text} is outside the sources {a.source} or the "
                           f"destinations {a.destination}")
        if a.claim.step is not None and profile.step(a.claim.step) is None:
            out.append(f"an expectation names step {a.claim.step}, which the profile does not have")
    return out


def profile_problems(profile: Profile, retired: set[str], allow_exec: bool,
                     root: Path | None = None) -> list[str]:
    """What is wrong with one parsed profile (beyond its schema); with the vectors'
    ``root``, its ``observed`` claims too (held against the recordings there)."""
    out = ["id is retired (ids are never reused): pick a new one"] if profile.id in retired else []
    for step in (*profile.steps, *profile.cancel):
        out += _form_problems(step)
    out += _reference_problems(profile)
    out += _expectation_problems(profile)
    out += observed_problems(profile, root) if root is not None else []
    return out + [f"unsafe: {p}" for p in gate_problems(profile, allow_exec)]
