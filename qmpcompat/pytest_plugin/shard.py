"""One shard of a run (``--qmpcompat-shard K/N``, ``$QMPCOMPAT_SHARD``) in the
plugin: the plan the controller makes before it provisions anything (from the
builds the options name, the vector set and the recorded durations), and the
cases every process of the shard keeps of what it collected.

Every process keeps the same cases in the same order (xdist requires it): the
cases of a unit (``qmpcompat.shard.plan``) are counted in collection order and
the plan says which shard each one goes to. A test of no build (an unusable
binary, a broken vector file) is kept by every shard that has it: it fails each.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path

import pytest

from qmpcompat.errors import ReportError
from qmpcompat.provision.build import QemuBuild
from qmpcompat.report.history import snapshots
from qmpcompat.report.results import read_results
from qmpcompat.shard.costs import START, Recorded, estimate, recorded
from qmpcompat.shard.plan import Plan, ShardSpec, make_plan, parse_shard
from qmpcompat.types import JSONObject, ShardJSON, json_object
from qmpcompat.vectors.load import VectorSet

SHARD_VAR = "QMPCOMPAT_SHARD"
DURATIONS_VAR = "QMPCOMPAT_DURATIONS"


@dataclass
class Shard:
    """This run's shard: which one, and the plan of the whole run."""

    spec: ShardSpec
    plan: Plan

    def to_json(self) -> JSONObject:
        return {"index": self.spec.index, "total": self.spec.total, "plan": self.plan.to_json()}

    @classmethod
    def from_json(cls, data: JSONObject) -> Shard:
        return cls(ShardSpec(int(str(data["index"])), int(str(data["total"]))),
                   Plan.from_json(json_object(data["plan"])))

    @cached_property
    def builds(self) -> list[str]:
        """The keys of the builds this shard provisions and starts."""
        return self.plan.builds(self.spec.index)

    def wants(self, key: str) -> bool:
        """Whether this shard provisions and starts the build of ``key``: one of
        its own, or one the plan does not know (every shard starts those)."""
        return key in self.builds or key not in self.plan.keys


def shard_spec(config: pytest.Config) -> ShardSpec | None:
    """``--qmpcompat-shard``, else ``$QMPCOMPAT_SHARD``; None when neither is given."""
    text = config.getoption("qmpcompat_shard") or os.environ.get(SHARD_VAR, "").strip()
    if not text:
        return None
    try:
        return parse_shard(text)
    except ValueError as exc:
        raise pytest.UsageError(f"--qmpcompat-shard: {exc}") from exc


def _durations(config: pytest.Config, keys: Sequence[str]) -> tuple[Recorded | None, str]:
    """What ``--qmpcompat-durations`` (or ``$QMPCOMPAT_DURATIONS``) records, and
    how the plan's costs were found."""
    path = config.getoption("qmpcompat_durations") or os.environ.get(DURATIONS_VAR, "").strip()
    if not path:
        return None, "estimated per kind of case"
    try:
        doc = read_results(Path(path))
    except ReportError as exc:
        raise pytest.UsageError(f"--qmpcompat-durations: {exc}") from exc
    return recorded(doc, keys), f"recorded in {Path(path).name} (started {doc['started']})"


def plan_shard(config: pytest.Config, spec: ShardSpec, keys: Sequence[str],
               vectors: VectorSet) -> Shard:
    """The plan of the whole run (every shard makes the same) and this shard in it."""
    known, basis = _durations(config, keys)
    plan = make_plan(keys, estimate(keys, vectors, known), spec.total, START,
                     vectors.revision(), basis)
    return Shard(spec, plan)


def _builds_of(item: pytest.Item) -> list[QemuBuild] | None:
    """The builds a case needs (one, or a cell's source and destination); None
    for a test of no build."""
    callspec = getattr(item, "callspec", None)
    params = callspec.params if callspec is not None else {}
    if "qemu_build" in params:
        return [params["qemu_build"]]
    if "derived" in params:
        return [params["derived"][0]]
    cell = params.get("pair_case") or params.get("consumer_case")
    if cell is not None:
        return [cell.source, cell.destination]
    return None


def key_of(build: QemuBuild) -> str:
    """A build's key in the plan: how the run asked for it; for a build of a
    kind the plan does not know, its version and package (the same on every
    machine)."""
    return build.request or f"build {build.version_str} {build.package}"


def keep(items: list[pytest.Item], shard: Shard) -> tuple[list[pytest.Item], list[pytest.Item]]:
    """(the items of this shard, the others), each in collection order."""
    kept: list[pytest.Item] = []
    dropped: list[pytest.Item] = []
    seen: dict[tuple[str, ...], int] = {}
    for item in items:
        builds = _builds_of(item)
        if builds is None:
            kept.append(item)
            continue
        unit = shard.plan.unit([key_of(b) for b in builds])
        position = seen.get(unit, 0)
        seen[unit] = position + 1
        (kept if shard.plan.owner(unit, position) == shard.spec.index else dropped).append(item)
    return kept, dropped


def describe(shard: Shard) -> str:
    """One line: which shard, of which plan, with which builds and estimated load."""
    load = shard.plan.load[shard.spec.index - 1] if shard.plan.load else None
    estimate_text = f", about {load.cases:.0f} cases, {load.seconds:.0f}s" if load else ""
    return (f"shard {shard.spec} of plan {shard.plan.identity}: {len(shard.builds)} of "
            f"{len(shard.plan.keys)} builds{estimate_text} (costs {shard.plan.basis})")


def facts(shard: Shard, builds: Sequence[QemuBuild]) -> ShardJSON:
    """results.json's ``shard``: which shard of which plan, and its builds'
    schemas (a merge of the shards rebuilds the whole run's schema history)."""
    out: ShardJSON = {"index": shard.spec.index, "total": shard.spec.total,
                      "plan": shard.plan.identity, "keys": list(shard.plan.keys),
                      "basis": shard.plan.basis, "schemas": snapshots(builds)}
    if shard.plan.load:
        load = shard.plan.load[shard.spec.index - 1]
        out["estimate"] = {"seconds": round(load.seconds, 1), "cases": round(load.cases)}
    return out
