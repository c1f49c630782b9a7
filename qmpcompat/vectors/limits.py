"""Size limits of a vector's argument trees: QMP arguments worth testing are
small, and a huge or deeply nested tree in a vector file is a mistake (or an
attempt to make the runner itself slow)."""

from __future__ import annotations

import json

from qmpcompat.types import JSON
from qmpcompat.vectors.model import Vector

MAX_DEPTH = 32
MAX_BYTES = 64 * 1024


def depth(tree: JSON) -> int:
    """Nesting depth of a JSON-like tree (a scalar is 0), without recursion."""
    deepest, stack = 0, [(tree, 0)]
    while stack:
        node, level = stack.pop()
        deepest = max(deepest, level)
        if isinstance(node, dict):
            stack += [(v, level + 1) for v in node.values()]
        elif isinstance(node, list):
            stack += [(v, level + 1) for v in node]
    return deepest


def check_limits(vec: Vector) -> list[str]:
    """Why ``vec``'s argument trees are too big to run, if they are."""
    problems = []
    trees = [("arguments", vec.arguments)]
    if vec.peer and vec.peer.arguments is not None:
        trees.append(("peer/arguments", vec.peer.arguments))
    for where, tree in trees:
        d = depth(tree)
        if d > MAX_DEPTH:
            problems.append(f"{where}: argument tree too deep ({d} levels; at most {MAX_DEPTH})")
        size = len(json.dumps(tree))
        if size > MAX_BYTES:
            problems.append(f"{where}: argument tree too large ({size} bytes of JSON; "
                            f"at most {MAX_BYTES})")
    return problems
