"""``qmpcompat report defect ID``: a known defect as a report ready for qemu-devel
or the Debian bug tracker, with its standalone reproducer (``qmpcompat.reproduce``)."""

from __future__ import annotations

import argparse
import sys

from qmpcompat.commands.output import write_out
from qmpcompat.commands.selection import selected_builds, selection_parser
from qmpcompat.reproduce.plan import make_plan
from qmpcompat.reproduce.report import TARGETS, Run, pick, report, run
from qmpcompat.reproduce.script import render_script
from qmpcompat.runconfig import add_cli
from qmpcompat.vectors.load import load


def register_defect(rsubs: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    d = rsubs.add_parser(
        "defect", parents=[selection_parser()],
        help="a known defect as a bug report with a standalone reproducer",
        description="Print a known defect of vectors/known-defects.yaml as a report ready for "
                    "qemu-devel or the Debian bug tracker: summary, affected and unaffected "
                    "versions and packages, the steps (QEMU command lines and QMP exchange, made "
                    "by the harness's own code), expected against actual, QEMU's last words, and "
                    "a standalone Python script that reproduces it (it needs nothing of "
                    "qmpcompat; exit 1 when the defect shows, 0 when QEMU does what it documents).")
    d.add_argument("defect", metavar="ID", help="a known defect, e.g. KD-0013")
    d.add_argument("--to", choices=TARGETS, default="qemu-devel",
                   help="the report's header: a qemu-devel mail or a Debian bug (default: %(default)s)")
    d.add_argument("--script", metavar="FILE",
                   help="write only the reproducer script to FILE ('-': stdout)")
    d.add_argument("--run", action="store_true",
                   help="run the script on the first affected and the first unaffected selected "
                        "build (default: the Debian builds) and put what QEMU did in the report")
    add_cli(d, ("vectors",))
    d.set_defaults(func=cmd_defect)


def cmd_defect(args: argparse.Namespace) -> int:
    plan = make_plan(load(args.vectors), args.defect)
    if args.script:
        write_out(args.script, render_script(plan))
        return 0
    runs: list[Run] = []
    if args.run:
        builds = selected_builds(args).builds
        for seen in (plan.affected, plan.unaffected):
            if (found := pick(builds, seen)) is not None:
                print(f"qmpcompat: running the reproducer on QEMU {found[0].label}"
                      + (f" -> {found[1].label}" if found[1] else ""), file=sys.stderr)
                runs.append(run(plan, *found))
    sys.stdout.write(report(plan, args.to, runs))
    return 0
