"""qmpcompat's benchmark: every figure side by side, as a ratio to the floor.

Measures on this machine, in one run:
- the floor, per QEMU version: start ``-M none``, finish the QMP handshake, quit;
- the suite's cost per vector, reject and accept-to-completion separately (an
  accepted vector with a peer migrates a real 64 MiB guest and checks its arrival);
- one cross-version matrix cell (the oldest build to the newest, a running guest
  over a unix socket) and the whole matrix (``suites/test_pairs.py``) of the default set;
- the whole conformance run over the default set, serial and with xdist
  (``-n 2``), with the peak memory of the run and the most QEMUs alive at once;
- the differ on two whole schemas (normalize and diff);
- the whole run in persistent mode against every case on a fresh QEMU;
- the hunt on the newest build, persistent against fresh (``hunt.py``): cases
  per minute and findings on the same seed and budget, and against the hunt as
  it was when the target was set (``--hunt-baseline``, git commit da78055).

Prints a table and writes reports/benchmark.json. Targets: a reject vector at
most 1.5x the floor; the parallel run at least 1.7x faster than the serial one;
peak memory bounded by the QEMUs alive at once, not by the number of vectors.

    python benchmarks/run.py [--rounds N] [--suites PATHS] [--skip-runs] [--skip-hunt]
                             [--hunt-budget T] [--hunt-baseline REF|none]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

from qmpcompat.harness import Qemu
from qmpcompat.provision import QemuBuild
from qmpcompat.report.results import write_json
from qmpcompat.schema.sources.live import SchemaCache, introspect
from qmpcompat.selection import select
from qmpcompat.vectors.load import load
from qmpcompat.vectors.paircheck import PairCase, check_pair
from qmpcompat.vectors.run import Runner

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(Path(__file__).resolve().parent))
from hunt import BASELINE, compare  # noqa: E402
from schema_diff import one_round  # noqa: E402

REJECT, ACCEPT = "MI-0002", "MI-0001"  # neither uri nor channels; a unix migration that completes
CELL = ("XV-0001", "uri/uri")  # a running guest with its devices, over a unix socket
GUEST_ROUNDS = 5  # a real-guest case takes seconds: fewer rounds


def median_seconds(func: Any, rounds: int) -> float:
    times = []
    for _ in range(rounds):
        start = time.perf_counter()
        func()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def floor(build: QemuBuild, rounds: int) -> dict[str, float]:
    def once() -> None:
        with Qemu(build):
            pass

    once()  # warm the page cache
    rss = 0
    with Qemu(build) as q:
        status = Path(f"/proc/{q.child.pid}/status").read_text()  # type: ignore[union-attr]
        rss = int(next(ln.split()[1] for ln in status.splitlines() if ln.startswith("VmHWM")))
    return {"seconds": median_seconds(once, rounds), "peak_rss_mib": rss / 1024}


class Sampler:
    """Samples a process tree every 20 ms: the peak total RSS and the most QEMUs alive."""

    def __init__(self, root: int) -> None:
        self.root, self.peak_rss, self.peak_qemus = root, 0, 0
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self.loop, daemon=True)
        self.thread.start()

    def tree(self) -> list[int]:
        children: dict[int, list[int]] = {}
        for entry in Path("/proc").iterdir():
            if entry.name.isdigit():
                try:
                    ppid = int((entry / "stat").read_text().rsplit(")", 1)[1].split()[1])
                except (OSError, IndexError, ValueError):
                    continue
                children.setdefault(ppid, []).append(int(entry.name))
        out, todo = [], [self.root]
        while todo:
            pid = todo.pop()
            out.append(pid)
            todo += children.get(pid, [])
        return out

    def loop(self) -> None:
        while not self.stop.is_set():
            rss, qemus = 0, 0
            for pid in self.tree():
                try:
                    status = Path(f"/proc/{pid}/status").read_text()
                    cmd = Path(f"/proc/{pid}/cmdline").read_bytes()
                except OSError:
                    continue
                rss += int(next((ln.split()[1] for ln in status.splitlines()
                                 if ln.startswith("VmRSS")), "0"))
                qemus += b"qemu-system" in cmd
            self.peak_rss, self.peak_qemus = max(self.peak_rss, rss), max(self.peak_qemus, qemus)
            time.sleep(0.02)

    def done(self) -> dict[str, float]:
        self.stop.set()
        self.thread.join()
        return {"peak_rss_mib": self.peak_rss / 1024, "peak_qemus": self.peak_qemus}


def matrix_cell(builds: list[QemuBuild], rounds: int) -> dict[str, Any]:
    """One matrix cell, the oldest build to the newest, as the suite runs it."""
    pv = next(p for p in load().pairs if p.id == CELL[0])
    case = PairCase(pv, CELL[1], builds[0], builds[-1])
    runner, schemas = Runner(), SchemaCache()
    outcomes = []

    def once() -> None:
        outcomes.append(check_pair(case, runner, [], schemas).verdict.outcome)

    return {"cell": case.id, "seconds": median_seconds(once, rounds),
            "outcomes": sorted(set(outcomes))}


def conformance_run(paths: list[str], workers: int, extra: tuple[str, ...] | list[str] = (),
                    ) -> dict[str, Any]:
    with tempfile.TemporaryDirectory() as reports:
        cmd = [sys.executable, "-m", "pytest", *paths, "-q", "-p", "no:cacheprovider",
               "--qmpcompat-quiet", "--qmpcompat-reports", reports, *extra]
        if workers > 1:
            cmd += ["-n", str(workers)]
        start = time.perf_counter()
        proc = subprocess.Popen(cmd, cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                                text=True)
        sampler = Sampler(proc.pid)
        out, _ = proc.communicate()
        seconds = time.perf_counter() - start
        mem = sampler.done()
        doc = json.loads((Path(reports) / "results.json").read_text())
        cases = len(doc["results"]) + len(doc.get("pairs", []))
    return {"seconds": seconds, "cases": cases, "exit": proc.returncode, **mem,
            "summary": out.strip().splitlines()[-1] if out.strip() else ""}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--rounds", type=int, default=15, help="repetitions per timing")
    parser.add_argument("--suites", default="suites",
                        help="comma-separated test paths of the whole run (default: suites)")
    parser.add_argument("--skip-runs", action="store_true", help="leave out the whole runs")
    parser.add_argument("--hunt-budget", default="60s",
                        help="budget of each hunt run, fresh and persistent (default 60s)")
    parser.add_argument("--skip-hunt", action="store_true", help="leave out the hunt")
    parser.add_argument("--hunt-baseline", default=BASELINE, metavar="REF",
                        help=f"git commit whose hunt the target is measured against (default "
                             f"{BASELINE}; none: leave it out)")
    parser.add_argument("-o", "--output", type=Path, default=REPO / "reports" / "benchmark.json")
    args = parser.parse_args()

    builds = select().builds
    vectors = {v.id: v for v in load().vectors}
    runner = Runner()
    rows: list[tuple[str, float, float]] = []  # (what, seconds, ratio to floor)
    data: dict[str, Any] = {"machine": {"cpus": os.cpu_count()}, "floor": {}, "per_vector": {}}
    for build in builds:
        f = floor(build, args.rounds)
        data["floor"][build.label] = f
        rows.append((f"floor, QEMU {build.label} (peak RSS {f['peak_rss_mib']:.0f} MiB)",
                     f["seconds"], 1.0))
        for kind, vid, rounds in (("reject", REJECT, args.rounds),
                                  ("accept to completion, real guest", ACCEPT,
                                   min(args.rounds, GUEST_ROUNDS))):
            seconds = median_seconds(lambda vid=vid, build=build: runner.run(vectors[vid], build),
                                     rounds)
            ratio = seconds / f["seconds"]
            data["per_vector"].setdefault(build.label, {})[kind] = {"vector": vid, "seconds": seconds,
                                                                    "ratio": ratio}
            rows.append((f"  {kind} vector {vid}", seconds, ratio))
    mean_floor = statistics.mean(f["seconds"] for f in data["floor"].values())

    cell = matrix_cell(builds, min(args.rounds, GUEST_ROUNDS))
    data["matrix_cell"] = {**cell, "ratio": cell["seconds"] / mean_floor}
    rows.append((f"matrix cell {cell['cell']}", cell["seconds"], cell["seconds"] / mean_floor))

    old = select(suites=["bookworm"]).builds[0]
    new = builds[-1]
    old_entries, new_entries = introspect(old), introspect(new)
    diff_s = statistics.median(one_round(old_entries, new_entries)[0] for _ in range(args.rounds))
    data["differ"] = {"old": old.label, "new": new.label, "seconds": diff_s}
    rows.append((f"differ, whole schemas {old.label} -> {new.label}", diff_s, diff_s / mean_floor))

    if not args.skip_runs:
        matrix = conformance_run(["suites/test_pairs.py"], 2)
        data["matrix"] = matrix
        rows.append((f"whole cross-version matrix, -n 2: {matrix['cases']} cells",
                     matrix["seconds"], matrix["seconds"] / max(matrix["cases"], 1) / mean_floor))
        paths = args.suites.split(",")
        serial = conformance_run(paths, 1)
        parallel = conformance_run(paths, 2)
        fresh = conformance_run(paths, 2, ["--qmpcompat-fresh"])
        exec_d = conformance_run(paths, 2, ["--qmpcompat-no-fork-server"])
        data["runs"] = {"serial": serial, "parallel": parallel, "parallel_fresh": fresh,
                        "parallel_exec": exec_d,
                        "speedup": serial["seconds"] / parallel["seconds"],
                        "persistent_speedup": fresh["seconds"] / parallel["seconds"],
                        "fork_server_speedup": exec_d["seconds"] / parallel["seconds"]}
        for name, run in (("serial", serial), ("parallel -n 2", parallel),
                          ("parallel -n 2, every case on a fresh QEMU", fresh),
                          ("parallel -n 2, persistent QEMUs started by exec", exec_d)):
            rows.append((f"whole run {name}: {run['cases']} cases, peak {run['peak_rss_mib']:.0f} MiB"
                         f" with at most {run['peak_qemus']} QEMUs", run["seconds"],
                         run["seconds"] / run["cases"] / mean_floor))
    if not args.skip_hunt:
        baseline = None if args.hunt_baseline == "none" else args.hunt_baseline
        hunt = compare(new.label, args.hunt_budget, 0, 1, baseline=baseline)
        data["hunt"] = hunt
        if baseline:
            b = hunt["baseline"]
            rows.append((f"hunt {hunt['budget']} on {new.label}, as at {baseline}: {b['cases']} "
                         f"cases ({b['cases_per_minute']}/min)",
                         60 / b["cases_per_minute"] if b["cases_per_minute"] else 0.0,
                         60 / b["cases_per_minute"] / mean_floor if b["cases_per_minute"] else 0))
        for mode in ("fresh", "persistent"):
            h = hunt[mode]
            rows.append((f"hunt {hunt['budget']} on {new.label}, {mode}: {h['cases']} cases "
                         f"({h['cases_per_minute']}/min), {len(h['signatures'])} findings",
                         60 / h["cases_per_minute"] if h["cases_per_minute"] else 0.0,
                         60 / h["cases_per_minute"] / mean_floor if h["cases_per_minute"] else 0))
    write_json(args.output, data)

    width = max(len(r[0]) for r in rows)
    print(f"{'what':<{width}}  {'seconds':>9}  {'x floor':>8}")
    for what, seconds, ratio in rows:
        print(f"{what:<{width}}  {seconds:>9.4f}  {ratio:>8.2f}")
    rejects = [v["reject"]["ratio"] for v in data["per_vector"].values()]
    print(f"\nreject vector, worst ratio to the floor: {max(rejects):.2f} (target <= 1.5)")
    if "runs" in data:
        print(f"parallel speed-up: {data['runs']['speedup']:.2f}x (target >= 1.7)")
        print(f"persistent mode, whole run: {data['runs']['persistent_speedup']:.2f}x faster "
              "than every case on a fresh QEMU")
    if "hunt" in data:
        hunt = data["hunt"]
        print(f"hunt, persistent against fresh: {hunt['speedup']:.2f}x the cases per minute; "
              f"findings lost: {hunt['lost_findings'] or 'none'}")
        if "baseline" in hunt:
            print(f"hunt, persistent against the hunt as at {hunt['baseline']['ref']}: "
                  f"{hunt['speedup_vs_baseline']:.2f}x the cases per minute (target >= 3)")
    print(f"differ: {diff_s:.3f}s (target < 0.3)\nwritten: {args.output}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
