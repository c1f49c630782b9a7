"""qmpcompat's benchmark: every figure side by side, as a ratio to the floor
measured in the same run, each target checked.

Measures on this machine, in one run:
- the floor, per QEMU build: start ``-M none``, finish the QMP handshake, quit;
- one case of a reject vector, of a paused real-guest migration and of a running
  one, per build, as the suite runs them, in rounds with the build's floor (each
  round runs the floor and each case once, so a drift of the machine's speed
  weighs on the floor and the cases alike);
- cross-version matrix cells (the oldest build to the newest: a running guest,
  and a paused one), in rounds with both builds' floors;
- the differ on two whole schemas;
- the whole default run (``pytest suites -n 2``, the main job's command): its
  wall time against its ideal (cases x floor / workers), the peak memory of its
  whole process tree (its PSS, checked, and its RSS summed, which counts every
  shared page once per process) and the most QEMUs alive; beside it the same run with the
  fork server, and with a fresh QEMU per case (``--no-modes`` leaves these out);
  with ``--serial`` also the serial run;
- with ``--hunt``, the hunt on the newest build, persistent against fresh
  (``hunt.py``).

Prints a table and writes reports/benchmark.json; exits 1 when a target is missed.

    python benchmarks/run.py [--rounds N] [--suites PATHS] [--skip-runs] [--no-modes]
                             [--serial] [--hunt] [--hunt-budget T] [--hunt-baseline REF|none]
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from qmpcompat.provision import QemuBuild
from qmpcompat.report.results import write_json
from qmpcompat.schema.sources.live import SchemaCache, introspect
from qmpcompat.selection import select
from qmpcompat.vectors.load import load
from qmpcompat.vectors.paircheck import PairCase, check_pair
from qmpcompat.vectors.run import Runner

sys.path.insert(0, str(Path(__file__).resolve().parent))
from hunt import BASELINE, compare
from measure import REPO, conformance_run, floor_case, interleaved, peak_rss_mib
from schema_diff import one_round

# (figure, vector, target as a ratio to the build's floor)
CASES = (("reject vector", "MI-0002", 1.5),  # neither uri nor channels
         ("paused real-guest migration", "MI-0001", 4.0),  # unix, a paused pc guest
         ("running real-guest migration", "M-0201", 10.0))  # unix, a running pc guest
CELLS = (("XV-0001", "uri/uri"), ("XV-0002", "uri/uri"))  # a running guest; a paused one
CELL_TARGET = 10.0
RUN_TARGET = 2.0  # the whole run's wall time, at most this times its ideal
MEMORY_TARGET_MIB = 1024.0
SPEEDUP_TARGET = 1.7
DIFFER_TARGET = 0.3  # seconds
CELL_ROUNDS = 9


@dataclass
class Row:
    """One figure: what, seconds, its ratio to the floor, and its target."""

    what: str
    seconds: float
    ratio: float | None = None
    target: str = ""
    met: bool | None = None


def per_build(builds: list[QemuBuild], rounds: int, rows: list[Row], data: dict[str, Any]) -> None:
    """The floor of each build and one case of each kind on it, measured in rounds."""
    vectors = {v.id: v for v in load().vectors}
    runner = Runner()
    for build in builds:
        results: dict[str, list[str]] = {kind: [] for kind, _vid, _target in CASES}
        calls: dict[str, Callable[[], object]] = {"floor": floor_case(build)}
        for kind, vid, _target in CASES:
            def once(vid: str = vid, build: QemuBuild = build, out: list[str] = results[kind]) -> None:
                out.append(runner.run(vectors[vid], build).summary())
            calls[kind] = once
        seconds = interleaved(calls, rounds)
        f = {"seconds": seconds["floor"], "peak_rss_mib": peak_rss_mib(build)}
        data["floor"][build.label] = f
        rows.append(Row(f"floor, QEMU {build.label} (peak RSS {f['peak_rss_mib']:.0f} MiB)",
                        f["seconds"], 1.0))
        for kind, vid, target in CASES:
            ratio = seconds[kind] / f["seconds"]
            data["per_vector"].setdefault(build.label, {})[kind] = {
                "vector": vid, "seconds": seconds[kind], "ratio": ratio,
                "observed": sorted(set(results[kind]))}
            rows.append(Row(f"  {kind} {vid}", seconds[kind], ratio, f"<= {target:g}x",
                            ratio <= target))
    runner.close()


def matrix_cells(builds: list[QemuBuild], rounds: int, rows: list[Row], data: dict[str, Any]) -> None:
    """Matrix cells from the oldest build to the newest, as the suite runs them, in
    rounds with both builds' floors (a cell's ratio is to their mean)."""
    pairs = {p.id: p for p in load().pairs}
    runner, schemas = Runner(), SchemaCache()
    old, new = builds[0], builds[-1]
    for vid, form in CELLS:
        case = PairCase(pairs[vid], form, old, new)
        outcomes: list[str] = []

        def once(case: PairCase = case, outcomes: list[str] = outcomes) -> None:
            outcomes.append(check_pair(case, runner, [], schemas).verdict.outcome)

        seconds = interleaved({"old": floor_case(old), "new": floor_case(new), "cell": once},
                              min(rounds, CELL_ROUNDS))
        ratio = seconds["cell"] / statistics.mean((seconds["old"], seconds["new"]))
        data["matrix_cells"][case.id] = {"seconds": seconds["cell"], "ratio": ratio,
                                         "outcomes": sorted(set(outcomes))}
        rows.append(Row(f"matrix cell {case.id} ({pairs[vid].guest.state} guest)", seconds["cell"],
                        ratio, f"<= {CELL_TARGET:g}x", ratio <= CELL_TARGET))
    runner.close()


def differ(builds: list[QemuBuild], rounds: int, rows: list[Row], data: dict[str, Any]) -> None:
    old, new = builds[0], builds[-1]
    old_entries, new_entries = introspect(old), introspect(new)
    seconds = statistics.median(one_round(old_entries, new_entries)[0] for _ in range(rounds))
    data["differ"] = {"old": old.label, "new": new.label, "seconds": seconds}
    rows.append(Row(f"differ, whole schemas {old.label} -> {new.label}", seconds, None,
                    f"< {DIFFER_TARGET:g} s", seconds < DIFFER_TARGET))


def whole_runs(args: argparse.Namespace, mean_floor: float, rows: list[Row],
               data: dict[str, Any]) -> None:
    """The whole default run against its ideal, and the other run modes beside it."""
    paths = args.suites.split(",")
    runs: dict[str, dict[str, Any]] = {"default": conformance_run(paths, 2)}
    if not args.no_modes:
        runs["fork_server"] = conformance_run(paths, 2, ["--qmpcompat-fork-server"])
        runs["fresh"] = conformance_run(paths, 2, ["--qmpcompat-fresh"])
    if args.serial:
        runs["serial"] = conformance_run(paths, 1)
    for name, run in runs.items():
        ideal = run["cases"] * mean_floor / run["workers"]
        run["ideal_seconds"], run["ratio_to_ideal"] = ideal, run["seconds"] / ideal
        default = name == "default"
        rows.append(Row(f"whole run ({name}, -n {run['workers']}): {run['cases']} cases, ideal "
                        f"{ideal:.1f} s, exit {run['exit']}", run["seconds"], None,
                        f"<= {RUN_TARGET:g}x ideal" if default else
                        f"{run['ratio_to_ideal']:.2f}x ideal", run["ratio_to_ideal"] <= RUN_TARGET
                        if default else None))
        rows.append(Row(f"  peak memory {run['peak_pss_mib']:.0f} MiB PSS (RSS summed "
                        f"{run['peak_rss_mib']:.0f} MiB), at most {run['peak_qemus']} QEMUs", 0.0, None,
                        f"<= {MEMORY_TARGET_MIB:g} MiB PSS" if default else "",
                        run["peak_pss_mib"] <= MEMORY_TARGET_MIB if default else None))
    base = runs["default"]["seconds"]
    data["runs"] = runs
    if "fork_server" in runs:
        data["fork_server_speedup"] = base / runs["fork_server"]["seconds"]
        data["persistent_speedup"] = runs["fresh"]["seconds"] / base
    if "serial" in runs:
        speedup = runs["serial"]["seconds"] / base
        data["parallel_speedup"] = speedup
        rows.append(Row(f"parallel speed-up {speedup:.2f}x", 0.0, None, f">= {SPEEDUP_TARGET:g}x",
                        speedup >= SPEEDUP_TARGET))


def hunt(args: argparse.Namespace, label: str, mean_floor: float, rows: list[Row],
         data: dict[str, Any]) -> None:
    baseline = None if args.hunt_baseline == "none" else args.hunt_baseline
    found = compare(label, args.hunt_budget, 0, 1, baseline=baseline)
    data["hunt"] = found
    modes = ["fresh", "persistent"] + (["baseline"] if baseline else [])
    for mode in modes:
        h = found[mode]
        per_case = 60 / h["cases_per_minute"] if h["cases_per_minute"] else 0.0
        rows.append(Row(f"hunt {found['budget']} on {label}, {mode}: {h['cases']} cases "
                        f"({h['cases_per_minute']}/min)", per_case, per_case / mean_floor))


def print_table(rows: list[Row]) -> bool:
    """Print the rows; True when every target was met."""
    width = max(len(r.what) for r in rows)
    print(f"{'what':<{width}}  {'seconds':>9}  {'x floor':>8}  target")
    for r in rows:
        ratio = f"{r.ratio:8.2f}" if r.ratio is not None else " " * 8
        mark = {True: " met", False: " MISSED", None: ""}[r.met]
        print(f"{r.what:<{width}}  {r.seconds:9.4f}  {ratio}  {r.target}{mark}")
    missed = [r.what.strip() for r in rows if r.met is False]
    print(f"\n{len(missed)} target{'s' * (len(missed) != 1)} missed" +
          (": " + "; ".join(missed) if missed else ""))
    return not missed


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--rounds", type=int, default=15, help="repetitions per timing")
    parser.add_argument("--suites", default="suites",
                        help="comma-separated test paths of the whole run (default: suites)")
    parser.add_argument("--skip-runs", action="store_true", help="leave out the whole runs")
    parser.add_argument("--no-modes", action="store_true",
                        help="whole runs: only the default mode (not the fork server, not fresh)")
    parser.add_argument("--serial", action="store_true", help="also the whole run without workers")
    parser.add_argument("--hunt", action="store_true", help="also the hunt, persistent against fresh")
    parser.add_argument("--hunt-budget", default="60s", help="budget of each hunt run (default 60s)")
    parser.add_argument("--hunt-baseline", default=BASELINE, metavar="REF",
                        help=f"git commit whose hunt the hunt is compared with (default {BASELINE}; "
                             "none: leave it out)")
    parser.add_argument("-o", "--output", type=Path, default=REPO / "reports" / "benchmark.json")
    args = parser.parse_args()

    builds = select().builds
    rows: list[Row] = []
    data: dict[str, Any] = {"machine": {"cpus": os.cpu_count(), "load": os.getloadavg()},
                            "floor": {}, "per_vector": {}, "matrix_cells": {}}
    per_build(builds, args.rounds, rows, data)
    mean_floor = statistics.mean(f["seconds"] for f in data["floor"].values())
    steps: list[Callable[[], None]] = [
        lambda: matrix_cells(builds, args.rounds, rows, data),
        lambda: differ(builds, args.rounds, rows, data)]
    if not args.skip_runs:
        steps.append(lambda: whole_runs(args, mean_floor, rows, data))
    if args.hunt:
        steps.append(lambda: hunt(args, builds[-1].label, mean_floor, rows, data))
    for step in steps:
        step()
    data["targets_met"] = print_table(rows)
    write_json(args.output, data)
    print(f"written: {args.output}")
    return 0 if data["targets_met"] else 1


if __name__ == "__main__":
    raise SystemExit(main())
