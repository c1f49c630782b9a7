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

from collections.abc import Sequence

import pytest

from qmpcompat import runconfig
from qmpcompat.errors import ReportError
from qmpcompat.provision.build import QemuBuild
from qmpcompat.report.history import snapshots
from qmpcompat.resultdoc import ShardJSON
from qmpcompat.shard.plan import ShardSpec
from qmpcompat.shard.run import Shard, plan_shard, shard_spec
from qmpcompat.vectors.load import VectorSet


def spec_of(config: pytest.Config) -> ShardSpec | None:
    """``--qmpcompat-shard``, else ``$QMPCOMPAT_SHARD``; None for a whole run."""
    try:
        return shard_spec(runconfig.text(config, "shard"))
    except ValueError as exc:
        raise pytest.UsageError(f"--qmpcompat-shard: {exc}") from exc


def plan_of(config: pytest.Config, spec: ShardSpec, keys: Sequence[str],
            vectors: VectorSet) -> Shard:
    """Shard ``spec`` in the plan of the whole run, made from the builds' ``keys``."""
    try:
        return plan_shard(spec, keys, vectors, runconfig.text(config, "durations"))
    except ReportError as exc:
        raise pytest.UsageError(f"--qmpcompat-durations: {exc}") from exc


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
