"""The shard plan (qmpcompat.shard): every case in exactly one shard, each
shard's cases on builds it starts, balanced, the same plan from the same inputs,
and a durations file read by build key. No QEMU runs here."""

from __future__ import annotations

import math
import random
from collections import Counter

import pytest

from qmpcompat.resultdoc import ResultsJSON
from qmpcompat.shard.costs import START, estimate, recorded
from qmpcompat.shard.plan import Cost, Plan, Unit, make_plan, parse_shard, units
from qmpcompat.vectors.load import load


def _costs(keys: list[str], seed: int = 0) -> dict[Unit, Cost]:
    """Costs shaped like a real run's: a build's own cases hundreds and dear, the
    cells between two builds a few dozen."""
    rnd = random.Random(seed)
    return {u: (Cost(rnd.uniform(8, 40), rnd.randint(300, 830)) if len(u) == 1
                else Cost(rnd.uniform(4, 7), 18)) for u in units(keys)}


def _deal_cases(plan: Plan, keys: list[str], seed: int = 0) -> dict[int, list[tuple[Unit, int]]]:
    """Each case of a made-up collection (a few to some dozens per unit), by the shard
    the plan gives it."""
    rnd = random.Random(seed)
    out: dict[int, list[tuple[Unit, int]]] = {k: [] for k in range(1, plan.total + 1)}
    for unit in units(keys):
        for position in range(rnd.randint(1, 40)):
            out[plan.owner(unit, position)].append((unit, position))
    return out


@pytest.mark.parametrize("text,index,total", [("1/1", 1, 1), ("2/3", 2, 3), (" 3 / 3 ", 3, 3)])
def test_shard_spec(text: str, index: int, total: int) -> None:
    spec = parse_shard(text)
    assert (spec.index, spec.total) == (index, total)


@pytest.mark.parametrize("text", ["0/3", "4/3", "3", "a/b", "", "1/0", "-1/2"])
def test_bad_shard_spec(text: str) -> None:
    with pytest.raises(ValueError, match=r"K/N|1 to N"):
        parse_shard(text)


@pytest.mark.parametrize("count", [0, 1, 2, 5, 7])
@pytest.mark.parametrize("total", [1, 2, 3, 5])
def test_every_case_once_on_builds_its_shard_starts(count: int, total: int) -> None:
    keys = [f"debian 1:{n}.0+ds-1 x86_64" for n in range(count)]
    plan = make_plan(keys, _costs(keys, count), total, START)
    dealt = _deal_cases(plan, keys, total)
    cases = [c for shard in dealt.values() for c in shard]
    assert len(cases) == len(set(cases))  # once each ...
    assert {u for u, _p in cases} == set(units(keys))  # ... every one
    for shard, mine in dealt.items():
        started = set(plan.builds(shard))
        assert all(set(unit) <= started for unit, _p in mine), shard
    assert set(plan.chunks) == set(units(keys))
    for unit, owners in plan.chunks.items():  # a unit's cases dealt round-robin over its chunks
        got = Counter(plan.owner(unit, position) for position in range(25))
        assert all(n <= math.ceil(25 * owners.count(s) / len(owners)) for s, n in got.items())


def test_same_inputs_same_plan() -> None:
    keys = [f"k{n}" for n in range(6)]
    one, two = (make_plan(keys, _costs(keys), 3, START, "rev") for _ in range(2))
    assert one.identity == two.identity and one.chunks == two.chunks
    assert make_plan(keys, _costs(keys), 4, START, "rev").identity != one.identity
    assert make_plan(keys, _costs(keys), 3, START, "other").identity != one.identity
    again = Plan.from_json(one.to_json())
    assert again.identity == one.identity and again.builds(2) == one.builds(2)


