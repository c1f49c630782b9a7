"""The hunt's systematic pass: before any random draw, every edge value at every
place of a command's argument tree, one place at a time, and short state
sequences around the command.

A tree of the pass is the simplest valid tree of one shape (``TypeWalker.fill``:
union tags set, required members at their safe defaults) with one member, at any
depth, given one value of the hunt's catalogue: every enum value, every edge
string and integer of ``qmpcompat.derive.values``, both booleans, a list empty,
of one element (each of the element's own variants), of the same element twice,
an exec argv from ``ARGS_CATALOGUE``. The union branches on the way to that
member are each tried, so every branch of every union meets every edge value of
its own members.

A transcript of the pass is the command's simplest trees (a ``uri``, a channel
list) after one step that sets state (each migration ``mode``, each capability
on), or before one step that acts on what it started (each follow-up command of
the model with its simplest arguments); then the simplest ``uri`` after each
other parameter of the state model at its enum values, both booleans or its
integer extremes. The few mode transcripts come first, then the one-place
variants, then the other transcripts.

Everything here is deterministic: the same binary gives the same cases in the
same order. A case the safety gate refuses is left out by the caller.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Iterator, Sequence
from typing import TypeVar

from qmpcompat.derive.shapes import TypeWalker
from qmpcompat.derive.values import (
    ARGS_CATALOGUE,
    INT_BOUNDARIES,
    NUMBER_BOUNDARIES,
    PLAIN_STRINGS,
    STRING_CATALOGUE,
)
from qmpcompat.hunt.state import AFTER, MODEL_PARAMETERS, step
from qmpcompat.types import JSON, JSONObject, json_object
from qmpcompat.vectors.transcript import Step

MAX_DEPTH = 12
PARAMETER_INTS = (0, 2**64 - 1)  # a parameter's integer extremes in a transcript
T = TypeVar("T")


def scalars(json_type: str, member: str) -> tuple[JSON, ...]:
    """The catalogue values of a scalar of ``json_type`` named ``member``."""
    if json_type == "string":
        return STRING_CATALOGUE.get(member, PLAIN_STRINGS)
    if json_type == "int":
        return INT_BOUNDARIES
    if json_type == "number":
        return NUMBER_BOUNDARIES
    if json_type == "boolean":
        return (False, True)
    if json_type == "null":
        return (None,)
    return PLAIN_STRINGS  # 'value' (any)


class Variants:
    """The one-place variants of the types of one schema."""

    def __init__(self, walker: TypeWalker) -> None:
        self.walker = walker

    def of(self, type_name: str, member: str, depth: int = 0) -> Iterator[JSON]:
        """Every value of ``type_name`` (for a member called ``member``) that is the
        simplest valid value but for one choice, the simplest first."""
        if depth > MAX_DEPTH:
            return
        walker = self.walker
        entry = walker.entry(type_name)
        meta = entry["meta-type"]
        if meta == "builtin":
            yield from scalars(str(entry["json-type"]), member)
        elif meta == "enum":
            yield from walker.enum_values(type_name)
        elif meta == "array":
            if member == "args":
                for argv in ARGS_CATALOGUE:
                    yield list(argv)
                return
            element = str(entry["element-type"])
            simplest = walker.valid(element, member, depth + 1)
            yield [simplest]
            yield []
            yield [simplest, simplest]
            yield from ([v] for v in self.of(element, member, depth + 1))
        elif meta == "alternate":
            for branch in entry.get("members") or ():
                yield from self.of(str(branch["type"]), member, depth + 1)
        else:
            yield from self.objects(type_name, depth)

    def objects(self, type_name: str, depth: int = 0) -> Iterator[JSONObject]:
        """``of`` for the object type ``type_name``: each shape's simplest object, then
        its one-place variants."""
        walker = self.walker
        for shape in walker.shapes(type_name):
            base = walker.fill(shape, depth)
            yield base
            tags = dict(shape.tags)
            for m in shape.members:
                if m.name in tags:
                    continue
                for value in self.of(m.type, m.name, depth + 1):
                    yield {**base, m.name: value}

    def arguments(self, command: str) -> list[JSONObject]:
        """The one-place variants of ``command``'s arguments, each once."""
        return unique(self.objects(self.walker.arg_type(command)))


