"""Which part of a run each of N shards runs (``--qmpcompat-shard K/N``).

A run's cases fall into units by the builds they need: a build's own cases
(its vectors, derived cases, schema gate, and the cross-version and consumer
cells from the build to itself) need that build; the cells between two builds,
both directions, need both. The plan is made before any build is provisioned,
from the builds' keys (``QemuBuild.request``, known from the suites and named
binaries alone) and an estimated cost per unit (``qmpcompat.shard.costs``), so a
shard provisions and starts only the builds its units need.

The builds are cut into groups of like cost; a group's own units, and the
units between two groups, make one piece (it needs the builds of its groups).
Pieces go to shards largest first, each to the shard it leaves least loaded,
load counting seconds, cases, and the start-up cost of a build the shard does
not start yet (longest-processing-time scheduling with an affinity for builds a
shard already starts). A piece larger than a part of a shard's share is cut
into chunks first: the cases of each of its units, in collection order, are
dealt round-robin over the chunks, so each chunk has a like mix of cheap and
dear cases. Of the deals for every group count (one group: every shard starts
every build; one per build: the finest cut), the plan keeps the best
(``_Deal.rank``). Every shard computes the same plan from the same inputs; its
``identity`` tells plans apart.

A build no plan key names (a kind of build ``selection.candidates`` does not
list) is provisioned by every shard; its own cases go to one shard chosen by a
digest of its key, its cells with a planned build to that build's shard.
"""

from __future__ import annotations

import hashlib
import json
import math
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from itertools import product
from typing import Any

from qmpcompat.types import JSONObject

Unit = tuple[str, ...]  # one build key (its own cases) or two (the cells between them)
CASES = 1.25  # a plan keeps every shard under this many times its share of cases, if it can
SPLITS = (0.5, 1.0)  # a piece above this share of one shard's load is cut into chunks (tried each)
_SPEC = re.compile(r"\s*(\d+)\s*/\s*(\d+)\s*")


@dataclass(frozen=True)
class ShardSpec:
    """Shard ``index`` (1-based, as CI numbers its parallel jobs) of ``total``."""

    index: int
    total: int

    def __str__(self) -> str:
        return f"{self.index}/{self.total}"


def parse_shard(text: str) -> ShardSpec:
    """``"2/3"`` -> ShardSpec(2, 3); ValueError says what is wrong."""
    match = _SPEC.fullmatch(text or "")
    if not match:
        raise ValueError(f"{text!r} is not K/N (e.g. 2/3: the second of three shards)")
    index, total = int(match.group(1)), int(match.group(2))
    if not 1 <= index <= total:
        raise ValueError(f"{text!r}: the shard index K must be 1 to N (it is 1-based, "
                         "as GitLab's CI_NODE_INDEX is)")
    return ShardSpec(index, total)


@dataclass(frozen=True)
class Cost:
    """What a unit (or a shard) is expected to take: seconds and cases."""

    seconds: float = 0.0
    cases: float = 0.0

    def __add__(self, other: Cost) -> Cost:
        return Cost(self.seconds + other.seconds, self.cases + other.cases)

    def split(self, parts: int) -> Cost:
        return Cost(self.seconds / parts, self.cases / parts)


@dataclass
class Plan:
    """Every unit's chunks and the shard (1-based) each chunk goes to."""

    total: int
    keys: tuple[str, ...]  # every planned build, in the run's order
    chunks: dict[Unit, tuple[int, ...]]
    load: tuple[Cost, ...] = ()  # each shard's estimated load
    basis: str = ""  # what the costs came from
    revision: str = ""  # the vector set's
    _order: dict[str, int] = field(default_factory=dict, repr=False)

    def __post_init__(self) -> None:
        self._order = {k: n for n, k in enumerate(self.keys)}

    @property
    def identity(self) -> str:
        """A digest of the plan: shards of one run share it."""
        data = json.dumps([self.total, self.revision, list(self.keys),
                           sorted([list(u), list(s)] for u, s in self.chunks.items())])
        return hashlib.sha256(data.encode()).hexdigest()[:16]

    def builds(self, shard: int) -> list[str]:
        """The keys of the builds shard ``shard`` needs, in the run's order."""
        held = {k for unit, owners in self.chunks.items() if shard in owners for k in unit}
        return [k for k in self.keys if k in held]

    def unit(self, keys: Sequence[str]) -> Unit:
        """The unit of a case on these builds' keys (one, or source and destination)."""
        distinct = sorted(set(keys), key=lambda k: (self._order.get(k, len(self.keys)), k))
        return tuple(distinct)

    def owner(self, unit: Unit, position: int) -> int:
        """The shard of the ``position``-th case (0-based, in collection order) of ``unit``."""
        owners = self.chunks.get(unit)
        if owners:
            return owners[position % len(owners)]
        known = [k for k in unit if k in self._order]
        if known and len(unit) == 2:  # a planned build's cells with an unplanned one
            return self.owner((known[0],), 0)
        return 1 + int(hashlib.sha256("\0".join(unit).encode()).hexdigest(), 16) % self.total

    def to_json(self) -> JSONObject:
        return {"total": self.total, "keys": list(self.keys), "revision": self.revision,
                "basis": self.basis, "chunks": [[list(u), list(s)] for u, s in self.chunks.items()],
                "load": [[c.seconds, c.cases] for c in self.load]}

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> Plan:
        """The plan ``to_json`` gave (as the controller ships it to its workers)."""
        chunks = {tuple(u): tuple(s) for u, s in data["chunks"]}
        load = tuple(Cost(s, c) for s, c in data.get("load") or ())
        return cls(int(data["total"]), tuple(data["keys"]), chunks, load,
                   str(data.get("basis", "")), str(data.get("revision", "")))


