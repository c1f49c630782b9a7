"""``qmpcompat hunt`` (explore schema-valid trees and transcripts for a time
budget and write one candidate vector and bug report per crash signature) and
``qmpcompat derive`` (list or check the cases derived from a binary's schema)."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from qmpcompat.commands.selection import selected_builds, selection_parser
from qmpcompat.derive.run import DEFAULT_COMMANDS, derive_for, run_case
from qmpcompat.runconfig import add_cli
from qmpcompat.schema.sources.live import SchemaCache
from qmpcompat.types import JSONObject, Outcome
from qmpcompat.vectors.run import Runner


def register(subs: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    h = subs.add_parser("hunt", parents=[selection_parser()],
                        help="explore valid argument trees for crashes and hangs",
                        description="Run Hypothesis-generated, schema-valid argument trees of "
                        "migrate and migrate-incoming on fresh QEMUs for a time budget per "
                        "binary; write each finding (shrunk, reproduced) as a candidate vector.")
    h.add_argument("--budget", default="5m", help="time per binary: 300, 20s, 5m, 1h (default 5m)")
    h.add_argument("--max-cases", type=int, default=None, metavar="N",
                   help="also stop a binary's hunt once N cases have run, shared out among "
                        "the workers (whichever of this and --budget comes first; the same "
                        "seed and N run the same cases on a busy machine and a quiet one)")
    h.add_argument("--seed", type=int, default=0, help="seed of the run (default 0)")
    h.add_argument("--out", type=Path, default=Path("reports/hunt"),
                   help="where candidate vectors go (default reports/hunt/)")
    h.add_argument("--workers", type=int, default=2, help="worker processes (default 2)")
    h.add_argument("--command", action="append", default=[], dest="commands",
                   help="command to explore (repeatable; default migrate and migrate-incoming)")
    add_cli(h, ("timeout",))
    h.add_argument("--floor-every", type=int, default=20, metavar="N",
                   help="time one bare QEMU start after every N cases, for the floor the hunt "
                        "is measured against (0: never; default 20)")
    add_cli(h, ("fresh",))
    h.add_argument("--spares", type=int, default=1, metavar="N",
                   help="persistent mode: QEMUs each worker starts ahead (default 1)")
    h.add_argument("--no-fork-server", action="store_true",
                   help="persistent mode: start each QEMU by exec, not by a fork of a QEMU "
                        "process already loaded (see docs/hunt.md#speed)")
    h.add_argument("--state-every", type=int, default=None, metavar="N",
                   help="every Nth round of batches draws transcripts from the state model "
                        "(0: never; default: the hunt's own, see docs/hunt.md)")
    h.add_argument("--no-systematic", action="store_true",
                   help="skip the systematic pass (every edge value at every place, and short "
                        "state sequences) that comes before the random draws")
    h.add_argument("--fail-on-known", action="store_true",
                   help="exit 1 on any finding (default: only on one that is no recorded "
                        "known defect)")
    h.add_argument("--no-backtrace", action="store_true",
                   help="do not run a crash under gdb for the bug report")
    h.add_argument("--replay", type=Path, metavar="FILE",
                   help="run one transcript (a JSON list of {execute, arguments} steps, e.g. "
                        "a finding's 'steps') alone on a fresh QEMU of each selected build")
    h.set_defaults(func=_hunt)

    d = subs.add_parser("derive", parents=[selection_parser()],
                        help="list or check the cases derived from a binary's schema",
                        description="Derive malformed argument trees with their predicted "
                        "errors from each binary's query-qmp-schema; --check runs them.")
    d.add_argument("--command", action="append", default=[], dest="commands",
                   help="command to derive for (repeatable; default migrate and migrate-incoming)")
    d.add_argument("--check", action="store_true", help="run every case and compare")
    d.add_argument("--json", action="store_true", help="one JSON object per case")
    d.set_defaults(func=run_derive)


def run_derive(args: argparse.Namespace) -> int:
    schemas, runner, failed = SchemaCache(), Runner(), 0
    for build in selected_builds(args).builds:
        refused: list[str] = []
        cases = derive_for(schemas.entries(build), args.commands or DEFAULT_COMMANDS, refused)
        for why in refused:
            print(f"qmpcompat derive: {build.label}: no cases where the safety gate refuses "
                  f"the valid tree: {why}", file=sys.stderr)
        for case in cases:
            line: JSONObject = {"id": case.id, "qemu": build.label, "arguments": case.arguments,
                                    "expected": str(case.prediction)}
            if args.check:
                result = run_case(case, build, runner)
                line["outcome"] = result.verdict.outcome
                line["observed"] = (result.observation.summary() if result.observation
                                    else result.verdict.message)
                failed += result.verdict.outcome == Outcome.FAILED
            if args.json:
                print(json.dumps(line))
            else:
                mark = f"{line['outcome']:<7} " if args.check else ""
                print(f"{mark}{build.label:<8} {case.id}  -> {line['expected']}"
                      + (f"\n          observed {line['observed']}"
                         if line.get("outcome") == "failed" else ""))
    return 1 if failed else 0


def _hunt(args: argparse.Namespace) -> int:
    """The hunt as the options say; exit 1 on a finding that is no recorded known
    defect (``--fail-on-known``: on any), or on a replayed transcript that fails."""
    # Imported here for start-up: hypothesis costs about 0.45 s of the 0.8 s of
    # imports that every qmpcompat command would otherwise pay.
    import qmpcompat.hunt.run as hunting

    def say(text: str) -> None:
        print(f"qmpcompat hunt: {text}", flush=True)

    if args.replay is not None:
        steps = hunting.read_transcript(args.replay)  # checked before any build is selected
        return 1 if hunting.replay(steps, selected_builds(args).builds, args.timeout,
                                   not args.no_backtrace, print) else 0
    settings = hunting.HuntSettings(
        budget=hunting.parse_budget(args.budget), out=args.out, max_cases=args.max_cases,
        seed=args.seed, workers=args.workers,
        commands=tuple(args.commands) or tuple(DEFAULT_COMMANDS), timeout=args.timeout,
        floor_every=args.floor_every, fresh=args.fresh, spares=args.spares,
        fork=not args.no_fork_server,
        state_every=hunting.STATE_EVERY if args.state_every is None else args.state_every,
        systematic=not args.no_systematic, backtraces=not args.no_backtrace)
    result = hunting.hunt(settings, selected_builds(args).builds, say)
    return 1 if result.new or (args.fail_on_known and result.reports) else 0
