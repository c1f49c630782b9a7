"""What each unit of a shard plan is expected to cost, before any build runs.

From recorded durations when there are some: a previous run's results.json
(whole, a shard's, or merged), each record's ``seconds`` summed per unit, its
builds known by their keys (``environment.binaries[].request``). A unit the
file does not cover is estimated: its cases counted from the vector set (a
build's vectors, its derived cases, counted on the committed schema of its
release line when its key tells its version, its schema gate; a pair's cells
and consumer cells in both directions), each at the cost of its kind, the
kinds' costs taken from the file when it has cases of that kind, else from
``SECONDS``.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

from qmpcompat.derive.run import derive_for
from qmpcompat.resultdoc import CaseJSON, ConsumerJSON, PairJSON, ResultsJSON
from qmpcompat.schema.sources.releases import known_schemas
from qmpcompat.shard.plan import Cost, Unit, units
from qmpcompat.types import Version
from qmpcompat.vectors.load import VectorSet

# Seconds per case of each kind, measured on this project's reference host (2
# cores, shared, under load; persistent mode, two xdist workers) from the
# records of a whole default run, plus PER_CASE: what pytest adds to each.
SECONDS = {
    "derived": 0.003,  # a derived case: one command on a reused QEMU
    "command": 0.01,  # a vector whose QEMU answers a command (mostly reused QEMUs)
    "migration": 0.19,  # a vector that migrates a real guest to a destination QEMU
    "vsock": 1.0,  # a vsock vector (its connection attempt times out)
    "pair": 0.2,  # a cross-version cell: a real guest from one build to another
    "consumer": 0.43,  # a consumer-profile cell, likewise with the consumer's commands
    "build": 0.05,  # a build's own tests: it starts, its schema against the baselines
}
PER_CASE = 0.004
BUILD_TESTS = 3  # test_qemu_starts and the two schema-gate tests, per build
DERIVED_PER_BUILD = 500  # derived cases of a build no file records (QEMU 10.0: 502, 11.1: 568)
START = 10.0  # seconds a shard spends on each build it starts (see make_plan)


def record_kind(rec: CaseJSON) -> str:
    """The kind of a recorded case (its flags, what it observed)."""
    flags = rec.get("flags") or []
    if "derived" in flags:
        return "derived"
    if "vsock" in flags or "socket-vsock" in flags:
        return "vsock"
    observed = rec.get("observed") or {}
    return "migration" if "end-to-end" in flags or observed.get("guest") else "command"


def _vector_kind(flags: Sequence[str], migrates: bool) -> str:
    if "vsock" in flags or "socket-vsock" in flags:
        return "vsock"
    return "migration" if migrates or "end-to-end" in flags else "command"


@dataclass
class Recorded:
    """What a durations file says: per unit, per kind, derived cases per build."""

    units: dict[Unit, Cost] = field(default_factory=dict)
    kinds: dict[str, float] = field(default_factory=dict)  # mean seconds per case
    derived: dict[str, int] = field(default_factory=dict)  # per build key

    @property
    def derived_mean(self) -> int:
        return round(sum(self.derived.values()) / len(self.derived)) if self.derived else DERIVED_PER_BUILD


def recorded(doc: ResultsJSON, keys: Sequence[str]) -> Recorded:
    """The costs a results document records for the units of ``keys``."""
    order = {k: n for n, k in enumerate(keys)}
    key_of = {b.get("run_label") or b["version"]: b.get("request", "")
              for b in doc["environment"]["binaries"]}
    out = Recorded()
    sums: dict[str, float] = {}
    counts: Counter[str] = Counter()

    def add(kind: str, labels: Sequence[str], seconds: float) -> None:
        sums[kind] = sums.get(kind, 0.0) + seconds
        counts[kind] += 1
        found = [key_of.get(label, "") for label in labels]
        if all(k in order for k in found):
            unit = tuple(sorted(set(found), key=order.__getitem__))
            out.units[unit] = out.units.get(unit, Cost()) + Cost(seconds + PER_CASE, 1)

    for rec in doc["results"]:
        kind = record_kind(rec)
        add(kind, [rec["qemu"]], rec.get("seconds", 0.0))
        if kind == "derived" and key_of.get(rec["qemu"]) in order:
            key = key_of[rec["qemu"]]
            out.derived[key] = out.derived.get(key, 0) + 1
    cells: list[tuple[str, PairJSON | ConsumerJSON]] = [
        *(("pair", p) for p in doc.get("pairs", [])),
        *(("consumer", c) for c in doc.get("consumers", []))]
    for kind, cell in cells:
        add(kind, [cell["source"], cell["destination"]], cell.get("seconds", 0.0))
    out.kinds = {k: sums[k] / counts[k] for k in counts}
    for unit in out.units:  # the build's own tests, which results.json does not list
        if len(unit) == 1:
            out.units[unit] += Cost(BUILD_TESTS * (SECONDS["build"] + PER_CASE), BUILD_TESTS)
    return out


def schema_derived(version: str) -> int | None:
    """How many derived cases a build of QEMU ``version`` has, counted on the
    committed schema of its release line nearest it (a build's baseline or a
    recorded release; None when its line has none)."""
    wanted = Version.parse(version)
    line = [k for k in known_schemas() if k.key[:2] == wanted[:2]]
    if not line:
        return None
    nearest = min(line, key=lambda k: (abs(k.key[2] - wanted[2]), k.key))
    return len(derive_for(nearest.schema.entries))


def estimate(keys: Sequence[str], vectors: VectorSet, known: Recorded | None = None,
             versions: Mapping[str, str] | None = None) -> dict[Unit, Cost]:
    """Every unit's cost: recorded where ``known`` covers it, else estimated;
    ``versions`` gives the QEMU version of the builds whose key tells it (their
    derived cases counted on the committed schemas)."""
    known = known or Recorded()
    by_schema = {k: n for k, v in (versions or {}).items() if (n := schema_derived(v)) is not None}
    each = {**SECONDS, **known.kinds}

    def cost(kind: str, n: float) -> Cost:
        return Cost(n * (each[kind] + PER_CASE), n)

    per_build = sum((cost(_vector_kind(v.flags, v.peer is not None), 1) for v in vectors.vectors),
                    cost("build", BUILD_TESTS))
    cells = sum(len(p.forms) for p in vectors.pairs)
    one_way = cost("pair", cells) + cost("consumer", len(vectors.profiles))
    out: dict[Unit, Cost] = {}
    for unit in units(keys):
        if unit in known.units:
            out[unit] = known.units[unit]
        elif len(unit) == 1:
            derived = known.derived.get(unit[0], by_schema.get(unit[0], known.derived_mean))
            out[unit] = per_build + cost("derived", derived) + one_way
        else:
            out[unit] = one_way + one_way
    return out


def pace(known: Recorded, estimated: Mapping[Unit, Cost], keys: Sequence[str], vectors: VectorSet,
         versions: Mapping[str, str] | None = None) -> float:
    """How much dearer the recorded run's cases were than ``SECONDS`` says (the
    recorded seconds of the units it covers over their estimate by ``SECONDS``):
    a build's start-up (``START``, measured with them) is as much dearer there."""
    covered = [u for u in known.units if u in estimated]
    plain = estimate(keys, vectors, Recorded(derived=known.derived), versions)
    base = sum(plain[u].seconds for u in covered)
    return sum(known.units[u].seconds for u in covered) / base if base > 0 else 1.0
