"""``qmpcompat report changes BASE NEW``: the behaviour changes between two
builds, read from one run's results or from two results files."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from qmpcompat import __version__, datafile
from qmpcompat.ciformats import FORMATS
from qmpcompat.errors import ReportError
from qmpcompat.reaper import write_atomic
from qmpcompat.report.changes import Step, by_label, compare, consumer_changes
from qmpcompat.report.changes_out import render_any
from qmpcompat.report.lock import owned
from qmpcompat.report.results import read_results
from qmpcompat.resultdoc import CaseJSON, ResultsJSON
from qmpcompat.runconfig import add_cli
from qmpcompat.types import LEVELS, Level, label_order, version_prefix

OUTPUTS = {"json": "behaviour-changes.json", "markdown": "behaviour-changes.md",
           "html": "behaviour-changes.html", "sarif": "behaviour-changes.sarif",
           "gitlab": "behaviour-changes.codequality.json"}


def pick(spec: str, default: Path, docs: dict[Path, ResultsJSON]
         ) -> tuple[str, list[CaseJSON], str]:
    """(label, case records, source) of build ``spec``: ``FILE`` (a results file
    of one build), ``FILE:LABEL``, or ``LABEL`` (a QEMU label or version of the
    run in ``default``, or a version prefix such as ``10.0``: the newest of that
    line); ReportError names what is available. ``docs`` keeps each file read,
    by path, so that BASE and NEW from one file read it once."""
    path, label = Path(spec), ""
    if not datafile.given(path):
        head, sep, tail = spec.rpartition(":")
        path, label = (Path(head), tail) if sep and datafile.given(Path(head)) else (default, spec)
    doc = docs[path] = docs[path] if path in docs else read_results(path)
    if doc.get("interrupted") or doc.get("running"):
        raise ReportError(f"{path}: the run {'never finished' if doc.get('running') else 'was interrupted'}"
                          ": the cases it did not record would show as changes; compare complete runs")
    groups = by_label(doc)
    versions = {r["qemu_version"]: r["qemu"] for recs in groups.values() for r in recs}
    if not label:
        if len(groups) != 1:
            raise ReportError(f"{path} holds {len(groups)} builds ({', '.join(groups)}): "
                              f"name one as {path}:LABEL")
        label = next(iter(groups))
    label = label if label in groups else versions.get(label, label)
    if label not in groups:  # a version prefix (10.0): the newest build of that line
        line = [v for v in versions if version_prefix(label, v)]
        label = versions[max(line, key=label_order)] if line else label
    if label not in groups:
        raise ReportError(f"{path}: no build {label!r} in this run; it has {', '.join(groups) or 'none'}")
    return label, groups[label], str(path)


def run(args: argparse.Namespace) -> int:
    docs: dict[Path, ResultsJSON] = {}
    base, base_records, base_src = pick(args.base, args.results, docs)
    new, new_records, new_src = pick(args.new, args.results, docs)
    if (base, base_src) == (new, new_src):
        raise ReportError(f"BASE and NEW are the same build ({base} of {base_src})")
    consumers = consumer_changes(base, docs[Path(base_src)].get("consumers") or [], new,
                                 docs[Path(new_src)].get("consumers") or [])
    changes = [c for c in compare(base, base_records, new, new_records) + consumers
               if Level(c.level).rank >= Level(args.min_level).rank]
    step = Step(base, new, changes, {base: base_src, new: new_src})
    sys.stdout.write(render_any([step], args.format, __version__, new_src))
    if args.output:
        with owned(args.output, "qmpcompat report changes"):
            for fmt, name in OUTPUTS.items():
                write_atomic(args.output / name, render_any([step], fmt, __version__, new_src))
                print(f"wrote {args.output / name}", file=sys.stderr)
    return 1 if any(Level(c.level).rank >= Level(args.fail_on).rank for c in step.changes) else 0


def register_changes(rsubs: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add ``report changes``."""
    c = rsubs.add_parser(
        "changes", help="behaviour changes between two builds, case by case",
        description="Compare what two builds did with every vector and derived case: newly rejected, "
                    "newly accepted, other error class or text, a migration that ends otherwise, a new "
                    "crash or hang, a crash gone; and which consumer profiles (libvirt, Proxmox) no longer "
                    "migrate a guest (CONSUMER_BROKEN, pointing at the profile step). Each change has "
                    "a rule id and a level. BASE and NEW are "
                    "a QEMU label or version of the run in --results, FILE:LABEL, or a results file of one "
                    "build. Exit 0 clean, 1 changes at or above --fail-on, 2 bad usage or input.")
    c.add_argument("base", metavar="BASE")
    c.add_argument("new", metavar="NEW")
    c.add_argument("--results", type=Path, default=Path("reports/results.json"),
                   help="the results file BASE and NEW are looked up in (default: reports/results.json)")
    add_cli(c, ("fail-on",))
    c.add_argument("--min-level", choices=LEVELS, default="info",
                   help="leave out changes below this level from every output (GitHub shows at most "
                        "a few dozen annotations per job: --min-level warning keeps them for what matters)")
    c.add_argument("--format", choices=("text", "markdown", "json", "html", *FORMATS), default="text",
                   help="what to print: text, markdown, json, html, github (workflow annotations), "
                        "gitlab (code quality JSON) or sarif")
    c.add_argument("-o", "--output", type=Path, metavar="DIR",
                   help="also write " + ", ".join(OUTPUTS.values()) + " into DIR")
    c.set_defaults(func=run)