def test_default_run_balanced() -> None:
    """The default run's shape (the real vector set, six builds), estimated per kind of
    case: three shards within 1.5 times the mean's cases and seconds."""
    keys = [f"debian 1:{v}+ds-1 x86_64" for v in ("7.2", "8.2.2", "10.0.2", "10.0.13", "11.1.2",
                                                  "11.1.3")]
    plan = make_plan(keys, estimate(keys, load(None)), 3, START)
    for what in ("cases", "seconds"):
        loads = [getattr(c, what) for c in plan.load]
        assert max(loads) <= 1.5 * sum(loads) / len(loads), (what, loads)


def test_cases_balanced_where_seconds_would_crowd_them() -> None:
    """Builds of many cheap cases and builds of few dear ones: balanced by seconds
    alone, one shard would take both cheap builds' cases."""
    keys = ["cheap1", "cheap2", "dear1", "dear2"]
    costs = {u: Cost(1, 10) for u in units(keys)}
    costs |= {("cheap1",): Cost(2, 1000), ("cheap2",): Cost(2, 1000), ("dear1",): Cost(30, 100),
              ("dear2",): Cost(30, 100)}
    loads = [c.cases for c in make_plan(keys, costs, 3, START).load]
    assert max(loads) <= 1.25 * sum(loads) / 3, loads


def test_a_shard_starts_fewer_builds_than_the_run() -> None:
    keys = [f"k{n:02d}" for n in range(20)]
    plan = make_plan(keys, _costs(keys), 8, START)
    started = [len(plan.builds(k)) for k in range(1, 9)]
    assert max(started) < 16, started  # a pair of builds is in one shard: not every build in each


def test_unplanned_builds_go_one_way_everywhere() -> None:
    """A build no key of the plan names (every shard starts it): its own cases to one
    shard by a digest of its key, its cells with a planned build to that build's shard."""
    plan = make_plan(["a", "b", "c"], _costs(["a", "b", "c"]), 3, START)
    stray = plan.unit(["x"])
    assert plan.owner(stray, 0) == plan.owner(stray, 7) == make_plan(
        ["a", "b", "c"], _costs(["a", "b", "c"]), 3, START).owner(stray, 0)
    assert 1 <= plan.owner(stray, 0) <= 3
    assert plan.unit(["x", "b"]) == ("b", "x") and plan.owner(("b", "x"), 5) == plan.owner(("b",), 0)


def test_durations_by_build_key() -> None:
    """A results file's records count for the units of their builds' keys; kinds of
    cases it has set the cost of cases it lacks."""
    def record(vector: str, qemu: str, seconds: float, flags: list[str]) -> dict[str, object]:
        return {"vector": vector, "command": "migrate", "qemu": qemu, "qemu_version": qemu,
                "binary": "/q", "outcome": "passed", "seconds": seconds, "flags": flags}

    doc = {"environment": {"binaries": [{"binary": "/q", "version": "10.0.13", "version_line": "",
                                         "request": "debian 1:10.0.13 x86_64"},
                                        {"binary": "/r", "version": "11.1.3", "version_line": "",
                                         "request": "debian 1:11.1.3 x86_64"}]},
           "results": [record("M-0001", "10.0.13", 1.5, ["uri"]),
                       record("D-x", "10.0.13", 0.5, ["derived"])],
           "pairs": [{"vector": "XV-0001", "form": "uri/uri", "source": "10.0.13",
                      "destination": "11.1.3", "seconds": 2.0, "outcome": "passed"}]}
    keys = ["debian 1:10.0.13 x86_64", "debian 1:11.1.3 x86_64", "debian 1:12.0 x86_64"]
    known = recorded(ResultsJSON(**doc), keys)  # type: ignore[typeddict-item]
    assert known.units[(keys[0], keys[1])].cases == 1
    assert known.units[(keys[0],)].cases == 2 + 3  # and the build's own three tests
    assert known.kinds["derived"] == 0.5 and known.derived == {keys[0]: 1}
    costs = estimate(keys, load(None), known)
    assert costs[(keys[0], keys[1])] == known.units[(keys[0], keys[1])]
    assert costs[(keys[2],)].cases > 100  # estimated: no record of that build
