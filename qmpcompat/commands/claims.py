"""``qmpcompat lint``: every rule a vector file must keep (qmpcompat.vectors.lint),
and every claim held against the schema of every known QEMU release (the
history lint, qmpcompat.claims.history); ``qmpcompat observe``: a run's passes
recorded in ``observed-on``."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from qmpcompat.claims.entries import entry_problems
from qmpcompat.claims.history import history_problems, known_releases
from qmpcompat.claims.observe import observations, record
from qmpcompat.report.results import read_results
from qmpcompat.safety import ALLOW_EXEC_WARNING
from qmpcompat.vectors.lint import lint
from qmpcompat.vectors.load import default_root, load


def register(subs: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    p = subs.add_parser("lint", help="check every vector file, and every claim against the release history",
                        description="Check vector files: schema, unique ids, defined flags, "
                        "version ranges, observed-on and inferred-from, canonical form, safety "
                        "rules, known defects; then hold every expectation against the committed "
                        "schema of every known QEMU release (vectors/schema/).")
    p.add_argument("--vectors", type=Path, default=None, help="vector dir (default: vectors/)")
    p.add_argument("--fix", action="store_true", help="rewrite files into canonical form")
    p.add_argument("--allow-exec", action="store_true",
                   help="accept exec: commands other than the harness's sink commands")
    p.add_argument("--no-history", action="store_true",
                   help="skip the history lint (the file rules only)")
    p.set_defaults(func=run_lint)

    o = subs.add_parser("observe", help="record what a run observed in the vectors' observed-on",
                        description="Add the QEMU version of every case that passed on a claim "
                        "not yet observed on it (inferred or schema) to that expectation's "
                        "observed-on. The results must be of a run of these very vectors.")
    o.add_argument("results", type=Path, help="a results.json of a run of these vectors")
    o.add_argument("--vectors", type=Path, default=None, help="vector dir (default: vectors/)")
    o.add_argument("--dry-run", action="store_true", help="print what would be recorded, write nothing")
    o.set_defaults(func=run_observe)


def run_lint(args: argparse.Namespace) -> int:
    root = (args.vectors or default_root()).resolve()
    if args.allow_exec:
        print(ALLOW_EXEC_WARNING, file=sys.stderr)
    problems = lint(root, fix=args.fix, allow_exec=args.allow_exec)
    loaded = load(root)
    vectors = loaded.vectors
    checked = ""
    if not args.no_history:
        releases = known_releases()
        problems += history_problems(vectors, releases) + entry_problems(loaded, releases)
        if releases:
            checked = (f", held against {len(releases)} QEMU releases "
                       f"({releases[0].label} to {releases[-1].label})")
    for problem in problems:
        print(problem)
    print(f"qmpcompat lint: {len(vectors)} vectors, {len(loaded.pairs)} pair vectors{checked}, "
          f"{len(problems)} problems")
    return 1 if problems else 0


def run_observe(args: argparse.Namespace) -> int:
    vs = load((args.vectors or default_root()).resolve())
    seen = observations(read_results(args.results), vs)
    for obs in seen:
        print(obs)
    if args.dry_run:
        print(f"qmpcompat observe: {len(seen)} observations to record (dry run, nothing written)")
        return 0
    changed = record(vs, seen)
    print(f"qmpcompat observe: {len(seen)} observations recorded in {len(changed)} files")
    return 0
