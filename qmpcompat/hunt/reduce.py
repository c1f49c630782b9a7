"""A greedy reducer that finishes what Hypothesis's shrinker started: it
orders by draw sequence, not by tree size, and a schema-shaped tree often keeps
members it could lose. Each step tries a simpler transcript (a step left out,
a member or list element left out, a scalar at its simplest) and keeps it when
it is still a transcript and still fails the same way."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator, Sequence

from qmpcompat.derive.values import PLAIN_STRINGS, STRING_CATALOGUE
from qmpcompat.types import JSON
from qmpcompat.vectors.transcript import Step, well_formed


def _simplest_scalar(member: str, value: JSON, enum_defaults: dict[str, str]) -> JSON:
    """The value a scalar of member ``member`` simplifies to (itself if none is simpler)."""
    if isinstance(value, bool):
        return False
    if isinstance(value, int | float):
        return 0
    if isinstance(value, str):
        if member in enum_defaults:
            return enum_defaults[member]
        return STRING_CATALOGUE.get(member, PLAIN_STRINGS)[0]
    return value


def simpler(tree: JSON, enum_defaults: dict[str, str], member: str = "") -> Iterator[JSON]:
    """Every tree one step simpler than ``tree``: a member or list element left
    out, or one scalar set to its simplest value. Bigger steps come first."""
    if isinstance(tree, dict) and "execute" in tree:  # a transcript's step: its arguments
        for sub in simpler(tree.get("arguments"), enum_defaults, ""):
            yield {**tree, "arguments": sub}
    elif isinstance(tree, dict):
        for key in tree:
            yield {k: v for k, v in tree.items() if k != key}
        for key, value in tree.items():
            for sub in simpler(value, enum_defaults, key):
                yield {**tree, key: sub}
    elif isinstance(tree, list):
        for i in range(len(tree)):
            yield tree[:i] + tree[i + 1:]
        for i, value in enumerate(tree):
            for sub in simpler(value, enum_defaults, member):
                yield [*tree[:i], sub, *tree[i + 1:]]
    else:
        simplest = _simplest_scalar(member, tree, enum_defaults)
        if simplest != tree or type(simplest) is not type(tree):
            yield simplest


def reduce_tree(steps: list[Step], still_fails: Callable[[list[Step]], bool],
                enum_defaults: dict[str, str], until: float) -> list[Step]:
    """The simplest transcript reachable from ``steps`` one step at a time that
    still fails (``still_fails`` runs it; a candidate that is no transcript, see
    ``well_formed``, is passed over); stops at the monotonic time ``until``."""
    changed = True
    while changed and time.monotonic() < until:
        changed = False
        for candidate in simpler(_as_json(steps), enum_defaults):
            if time.monotonic() >= until:
                break
            if well_formed(candidate) and still_fails(candidate):
                steps, changed = candidate, True
                break
    return steps


def _as_json(steps: Sequence[Step]) -> list[JSON]:
    return [{"execute": s["execute"], "arguments": s["arguments"]} for s in steps]
