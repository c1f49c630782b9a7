"""``qmpcompat history``, and ``query --history``.

Both work on every schema known: the committed recorded releases and build
baselines (offline), plus the live provisioned builds (``--provisioned``) and
any input named (a binary, ``libvirt:VERSION``, ``debian:VERSION``, ...).
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Callable, Sequence
from itertools import groupby
from pathlib import Path

from qmpcompat.claims.ledger import by_release, load_ledger
from qmpcompat.commands.schema import (
    INPUT_HELP,
    InputLoader,
    add_roots_option,
    conditions,
    conditions_parser,
)
from qmpcompat.errors import SchemaError
from qmpcompat.schema.differ.deprecations import inferred_events
from qmpcompat.schema.differ.timeline import Point, Timeline, build, order, point, unrecorded
from qmpcompat.schema.differ.timeline_out import html_page, markdown, text, write_files
from qmpcompat.schema.model.normalize import DEFAULT_ROOTS
from qmpcompat.schema.model.query import SchemaIndex, schema_get
from qmpcompat.schema.sources.debsrc import DOCS, debian_docs_dir
from qmpcompat.schema.sources.live import from_build
from qmpcompat.schema.sources.qapi_convert import Conditions
from qmpcompat.schema.sources.releases import known_schemas
from qmpcompat.schema.sources.resolve import provisioned_builds
from qmpcompat.vectors.load import default_root


def collect(inputs: Sequence[str], cond: Conditions, committed: bool = True,
            provisioned: bool = False) -> list[Point]:
    """The points of a history, in version order: the committed schemas, the
    provisioned builds, then the named inputs (a later one replaces an earlier
    one of the same version)."""
    points = [point(k.schema) for k in known_schemas()] if committed else []
    if provisioned:
        points += [point(from_build(b)) for b in provisioned_builds()]
    loader = InputLoader(cond)
    points += [point(loader.load(spec)) for spec in inputs]
    return order(points)


def query_history(points: Sequence[Point], query: str) -> tuple[list[str], bool]:
    """The lines ``query --history`` prints for one query, and whether it holds
    in the newest schema."""
    results = [(p, schema_get(SchemaIndex(p.schema.entries, p.schema.spec), query) is not None)
               for p in points]
    lines = [query]
    for held, run in groupby(results, key=lambda r: r[1]):
        versions = [p.version for p, _ in run]
        span = versions[0] if len(versions) == 1 else f"{versions[0]} .. {versions[-1]}"
        lines.append(f"  {'true ' if held else 'false'}: {span} ({len(versions)} schema"
                     f"{'s' if len(versions) > 1 else ''}: {', '.join(versions)})")
    return lines, bool(results) and results[-1][1]


def cmd_query_history(args: argparse.Namespace) -> int:
    """``query --history``: exit 0 when every query holds in the newest schema."""
    points = collect(args.input or (), conditions(args), not args.no_committed, args.provisioned)
    status = 0
    for query in args.query:
        lines, newest = query_history(points, query)
        status = status if newest else 1
        if not args.quiet:
            print("\n".join(lines))
    missing = unrecorded(points)
    if missing and not args.quiet:
        print(f"no schema known of: {', '.join(missing)}")
    return status


def docs_dir(spec: str) -> tuple[Path, str]:
    """The directory of QEMU's deprecation documents ``spec`` names (``debian:VERSION``,
    a QEMU tree, or the directory itself), and how to name it."""
    if spec.startswith("debian:"):
        docs, version = debian_docs_dir(spec.removeprefix("debian:"))
        return docs, f"Debian qemu {version}"
    path = Path(spec)
    about = path / "docs" / "about"
    found = about if about.is_dir() else path
    if not any((found / name).is_file() for name in DOCS):
        raise SchemaError("neither deprecated.rst nor removed-features.rst here (give a QEMU"
                          " tree, its docs/about/ or debian:VERSION)", spec)
    return found, spec


def cmd_history(args: argparse.Namespace) -> int:
    """Print the timeline; write its JSON, Markdown and HTML files."""
    points = collect(args.inputs, conditions(args), not args.no_committed, args.provisioned)
    timeline = build(points, args.type or DEFAULT_ROOTS)
    timeline.inference = by_release(load_ledger(default_root()))
    for spec in args.docs or ():
        docs, source = docs_dir(spec)
        timeline.notes += inferred_events(docs, timeline, source)
    renderers: dict[str, Callable[[Timeline], str]] = {
        "text": text, "markdown": markdown, "html": html_page,
        "json": lambda t: json.dumps(t.to_json(), indent=1) + "\n"}
    sys.stdout.write(renderers[args.format](timeline))
    if not args.no_files:
        for path in write_files(timeline, Path(args.output)):
            print(f"wrote {path}", file=sys.stderr)
    return 0


def history_options() -> argparse.ArgumentParser:
    """Options shared by ``history`` and ``query --history``."""
    common = argparse.ArgumentParser(add_help=False, parents=[conditions_parser()])
    common.add_argument("--no-committed", action="store_true",
                        help="leave out the committed schemas of vectors/schema/")
    common.add_argument("--provisioned", action="store_true",
                        help="add the provisioned builds' live schemas")
    return common


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add ``history``."""
    hist = subparsers.add_parser(
        "history", parents=[history_options()],
        help="when each part of the migration interface appeared, became optional, was"
             " deprecated, was removed",
        description="The timeline of everything reachable from the roots over every known"
                    " schema (the committed recorded releases and build baselines, plus the"
                    " inputs named), in version order. Exit 0, or 2 on bad input.")
    hist.add_argument("inputs", metavar="INPUT", nargs="*", help=INPUT_HELP)
    add_roots_option(hist)
    hist.add_argument("--docs", action="append", metavar="SOURCE",
                      help="add what QEMU's deprecated.rst and removed-features.rst say, marked"
                           " inferred (debian:VERSION, a QEMU tree or its docs/about/)")
    hist.add_argument("--format", choices=("text", "markdown", "json", "html"), default="text",
                      help="what to print (default: text)")
    hist.add_argument("--output", metavar="DIR", default="reports",
                      help="where schema-history.json, .md and .html go (default: reports/)")
    hist.add_argument("--no-files", action="store_true", help="only print")
    hist.set_defaults(func=cmd_history)
