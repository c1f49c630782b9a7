"""``qmpcompat lint`` and ``qmpcompat try``: check vector files; see what a
binary does with one argument tree."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from qmpcompat.provision.select import named_binaries, select
from qmpcompat.vectors.lint import lint
from qmpcompat.vectors.load import default_root, load
from qmpcompat.vectors.run import Runner


def register(subs: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    p = subs.add_parser("lint", help="check every vector file",
                        description="Check vector files: schema, unique ids, defined flags, "
                        "version ranges, canonical form, safety rules, known defects.")
    p.add_argument("--vectors", type=Path, default=None, help="vector dir (default: vectors/)")
    p.add_argument("--fix", action="store_true", help="rewrite files into canonical form")
    p.add_argument("--allow-exec", action="store_true",
                   help="accept exec: commands other than the harness's sink commands")
    p.set_defaults(func=run_lint)

    t = subs.add_parser("try", help="run vectors (or one argument tree) and print what QEMU did",
                        description="Run vectors by id on binaries and print the observation, "
                        "to write or review a vector's expectation.")
    t.add_argument("ids", nargs="+", help="vector ids")
    t.add_argument("--qemu", action="append", default=[], metavar="PATH")
    t.add_argument("--suites", default=None, help="Debian suites (default: the default set)")
    t.add_argument("--vectors", type=Path, default=None)
    t.add_argument("--json", action="store_true")
    t.set_defaults(func=run_try)


def run_lint(args: argparse.Namespace) -> int:
    root = (args.vectors or default_root()).resolve()
    problems = lint(root, fix=args.fix, allow_exec=args.allow_exec)
    for problem in problems:
        print(problem)
    count = len(load(root).vectors)
    print(f"qmpcompat lint: {count} vectors, {len(problems)} problems")
    return 1 if problems else 0


def run_try(args: argparse.Namespace) -> int:
    vs = load(args.vectors)
    wanted = [v for v in vs.vectors if v.id in set(args.ids)]
    suites = None if args.suites is None else args.suites.split(",")
    sel = select(named_binaries(args.qemu), suites)
    runner = Runner()
    for vec in wanted:
        for build in sel.builds:
            obs = runner.run(vec, build)
            if args.json:
                print(json.dumps({"vector": vec.id, "qemu": build.label, **obs.to_json()}))
            else:
                print(f"{vec.id} {build.label:<8} {obs.summary()}")
    return 0
