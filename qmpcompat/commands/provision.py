"""``qmpcompat provision``: get the Debian archive's QEMU builds into the cache."""

from __future__ import annotations

import argparse
import json
import time

from qmpcompat.commands.selection import selection, selection_parser, suites_of
from qmpcompat.errors import QmpCompatError
from qmpcompat.provision.debian import DEFAULT_SUITES, cache_dir, print_progress
from qmpcompat.provision.source_build import (
    DEFAULT_PROFILE,
    PROFILE_VAR,
    PROFILES,
    build_source,
    named_sources,
    source_profile,
)
from qmpcompat.selection import Problem


def register(subs: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = subs.add_parser("provision", parents=[selection_parser()],
                        help="download and unpack the Debian QEMU builds (no root)",
                        description="Fetch qemu-system-x86 with its whole dependency closure for "
                        "each Debian suite through a private apt, unpack it into the cache and "
                        "check that it runs. Cached builds are re-used. Binaries named with "
                        "--qemu are checked as well (the default suites are still provisioned "
                        "unless --suites or --source is given).")
    p.add_argument("--refresh", action="store_true",
                   help="re-read the archive's package lists even if the cached ones are fresh")
    p.add_argument("--strict", action="store_true",
                   help="refuse suites whose archive index is past its Valid-Until (a stale "
                   "mirror; by default such an index is used with a warning)")
    p.add_argument("--source", action="append", default=[], metavar="SPEC",
                   help="build QEMU from source: debian:VERSION (a qemu source package the "
                   "archive serves) or the path of a QEMU source tree (repeatable; also "
                   "$QMPCOMPAT_SOURCE, comma-separated). Only these are provisioned unless "
                   "--suites is given too.")
    p.add_argument("--profile", default=None, choices=sorted(PROFILES),
                   help=f"configuration profile of --source builds (default: ${PROFILE_VAR}, "
                   f"else {DEFAULT_PROFILE})")
    p.add_argument("--target", default="x86_64",
                   help="QEMU target of --source builds (default: %(default)s)")
    p.add_argument("--targets", default=None, metavar="T[,T...]",
                   help="targets of the Debian builds: x86_64 (default; also "
                   "$QMPCOMPAT_TARGETS), aarch64 (qemu-system-aarch64 from qemu-system-arm)")
    p.add_argument("--json", action="store_true", help="print the builds as JSON")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    sources = named_sources(args.source)
    suites = suites_of(args)
    suites = suites if suites is not None else [] if sources else list(DEFAULT_SUITES)
    start = time.monotonic()
    sel = selection(args, suites, progress=print_progress, strict=args.strict, refresh=args.refresh,
                    targets=[t for t in args.targets.split(",") if t] if args.targets else None)
    for spec in sources:
        try:
            sel.builds.append(build_source(spec, source_profile(args.profile), args.target,
                                           print_progress))
        except QmpCompatError as exc:
            sel.problems.append(Problem(f"source:{spec}", exc))
    if args.json:
        print(json.dumps([b.to_json() for b in sel.builds], indent=1))
    else:
        for build in sel.builds:
            print(f"{build.label:<10} {build.describe()}")
        for index in sel.indexes:
            if not index.error:
                print(f"index {index.suite}: {index.date or '?'} (valid until "
                      f"{index.valid_until or '?'}){' STALE' if index.stale else ''}")
        print(f"cache: {cache_dir()} ({time.monotonic() - start:.1f}s)")
    for problem in sel.problems:
        print(f"error: {problem}")
    return 2 if sel.problems else 0
