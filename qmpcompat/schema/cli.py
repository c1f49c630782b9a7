"""The ``query`` subcommand, and the registration of all schema subcommands."""

from __future__ import annotations

import argparse
import json

from qmpcompat.schema.cli_diff import conditions, conditions_parser, register_diff
from qmpcompat.schema.inputs import load_input
from qmpcompat.schema.query import SchemaIndex, schema_get


def cmd_query(args: argparse.Namespace) -> int:
    """Print the entry each query reaches; exit 0 when all reach one, 1 otherwise."""
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


def register(subparsers: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    """Add the schema subcommands to the ``qmpcompat`` command."""
    query = subparsers.add_parser(
        "query", parents=[conditions_parser()], help="test libvirt-style schema queries on a QEMU",
        description="Evaluate libvirt-style schema queries (e.g. migrate/arg-type/channels)."
                    " Exit 0 when every query holds, 1 when one does not, 2 on bad input.")
    query.add_argument("qemu", metavar="QEMU",
                       help="provisioned version, binary, snapshot, QAPI source, REPO@REF or"
                            " debian:VERSION")
    query.add_argument("query", metavar="QUERY", nargs="+")
    query.add_argument("-v", "--verbose", action="store_true", help="print the entry reached")
    query.add_argument("-q", "--quiet", action="store_true", help="print nothing")
    query.set_defaults(func=cmd_query)
    register_diff(subparsers)
