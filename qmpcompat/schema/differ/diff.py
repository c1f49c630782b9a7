"""Structural differences between two normalized models, found by deepdiff.

Before deepdiff runs, identical subtrees (compared by a structural hash that
is computed once per shared node) are skipped, and what is left becomes two
flat maps keyed by model path; a node whose kind changed (an enum that became
an object, a ``str`` that became an alternate) is one token on each side, so
deepdiff reports each change once, where it happened.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass

from deepdiff import DeepDiff

from qmpcompat.types import JSON, JSONObject

Path = tuple[str, ...]


@dataclass(frozen=True)
class RawChange:
    """One difference: ``op`` is added, removed or changed, at ``path`` of the
    model (root name first); ``old``/``new`` are the nodes or values (None when
    absent)."""

    op: str
    path: Path
    old: JSON
    new: JSON


class _Hasher:
    """Structural hashes of model nodes, cached per object (models share subtrees)."""

    def __init__(self) -> None:
        self.cache: dict[int, tuple[JSON, str]] = {}

    def __call__(self, node: JSON) -> str:
        if not isinstance(node, (dict, list)):
            return json.dumps(node)
        hit = self.cache.get(id(node))
        if hit is not None and hit[0] is node:
            return hit[1]
        if isinstance(node, dict):
            parts = [f"{json.dumps(k)}:{self(v)}" for k, v in sorted(node.items())]
            text = "{" + ",".join(parts) + "}"
        else:
            text = "[" + ",".join(self(v) for v in node) + "]"
        digest = hashlib.blake2b(text.encode(), digest_size=12).hexdigest()
        self.cache[id(node)] = (node, digest)
        return digest


def _kind(node: JSON) -> str:
    if isinstance(node, dict):
        return str(node.get("kind", "dict"))
    return type(node).__name__


def _is_node(node: JSON) -> bool:
    return isinstance(node, str) or (isinstance(node, dict) and "kind" in node)


_SEP = "\x1f"


class _Flattener:
    """Reduces two models to flat maps ``{path: value}`` of where they differ."""

    def __init__(self) -> None:
        self.hash = _Hasher()
        self.replaced: dict[Path, tuple[JSON, JSON]] = {}
        self.old: dict[str, JSON] = {}
        self.new: dict[str, JSON] = {}

    def walk(self, old: JSON, new: JSON, path: Path) -> None:
        """Record the differences of ``old`` and ``new`` under ``path``: keys on
        one side only as whole subtrees, changed leaves, and nodes whose kind
        changed as a pair of distinct tokens (the nodes kept in ``replaced``)."""
        if old is new or self.hash(old) == self.hash(new):
            return
        if isinstance(old, dict) and isinstance(new, dict) and _kind(old) == _kind(new):
            for key in sorted(old.keys() | new.keys()):
                sub = (*path, key)
                if key in old and key in new:
                    self.walk(old[key], new[key], sub)
                elif key in old:
                    self.old[_SEP.join(sub)] = old[key]
                else:
                    self.new[_SEP.join(sub)] = new[key]
            return
        key = _SEP.join(path)
        if _is_node(old) and _is_node(new) and path and path[-1] not in ("tag", "kind"):
            self.replaced[path] = (old, new)
            old, new = f"\x00old:{_kind(old)}", f"\x00new:{_kind(new)}"
        self.old[key], self.new[key] = old, new


def diff_models(old: JSONObject, new: JSONObject) -> list[RawChange]:
    """Every difference between two models, sorted by path.

    Identical subtrees are skipped by hash first; deepdiff then compares the
    flat maps of what is left (each key a path into the model)."""
    flat = _Flattener()
    flat.walk(old, new, ())
    if not flat.old and not flat.new:
        return []
    tree = DeepDiff(flat.old, flat.new, view="tree", verbose_level=2,
                    threshold_to_diff_deeper=0)
    changes: list[RawChange] = []
    for report, levels in tree.items():
        for level in levels:
            keys = [str(p) for p in level.path(output_format="list")]
            path = tuple(keys[0].split(_SEP)) + tuple(keys[1:])
            if path in flat.replaced:
                changes.append(RawChange("changed", path, *flat.replaced[path]))
            elif report == "dictionary_item_added":
                changes.append(RawChange("added", path, None, level.t2))
            elif report == "dictionary_item_removed":
                changes.append(RawChange("removed", path, level.t1, None))
            else:
                changes.append(RawChange("changed", path, level.t1, level.t2))
    return sorted(changes, key=lambda c: (c.path, c.op))
