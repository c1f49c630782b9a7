"""A run's shard as the pytest plugin and ``qmpcompat provision`` make it: which
shard (``K/N``, from the option or ``$QMPCOMPAT_SHARD``), and the plan of the
whole run from its builds' keys, its vector set and the recorded durations
(``$QMPCOMPAT_DURATIONS``, a previous run's results.json) if any. Both make the
same plan from the same inputs, so provisioning fetches what the run uses."""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path

from qmpcompat.provision.debian import requested_version
from qmpcompat.report.results import read_results
from qmpcompat.shard.costs import START, Recorded, estimate, pace, recorded
from qmpcompat.shard.plan import Plan, ShardSpec, make_plan, parse_shard
from qmpcompat.types import JSONObject, json_object
from qmpcompat.vectors.load import VectorSet

SHARD_VAR = "QMPCOMPAT_SHARD"
DURATIONS_VAR = "QMPCOMPAT_DURATIONS"


@dataclass
class Shard:
    """A run's shard: which one, and the plan of the whole run."""

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

    def describe(self) -> str:
        """One line: which shard, of which plan, its builds and estimated load."""
        load = self.plan.load[self.spec.index - 1] if self.plan.load else None
        guess = f", about {load.cases:.0f} cases and {load.seconds:.0f}s" if load else ""
        return (f"shard {self.spec} of plan {self.plan.identity}: {len(self.builds)} of "
                f"{len(self.plan.keys)} builds{guess} (costs {self.plan.basis})")


def shard_spec(given: str | None) -> ShardSpec | None:
    """``given`` (an option's K/N), else ``$QMPCOMPAT_SHARD``; None when neither
    is set; ValueError for a malformed one."""
    text = given or os.environ.get(SHARD_VAR, "").strip()
    return parse_shard(text) if text else None


def durations(given: str | None, keys: Sequence[str]) -> tuple[Recorded | None, str]:
    """What the durations file (``given``, else ``$QMPCOMPAT_DURATIONS``)
    records of the units of ``keys``, and a word on where the costs come from;
    ReportError for a file that is no results file."""
    path = given or os.environ.get(DURATIONS_VAR, "").strip()
    if not path:
        return None, "estimated per kind of case"
    doc = read_results(Path(path))
    return recorded(doc, keys), f"recorded in {Path(path).name} (a run started {doc['started']})"


def plan_shard(spec: ShardSpec, keys: Sequence[str], vectors: VectorSet,
               durations_file: str | None = None) -> Shard:
    """The plan of the whole run (every shard makes the same) and ``spec`` in it."""
    known, basis = durations(durations_file, keys)
    versions = {k: v for k in keys if (v := requested_version(k))}
    costs = estimate(keys, vectors, known, versions)
    start = START * (pace(known, costs, keys, vectors, versions) if known else 1.0)
    plan = make_plan(keys, costs, spec.total, start, vectors.revision(), basis)
    return Shard(spec, plan)
