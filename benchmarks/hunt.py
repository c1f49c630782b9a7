"""The hunt's part of the benchmark: persistent mode side by side with the
fresh-QEMU mode, on the same build, seed and budget, in one run.

Runs ``qmpcompat hunt`` twice per round, fresh then persistent (alternating
which goes first from round to round, so neither always meets the other's
leftovers on a shared machine), and reports cases per minute, QEMU starts,
findings by signature and the recorded crashes each mode found again.

With ``--exec-starts`` each round also runs persistent mode with its QEMUs
started by exec (``hunt --no-fork-server``), the mode's own share of the gain
beside the fork server's.

With ``--baseline REF`` each round also runs the hunt as it was at git commit
REF (default ``da78055``, the main line when the persistent-mode target was
set: a fresh QEMU per case, one command per case, values from a safe list),
from a temporary worktree of this checkout's history, on its own build cache
(``~/.cache/qmpcompat-baseline``: the cache format of then may differ), with
the same build label, seed and budget; its cases per minute are the "today's
hunt" the target is measured against.

    python benchmarks/hunt.py [--budget 60s] [--rounds 1] [--only VERSION] [--no-systematic]
                              [--baseline [REF]] [--exec-starts]
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
from collections.abc import Iterator, Sequence
from contextlib import contextmanager, nullcontext
from pathlib import Path
from typing import Any

from qmpcompat.selection import select

REPO = Path(__file__).resolve().parents[1]
BASELINE = "da78055"  # the main line when the 3x target was set


@contextmanager
def baseline_tree(ref: str) -> Iterator[str]:
    """A temporary git worktree of ``ref``, removed afterwards."""
    tree = tempfile.mkdtemp(prefix="qmpcompat-baseline-")
    made = subprocess.run(["git", "-C", str(REPO), "worktree", "add", "--detach", tree, ref],
                          capture_output=True, text=True)
    if made.returncode:
        raise SystemExit(f"cannot check out the baseline {ref}: {made.stderr.strip()}")
    try:
        yield tree
    finally:
        subprocess.run(["git", "-C", str(REPO), "worktree", "remove", "--force", tree],
                       capture_output=True)


def baseline_once(tree: str, label: str, budget: str, seed: int) -> dict[str, Any]:
    """The hunt of the worktree ``tree`` on ``label``, its package first on the path
    and its builds provisioned first into their own cache (~/.cache/qmpcompat-baseline):
    its cases, seconds, cases per minute and number of findings."""
    env = {**os.environ, "PYTHONPATH": tree,
           "XDG_CACHE_HOME": str(Path.home() / ".cache" / "qmpcompat-baseline")}
    with tempfile.TemporaryDirectory() as out:
        for cmd in (["provision"], ["hunt", "--only", label, "--budget", budget,
                                    "--seed", str(seed), "--out", out]):
            proc = subprocess.run([sys.executable, "-m", "qmpcompat", *cmd], cwd=tree, env=env,
                                  capture_output=True, text=True)
            if proc.returncode not in (0, 1):
                raise SystemExit(f"baseline {' '.join(cmd[:1])} failed: {proc.stderr[-2000:]}")
        data = json.loads((Path(out) / "hunt.json").read_text())
    (row,) = data["builds"]
    if row["results"].get("error", 0) > row["cases"] / 10:
        raise SystemExit(f"the baseline hunt could not run its QEMU ({row['results']}): remove "
                         f"{env['XDG_CACHE_HOME']}/qmpcompat to provision it again")
    return {"mode": "baseline", "cases": row["cases"], "seconds": row["seconds"],
            "cases_per_minute": round(row["cases"] / row["seconds"] * 60),
            "floor_ms": row.get("floor_ms"), "results": row["results"],
            "findings": data["findings"]}


def hunt_once(label: str, budget: str, seed: int, fresh: bool,
              extra: Sequence[str] = (), mode: str = "") -> dict[str, Any]:
    """One ``qmpcompat hunt`` run (``extra``: more of its options; ``mode``: what
    to call it, by default fresh or persistent); its numbers, findings and known
    defects."""
    with tempfile.TemporaryDirectory() as out:
        cmd = [sys.executable, "-m", "qmpcompat", "hunt", "--only", label, "--budget", budget,
               "--seed", str(seed), "--out", out, "--no-backtrace", *extra] + (
                   ["--fresh"] if fresh else [])
        proc = subprocess.run(cmd, cwd=REPO, capture_output=True, text=True)
        if proc.returncode not in (0, 1):
            raise SystemExit(f"hunt failed: {proc.stderr[-2000:]}")
        data = json.loads((Path(out) / "hunt.json").read_text())
    (row,) = data["builds"]
    return {"mode": mode or ("fresh" if fresh else "persistent"), "cases": row["cases"],
            "seconds": row["seconds"], "cases_per_minute": row["cases_per_minute"],
            "qemu_starts": row["qemu_starts"], "forked": row.get("forked", 0),
            "reused": row["reused"],
            "systematic": sum(w.get("systematic", 0) for w in row["workers"]),
            "floor_ms": row["floor_ms"], "results": row["results"],
            "signatures": sorted(r["signature"] for r in data["reports"]),
            "known_found": sorted({k["defect"] for k in data["known_defects"]["found"]}),
            "known_missed": sorted({k["defect"] for k in data["known_defects"]["missed"]})}


def compare(label: str, budget: str, seed: int, rounds: int, extra: Sequence[str] = (),
            baseline: str | None = None, exec_starts: bool = False) -> dict[str, Any]:
    """Both modes, ``rounds`` times, alternating the order; the totals and ratio
    (with ``baseline``, that commit's hunt too, before both modes in each round;
    with ``exec_starts``, persistent mode without the fork server too, after them)."""
    runs = []
    with baseline_tree(baseline) if baseline else nullcontext() as tree:
        for r in range(rounds):
            if tree is not None:
                runs.append(baseline_once(tree, label, budget, seed))
            order = (True, False) if r % 2 == 0 else (False, True)
            runs += [hunt_once(label, budget, seed, fresh, extra) for fresh in order]
            if exec_starts:
                runs.append(hunt_once(label, budget, seed, False, [*extra, "--no-fork-server"],
                                      "persistent-exec"))
    out: dict[str, Any] = {"qemu": label, "budget": budget, "seed": seed, "options": list(extra),
                           "runs": runs}
    for mode in ("fresh", "persistent", "persistent-exec"):
        mine = [r for r in runs if r["mode"] == mode]
        if not mine:
            continue
        out[mode] = {"cases": sum(r["cases"] for r in mine),
                     "cases_per_minute": round(sum(r["cases"] for r in mine)
                                               / sum(r["seconds"] for r in mine) * 60),
                     "signatures": sorted({s for r in mine for s in r["signatures"]}),
                     "known_found": sorted({k for r in mine for k in r["known_found"]})}
    out["speedup"] = round(out["persistent"]["cases_per_minute"]
                           / max(out["fresh"]["cases_per_minute"], 1), 2)
    out["lost_findings"] = sorted(set(out["fresh"]["signatures"])
                                  - set(out["persistent"]["signatures"]))
    if baseline:
        mine = [r for r in runs if r["mode"] == "baseline"]
        out["baseline"] = {"ref": baseline, "cases": sum(r["cases"] for r in mine),
                           "cases_per_minute": round(sum(r["cases"] for r in mine)
                                                     / sum(r["seconds"] for r in mine) * 60),
                           "findings": [r["findings"] for r in mine]}
        out["speedup_vs_baseline"] = round(out["persistent"]["cases_per_minute"]
                                           / max(out["baseline"]["cases_per_minute"], 1), 2)
    return out


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--budget", default="60s")
    parser.add_argument("--rounds", type=int, default=1)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--only", default=None, help="build label (default: the newest)")
    parser.add_argument("--no-systematic", action="store_true",
                        help="both modes without the systematic pass (random draws only)")
    parser.add_argument("--exec-starts", action="store_true",
                        help="also run persistent mode with QEMUs started by exec, not forked")
    parser.add_argument("--baseline", nargs="?", const=BASELINE, default=None, metavar="REF",
                        help=f"also run the hunt of git commit REF (default {BASELINE}, where "
                             "the target was set) in each round")
    args = parser.parse_args()
    label = args.only or select().builds[-1].label
    result = compare(label, args.budget, args.seed, args.rounds,
                     ["--no-systematic"] if args.no_systematic else [], args.baseline,
                     args.exec_starts)
    print(json.dumps(result, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