def unique(trees: Iterable[T]) -> list[T]:
    """``trees`` without repeats, in order."""
    seen: set[str] = set()
    out = []
    for tree in trees:
        key = json.dumps(tree, sort_keys=True)
        if key not in seen:
            seen.add(key)
            out.append(tree)
    return out


def _simplest_mains(walker: TypeWalker, command: str) -> list[JSONObject]:
    """The command's simplest trees that reach command code: a ``uri`` alone, a
    channel list of one simplest channel alone (each the member's safe default)."""
    arg = walker.arg_type(command)
    members = {m.name: m for shape in walker.shapes(arg) for m in shape.members}
    return [{name: walker.valid(members[name].type, name)}
            for name in ("uri", "channels") if name in members]


def _parameter_steps(walker: TypeWalker, names: Sequence[str]) -> Iterator[Step]:
    """``migrate-set-parameters`` with one of ``names`` at each enum value, both
    booleans or its integer extremes (members the binary lacks left out)."""
    if "migrate-set-parameters" not in walker.index:
        return
    arg = walker.arg_type("migrate-set-parameters")
    members = {m.name: m for shape in walker.shapes(arg) for m in shape.members}
    for name in names:
        if name not in members:
            continue
        entry = walker.entry(members[name].type)
        if entry["meta-type"] == "enum":
            values: Sequence[JSON] = walker.enum_values(members[name].type)
        elif entry.get("json-type") == "boolean":
            values = (True, False)
        elif entry.get("json-type") == "int":
            values = PARAMETER_INTS
        else:
            continue
        for value in values:
            yield step("migrate-set-parameters", {name: value})


def _capability_steps(walker: TypeWalker) -> Iterator[Step]:
    """``migrate-set-capabilities`` with each capability on, alone."""
    if "migrate-set-capabilities" not in walker.index:
        return
    (shape,) = walker.shapes(walker.arg_type("migrate-set-capabilities"))
    listed = next(m for m in shape.members if m.name == "capabilities")
    element = str(walker.entry(listed.type)["element-type"])
    capability = next(m for m in walker.shapes(element)[0].members if m.name == "capability")
    for name in walker.enum_values(capability.type):
        yield step("migrate-set-capabilities",
                   {"capabilities": [{"capability": name, "state": True}]})


def transcripts(walker: TypeWalker, command: str) -> tuple[list[list[Step]], list[list[Step]]]:
    """The pass's transcripts around ``command``, in two parts: each migration mode
    before each simplest tree (few, and a mode changes what the command does most);
    then each capability before each simplest tree, each follow-up command after
    each, and each other model parameter's values before the first simplest tree."""
    mains = [step(command, a) for a in _simplest_mains(walker, command)]
    if not mains:
        return [], []
    modes = [[before, main] for before in _parameter_steps(walker, ("mode",)) for main in mains]
    out = [[before, main] for before in _capability_steps(walker) for main in mains]
    for after in AFTER[command]:
        if after in walker.index:
            arguments = json_object(walker.valid(walker.arg_type(after)))
            out += [[main, step(after, arguments)] for main in mains]
    others = [n for n in MODEL_PARAMETERS if n != "mode"]
    out += [[before, mains[0]] for before in _parameter_steps(walker, others)]
    return modes, out


def _turns(groups: Sequence[Sequence[list[Step]]]) -> list[list[Step]]:
    """The cases of ``groups`` taking turns: the first of each, the second of each..."""
    longest = max((len(g) for g in groups), default=0)
    return [g[i] for i in range(longest) for g in groups if i < len(g)]


def plan(walker: TypeWalker, commands: Sequence[str]) -> list[list[Step]]:
    """The whole pass for ``commands``, the commands taking turns: the mode
    transcripts, then each command's one-place variants, then the other
    transcripts."""
    variants = Variants(walker)
    around = [transcripts(walker, c) for c in commands]
    return (_turns([modes for modes, _ in around])
            + _turns([[[step(c, a)] for a in variants.arguments(c)] for c in commands])
            + _turns([rest for _, rest in around]))
