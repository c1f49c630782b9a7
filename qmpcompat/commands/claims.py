"""``qmpcompat lint``: every rule a vector file must keep (qmpcompat.vectors.lint),
and every claim held against the schema of every known QEMU release (the
history lint, qmpcompat.claims.history); ``qmpcompat observe``: a run's passes
recorded in ``observed-on``, and how far the inferred claims held for each
release the run saw first, in the inference ledger; ``qmpcompat ledger``: that
ledger entry from any results file."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from qmpcompat.claims import ledger
from qmpcompat.claims.entries import entry_problems
from qmpcompat.claims.history import history_problems, known_releases
from qmpcompat.claims.ledger import first_runs, measure
from qmpcompat.claims.observe import observations, record
from qmpcompat.report.results import read_results
from qmpcompat.runconfig import add_cli
from qmpcompat.safety import ALLOW_EXEC_WARNING
from qmpcompat.vectors.lint import lint
from qmpcompat.vectors.load import LEDGER_FILE, default_root, load


def register(subs: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    p = subs.add_parser("lint", help="check every vector file, and every claim against the release history",
                        description="Check vector files: schema, unique ids, defined flags, "
                        "version ranges, observed-on and inferred-from, canonical form, safety "
                        "rules, known defects; then hold every expectation against the committed "
                        "schema of every known QEMU release (vectors/schema/).")
    add_cli(p, ("vectors", "allow-exec"))
    p.add_argument("--fix", action="store_true", help="rewrite files into canonical form")
    p.add_argument("--no-history", action="store_true",
                   help="skip the history lint (the file rules only)")
    p.set_defaults(func=run_lint)

    o = subs.add_parser("observe", help="record what a run observed in the vectors' observed-on",
                        description="Add the QEMU version of every case that passed on a claim "
                        "not yet observed on it (inferred or schema) to that expectation's "
                        "observed-on. The results must be of a run of these very vectors.")
    o.add_argument("results", type=Path, help="a results.json of a run of these vectors")
    add_cli(o, ("vectors",))
    o.add_argument("--dry-run", action="store_true", help="print what would be recorded, write nothing")
    o.set_defaults(func=run_observe)

    g = subs.add_parser("ledger", help="record how far the inferred claims for a release held",
                        description="Add to vectors/inference-ledger.yaml how far the inferred "
                        "claims for a release held in a run of a build of it (the results file "
                        "may be of an earlier vector set: the entry names it). Without --release: "
                        "every release of the run no claim records an observation of yet. "
                        "qmpcompat observe does this by itself.")
    g.add_argument("results", type=Path, help="a results.json")
    g.add_argument("--release", action="append", default=[], metavar="VERSION",
                   help="the release to measure (repeatable)")
    add_cli(g, ("vectors",))
    g.add_argument("--dry-run", action="store_true", help="print the entries, write nothing")
    g.set_defaults(func=run_ledger)


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
    doc = read_results(args.results)
    seen = observations(doc, vs)
    entries = [measure(doc, release) for release in first_runs(doc, vs)]
    for obs in seen:
        print(obs)
    for entry in entries:
        print(f"first run of {entry.line()}")
    if args.dry_run:
        print(f"qmpcompat observe: {len(seen)} observations to record (dry run, nothing written)")
        return 0
    added = ledger.add(vs.root, entries)
    changed = record(vs, seen)
    print(f"qmpcompat observe: {len(seen)} observations recorded in {len(changed)} files"
          + (f"; {len(added)} releases' first runs in {LEDGER_FILE}" if added else ""))
    return 0


def run_ledger(args: argparse.Namespace) -> int:
    vs = load((args.vectors or default_root()).resolve())
    doc = read_results(args.results)
    ran = {b["version"] for b in doc["environment"]["binaries"]}
    if unknown := [r for r in args.release or [] if r not in ran]:
        print(f"qmpcompat ledger: error: {args.results} has no build of "
              f"{', '.join(unknown)} (it ran {', '.join(sorted(ran)) or 'none'})", file=sys.stderr)
        return 2
    entries = [measure(doc, release) for release in args.release or first_runs(doc, vs)]
    for entry in entries:
        print(entry.line())
        for wrong in entry.wrong:
            print(f"  {wrong.case}: claimed {wrong.claimed}; did: {wrong.did}")
    if not args.dry_run:
        added = ledger.add(vs.root, entries)
        print(f"qmpcompat ledger: {len(added)} entries added to {LEDGER_FILE}"
              + (f" ({len(entries) - len(added)} already there or without inferred claims)"
                 if len(added) < len(entries) else ""))
    return 0
