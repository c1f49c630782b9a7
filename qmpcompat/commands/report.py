"""``qmpcompat report merge`` and ``qmpcompat report render``: reports from results files
(``report changes`` and ``report defect`` register beside them)."""

from __future__ import annotations

import argparse
from pathlib import Path

from qmpcompat.commands.changes import register_changes
from qmpcompat.commands.defect import register_defect
from qmpcompat.report.lock import owned
from qmpcompat.report.render import write_reports
from qmpcompat.report.results import read_results
from qmpcompat.report.shards import combine
from qmpcompat.report.summary import verdict
from qmpcompat.runconfig import add_cli


def register(subs: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = subs.add_parser("report", help="merge runs, render reports, compare builds, report a "
                        "known defect upstream",
                        description="Merge results files of several runs into one matrix, or "
                        "rebuild every report (results.json, summary.md, index.html, junit.xml) "
                        "from a results file (exit status 1 when the verdict is FAIL); compare "
                        "two builds; print a known defect as a bug report with its reproducer.")
    rsubs = p.add_subparsers(dest="report_command", metavar="ACTION", required=True)
    m = rsubs.add_parser("merge", help="combine results files from several jobs or machines",
                         description="Merge the results files of several runs into one: the "
                         "shards of a sharded run (--qmpcompat-shard K/N) into the whole run's "
                         "(a shard that never reported fails the verdict; two files of one "
                         "shard are refused), separate runs into one matrix.")
    m.add_argument("files", nargs="+", type=Path, metavar="RESULTS.json")
    r = rsubs.add_parser("render", help="rebuild every report from one results file")
    r.add_argument("files", nargs=1, type=Path, metavar="RESULTS.json")
    for sub in (m, r):
        sub.add_argument("-o", "--output", type=Path, default=Path("reports"),
                         help="directory to write into (default: reports/)")
        add_cli(sub, ("fail-on",))
        sub.set_defaults(func=run)
    register_changes(rsubs)
    register_defect(rsubs)


def run(args: argparse.Namespace) -> int:
    docs = [(path, read_results(path)) for path in args.files]  # all validated before writing
    doc = combine(docs) if args.report_command == "merge" else docs[0][1]
    with owned(args.output, f"qmpcompat report {args.report_command}"):
        for path in write_reports(doc, args.output, args.fail_on):
            print(f"wrote {path}")
    v = verdict(doc, args.fail_on)
    print(v.headline + "".join(f"\n  {r}" for r in v.reasons)
          + (f"\n  {v.crashes}" if v.crashes else ""))
    return 0 if v.ok else 1
