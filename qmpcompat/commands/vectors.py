"""``qmpcompat try``: see what binaries do with vectors (``qmpcompat lint`` is
in ``qmpcompat.commands.claims``, beside the history it checks against)."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from qmpcompat.commands.selection import CHECK_TIMEOUT, selection, selection_parser
from qmpcompat.errors import UnsafeInput
from qmpcompat.safety import ALLOW_EXEC_WARNING
from qmpcompat.vectors.load import load
from qmpcompat.vectors.run import Runner
from qmpcompat.vectors.safety import check_vector


def register(subs: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    t = subs.add_parser("try", parents=[selection_parser()],
                        help="run vectors (or one argument tree) and print what QEMU did",
                        description="Run vectors by id on binaries and print the observation, "
                        "to write or review a vector's expectation.")
    t.add_argument("ids", nargs="+", help="vector ids")
    t.add_argument("--vectors", type=Path, default=None)
    t.add_argument("--json", action="store_true")
    t.add_argument("--allow-exec", action="store_true",
                   help="let vectors run exec: commands other than the harness's sink commands")
    t.set_defaults(func=run_try)


def run_try(args: argparse.Namespace) -> int:
    """Exit 0 when every case ran (whatever QEMU answered), 1 when QEMU crashed or
    hung or a case could not be set up, 2 for an unknown id or a vector the
    safety gate refuses."""
    vs = load(args.vectors)
    known = {v.id for v in vs.vectors}
    unknown = [i for i in args.ids if i not in known]
    if unknown:
        broken = [str(e) for e in vs.errors if e.vector_id in unknown]
        print(f"qmpcompat try: error: unknown vector id {', '.join(unknown)}"
              + "".join(f"\n  {b}" for b in broken), file=sys.stderr)
        return 2
    if args.allow_exec:
        print(ALLOW_EXEC_WARNING, file=sys.stderr)
    wanted = [v for v in vs.vectors if v.id in set(args.ids)]
    sel = selection(args, start_timeout=CHECK_TIMEOUT)  # each build self-checked
    for problem in sel.problems:
        print(f"qmpcompat try: unusable: {problem}", file=sys.stderr)
    for warning in sel.warnings:
        print(f"qmpcompat try: warning: {warning}", file=sys.stderr)
    runner = Runner(allow_exec=args.allow_exec)
    status = 1 if sel.problems else 0
    for vec in wanted:
        if problems := check_vector(vec, args.allow_exec):
            print(f"qmpcompat try: error: {UnsafeInput(vec.id, problems)}", file=sys.stderr)
            status = 2
            continue
        for build in sel.builds:
            obs = runner.run(vec, build)
            if args.json:
                print(json.dumps({"vector": vec.id, "qemu": build.label, **obs.to_json()}))
            else:
                print(f"{vec.id} {build.label:<8} {obs.summary()}")
            if obs.result in ("crash", "hang", "error"):
                status = max(status, 1)
    return status
