"""``qmpcompat try``: see what binaries do with vectors (``qmpcompat lint`` is
in ``qmpcompat.commands.claims``, beside the history it checks against)."""

from __future__ import annotations

import argparse
import json
import sys

from qmpcompat.commands.selection import (
    CHECK_TIMEOUT,
    selection,
    selection_parser,
    sources_and_destination,
)
from qmpcompat.errors import QmpCompatError, UnsafeInput
from qmpcompat.provision import QemuBuild
from qmpcompat.runconfig import add_cli
from qmpcompat.safety import ALLOW_EXEC_WARNING
from qmpcompat.schema.sources.live import SchemaCache
from qmpcompat.vectors.load import load
from qmpcompat.vectors.profilegate import gate_problems
from qmpcompat.vectors.profilerun import run_profile
from qmpcompat.vectors.profiles import Profile
from qmpcompat.vectors.run import Observation, Runner
from qmpcompat.vectors.safety import check_vector


def register(subs: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    t = subs.add_parser("try", parents=[selection_parser()],
                        help="run vectors (or one argument tree) and print what QEMU did",
                        description="Run vectors by id on binaries and print the observation, "
                        "to write or review a vector's expectation.")
    t.add_argument("ids", nargs="+", help="vector ids, or consumer profile ids (CP-NNNN)")
    t.add_argument("--to", metavar="LABEL",
                   help="consumer profiles: migrate from each selected build to the selected build "
                        "with this label or version (default: each build to itself)")
    t.add_argument("--json", action="store_true")
    add_cli(t, ("vectors", "allow-exec"))
    t.set_defaults(func=run_try)


def run_try(args: argparse.Namespace) -> int:
    """Exit 0 when every case ran (whatever QEMU answered), 1 when QEMU crashed or
    hung or a case could not be set up, 2 for an unknown id or a vector the
    safety gate refuses."""
    vs = load(args.vectors)
    known = {v.id for v in vs.vectors} | {p.id for p in vs.profiles}
    unknown = [i for i in args.ids if i not in known]
    if unknown:
        broken = [str(e) for e in vs.errors if e.vector_id in unknown]
        print(f"qmpcompat try: error: unknown vector id {', '.join(unknown)}"
              + "".join(f"\n  {b}" for b in broken), file=sys.stderr)
        return 2
    if args.allow_exec:
        print(ALLOW_EXEC_WARNING, file=sys.stderr)
    wanted = [v for v in vs.vectors if v.id in set(args.ids)]
    profiles = [p for p in vs.profiles if p.id in set(args.ids)]
    sel = selection(args, start_timeout=CHECK_TIMEOUT)  # each build self-checked
    for problem in sel.problems:
        print(f"qmpcompat try: unusable: {problem}", file=sys.stderr)
    for warning in sel.warnings:
        print(f"qmpcompat try: warning: {warning}", file=sys.stderr)
    try:
        sources, target = sources_and_destination(args, sel.builds)
    except QmpCompatError as exc:
        print(f"qmpcompat try: error: {exc}", file=sys.stderr)
        return 2
    runner = Runner(allow_exec=args.allow_exec)
    status = 1 if sel.problems else 0
    for vec in wanted:
        if problems := check_vector(vec, args.allow_exec):
            print(f"qmpcompat try: error: {UnsafeInput(vec.id, problems)}", file=sys.stderr)
            status = 2
            continue
        for build in sources:
            obs = runner.run(vec, build)
            _print(args, vec.id, build.label, obs)
            if obs.result in ("crash", "hang", "error"):
                status = max(status, 1)
    for profile in profiles:
        status = max(status, _try_profile(profile, sources, target, args))
    return status


def _print(args: argparse.Namespace, what: str, cell: str, obs: Observation) -> None:
    if args.json:
        print(json.dumps({"vector": what, "qemu": cell, **obs.to_json()}))
    else:
        detail = f" ({obs.detail})" if obs.detail and what.startswith("CP-") else ""
        print(f"{what} {cell:<8} {obs.summary()}{detail}")


def _try_profile(profile: Profile, builds: list[QemuBuild], target: QemuBuild | None,
                 args: argparse.Namespace) -> int:
    """Play one consumer profile from each build to itself, or to ``target``
    (``--to``); the exit status as for vectors."""
    if problems := gate_problems(profile, args.allow_exec):
        print(f"qmpcompat try: error: {UnsafeInput(profile.id, problems)}", file=sys.stderr)
        return 2
    status, schemas = 0, SchemaCache()
    for src in builds:
        dst = target or src
        obs = run_profile(profile, src, dst, schemas, allow_exec=args.allow_exec)
        _print(args, profile.id, f"{src.label}->{dst.label}", obs)
        if obs.result in ("crash", "hang", "error"):
            status = 1
    return status