def units(keys: Sequence[str]) -> list[Unit]:
    """Every unit of a run of these builds, in a fixed order: each build's own,
    then each pair of builds in the run's order."""
    return [(k,) for k in keys] + [(a, b) for n, a in enumerate(keys) for b in keys[n + 1:]]


@dataclass
class _Piece:
    """Units that go together (a group of builds' own cases and the cells among
    them, or the cells between two groups), cut into ``parts`` chunks."""

    units: list[Unit]
    builds: frozenset[str]
    cost: Cost
    parts: int = 1


def _groups(keys: Sequence[str], costs: Mapping[Unit, Cost], count: int) -> list[list[str]]:
    """``keys`` dealt into ``count`` groups of like cost (dearest build first,
    each to the cheapest group), each group in the run's order."""
    groups: list[list[str]] = [[] for _ in range(count)]
    sums = [0.0] * count
    for key in sorted(keys, key=lambda k: -costs.get((k,), Cost()).seconds):
        n = min(range(count), key=lambda g: (sums[g], len(groups[g]), g))
        groups[n].append(key)
        sums[n] += costs.get((key,), Cost()).seconds
    order = {k: n for n, k in enumerate(keys)}
    return [sorted(g, key=order.__getitem__) for g in groups if g]


def _pieces(groups: list[list[str]], costs: Mapping[Unit, Cost],
            order: Mapping[str, int]) -> list[_Piece]:
    out = []
    for n, group in enumerate(groups):
        for other in groups[n:]:
            inner = other is group
            members = ([(k,) for k in group] + units(group)[len(group):] if inner
                       else [(a, b) for a in group for b in other])
            members = [tuple(sorted(u, key=order.__getitem__)) for u in members]
            out.append(_Piece(members, frozenset(group) | frozenset(other),
                              sum((costs.get(u, Cost()) for u in members), Cost())))
    return out


class _Deal:
    """Pieces dealt over shards, largest first, each to the shard it leaves
    least loaded (a build new to a shard costs ``start`` seconds)."""

    def __init__(self, total: int, share: Cost, start: float) -> None:
        self.share, self.start = share, start
        self.load = [Cost()] * total
        self.held: list[set[str]] = [set() for _ in range(total)]

    def weight(self, c: Cost) -> float:
        return max(c.seconds / self.share.seconds, c.cases / self.share.cases)

    def _after(self, s: int, builds: frozenset[str], cost: Cost) -> Cost:
        return self.load[s] + cost + Cost(self.start * len(builds - self.held[s]))

    def put(self, builds: frozenset[str], cost: Cost) -> int:
        best = min(range(len(self.load)), key=lambda s: (
            self.weight(self._after(s, builds, cost)), len(builds - self.held[s]), s))
        self.load[best] = self._after(best, builds, cost)
        self.held[best] |= builds
        return best + 1

    def rank(self) -> tuple[bool, float, int]:
        """How good the deal is, best least: no shard with more than ``CASES``
        times its share of cases first, then the busiest shard's seconds (start-up
        included), then the fewest builds started over all shards."""
        crowded = max(c.cases for c in self.load) > CASES * self.share.cases
        return crowded, round(max(c.seconds for c in self.load), 1), sum(map(len, self.held))


def _deal(keys: Sequence[str], count: int, split: float, costs: Mapping[Unit, Cost], total: int,
          share: Cost, start: float) -> tuple[_Deal, dict[Unit, tuple[int, ...]]]:
    deal = _Deal(total, share, start)
    pieces = _pieces(_groups(keys, costs, count), costs, {k: n for n, k in enumerate(keys)})
    for piece in pieces:
        piece.parts = max(1, min(total, math.ceil(deal.weight(piece.cost) / split),
                                 max(1, int(min((costs.get(u, Cost()).cases for u in piece.units),
                                                default=1)))))
    chunks = [(piece, c) for piece in pieces for c in range(piece.parts)]
    chunks.sort(key=lambda pc: -deal.weight(pc[0].cost.split(pc[0].parts)))
    owners: dict[int, list[int]] = {}
    for piece, _c in chunks:
        owners.setdefault(id(piece), []).append(deal.put(piece.builds, piece.cost.split(piece.parts)))
    return deal, {u: tuple(owners[id(p)]) for p in pieces for u in p.units}


def make_plan(keys: Sequence[str], costs: Mapping[Unit, Cost], total: int,
              start: float = 0.0, revision: str = "", basis: str = "") -> Plan:
    """Deal the units of ``keys`` over ``total`` shards: ``costs`` gives each
    unit's cost, ``start`` the seconds a shard spends on each build it starts.
    The builds are cut into groups (one to all of them, whichever count gives
    the least loaded busiest shard, start-up costs included); a group's own
    cases, and the cells between two groups, go together."""
    keys = list(dict.fromkeys(keys))
    whole = sum((costs.get(u, Cost()) for u in units(keys)), Cost())
    share = Cost(max(whole.seconds, 1e-9) / total, max(whole.cases, 1e-9) / total)
    deals = [_deal(keys, count, split, costs, total, share, start)
             for count, split in product(range(1, max(1, len(keys)) + 1), SPLITS)]
    deal, chunks = min(deals, key=lambda dc: dc[0].rank())
    return Plan(total, tuple(keys), chunks, tuple(deal.load), basis, revision)
