"""Size limits of a vector's argument trees: QMP arguments worth testing are
small, and a huge or deeply nested tree in a vector file is a mistake (or an
attempt to make the runner itself slow). And the limits of a transcript (a
hunt case, a ``--replay``): how many steps, how long they may run, how much
its case directory may hold; over one, the case fails saying which. (One
command's own writes are bounded by the safety gate: ``MAX_WRITE_BYTES``.)"""

from __future__ import annotations

import contextlib
import json
import os
import stat
import time
from pathlib import Path

from qmpcompat.types import JSON
from qmpcompat.vectors.model import Vector

MAX_DEPTH = 32
MAX_BYTES = 64 * 1024
MAX_STEPS = 100  # steps of one transcript
MAX_STEPS_SECONDS = 300.0  # wall time of one transcript's steps
MAX_CASE_BYTES = 1024 * 1024 * 1024  # what one case's directory may hold


def dir_bytes(path: Path) -> int:
    """The bytes of the regular files under ``path`` (links not followed)."""
    total = 0
    for root, _dirs, files in os.walk(path):
        for name in files:
            with contextlib.suppress(OSError):
                st = os.lstat(os.path.join(root, name))
                total += st.st_size if stat.S_ISREG(st.st_mode) else 0
    return total


def over_limits(case_dir: Path, started: float, step: int) -> str | None:
    """Why a transcript must stop after its step ``step`` (1-based), or None."""
    held = dir_bytes(case_dir)
    if held > MAX_CASE_BYTES:
        return (f"over a resource limit: after step {step} the case's directory holds "
                f"{held // (1024 * 1024)} MiB (at most {MAX_CASE_BYTES // (1024 * 1024)} MiB)")
    took = time.monotonic() - started
    if took > MAX_STEPS_SECONDS:
        return (f"over a resource limit: after step {step} the transcript has run {took:.0f}s "
                f"(at most {MAX_STEPS_SECONDS:.0f}s)")
    return None


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
