"""``qmpcompat query``: libvirt-style queries on one schema."""

from __future__ import annotations

import argparse
import json
import sys
from typing import Any

from qmpcompat.commands.history import cmd_query_history, history_options
from qmpcompat.commands.schema import conditions
from qmpcompat.schema.model.query import SchemaIndex, schema_get
from qmpcompat.schema.sources.resolve import load_input


def cmd_query(args: argparse.Namespace) -> int:
    """Print the entry each query reaches; exit 0 when all reach one, 1 otherwise.
    With --history, every positional argument is a query, asked of every known schema."""
    if args.history:
        args.query = [q for q in (args.qemu, *args.query) if q]
        if not args.query:
            print("qmpcompat query: error: give at least one QUERY", file=sys.stderr)
            return 2
        return cmd_query_history(args)
    if not args.qemu or not args.query:
        print("qmpcompat query: error: give QEMU and at least one QUERY (or --history QUERY...)",
              file=sys.stderr)
        return 2
    schema = load_input(args.qemu, conditions=conditions(args))
    index = SchemaIndex(schema.entries, schema.spec)
    status = 0
    for query in args.query:
        entry = schema_get(index, query)
        if entry is None:
            status = 1
        if args.quiet:
            continue
        shown = "false" if entry is None else "true"
        if entry is not None and args.verbose:
            shown += " " + json.dumps(entry, sort_keys=True)
        print(f"{query}: {shown}")
    return status


class _Intermixed(argparse.ArgumentParser):
    """A parser whose positionals may come before and after options
    (``query QEMU --define X QUERY``), though the first is optional."""

    _inside = False

    def parse_known_args(self, args: Any = None, namespace: Any = None) -> Any:
        if self._inside:
            return super().parse_known_args(args, namespace)
        self._inside = True
        try:
            return self.parse_known_intermixed_args(args, namespace)
        finally:
            self._inside = False


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add ``query``."""
    query = subparsers.add_parser(
        "query", parents=[history_options()], help="test libvirt-style schema queries on a QEMU",
        description="Evaluate libvirt-style schema queries (e.g. migrate/arg-type/channels)."
                    " Exit 0 when every query holds, 1 when one does not, 2 on bad input."
                    " With --history, print the releases where each query is false and where"
                    " it is true; exit 0 when every query holds in the newest.")
    query.__class__ = _Intermixed
    query.add_argument("qemu", metavar="QEMU", nargs="?",
                       help="provisioned version, binary, snapshot, QAPI source, REPO@REF,"
                            " debian:VERSION or libvirt:VERSION[:ARCH] (with --history: a query)")
    query.add_argument("query", metavar="QUERY", nargs="*")
    query.add_argument("--history", action="store_true",
                       help="ask every known schema (committed, --provisioned, --input)")
    query.add_argument("--input", action="append", metavar="INPUT",
                       help="with --history: add this schema input (repeatable)")
    query.add_argument("-v", "--verbose", action="store_true", help="print the entry reached")
    query.add_argument("-q", "--quiet", action="store_true", help="print nothing")
    query.set_defaults(func=cmd_query)
