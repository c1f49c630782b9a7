"""How long normalizing and diffing two whole introspected schemas takes.

Reads query-qmp-schema from the oldest and newest provisioned builds (about
1,000 and 1,200 entries), then times normalizing both over every command and
event and diffing them, several rounds. Budget: 0.3 s per round.

    python benchmarks/schema_diff.py [OLD NEW] [--rounds N]
"""

from __future__ import annotations

import argparse
import statistics
import time

from qmpcompat.schema.differ.diff import diff_models
from qmpcompat.schema.model.normalize import all_roots, normalize
from qmpcompat.schema.model.query import Entry, SchemaIndex
from qmpcompat.schema.sources.resolve import load_input, provisioned_builds

BUDGET = 0.3


def one_round(old: list[Entry], new: list[Entry]) -> tuple[float, int]:
    """Seconds for index + normalize + diff of two entry lists, and the change count."""
    start = time.perf_counter()
    a, b = SchemaIndex(old), SchemaIndex(new)
    roots = sorted(set(all_roots(a)) | set(all_roots(b)))
    changes = diff_models(normalize(a, roots), normalize(b, roots))
    return time.perf_counter() - start, len(changes)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("inputs", nargs="*", help="two inputs (default: oldest and newest build)")
    parser.add_argument("--rounds", type=int, default=7)
    args = parser.parse_args()
    if args.inputs:
        old_spec, new_spec = args.inputs
    else:
        builds = provisioned_builds()
        old_spec, new_spec = builds[0].version_str, builds[-1].version_str
    old, new = load_input(old_spec).entries, load_input(new_spec).entries
    times = []
    for _ in range(args.rounds):
        seconds, count = one_round(old, new)
        times.append(seconds)
    median = statistics.median(times)
    print(f"schema diff {old_spec} ({len(old)} entries) -> {new_spec} ({len(new)} entries):"
          f" {count} changes; normalize+diff median {median:.3f}s, best {min(times):.3f}s"
          f" over {args.rounds} rounds (budget {BUDGET}s: {'ok' if median < BUDGET else 'OVER'})")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
