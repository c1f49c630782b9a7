"""``qmpcompat provision``: get the Debian archive's QEMU builds into the cache."""

from __future__ import annotations

import argparse
import json
import sys
import time

from qmpcompat.commands.selection import selection, selection_parser, suites_of
from qmpcompat.errors import QmpCompatError
from qmpcompat.provision.cachekey import cache_key
from qmpcompat.provision.debian import DEFAULT_SUITES, cache_dir, print_progress
from qmpcompat.provision.source_build import (
    DEFAULT_PROFILE,
    PROFILE_VAR,
    PROFILES,
    build_source,
    named_sources,
    source_profile,
)
from qmpcompat.selection import Problem, candidates, default_targets, named_binaries, source_request
from qmpcompat.shard.run import Shard, plan_shard, shard_spec
from qmpcompat.vectors.load import load


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
    p.add_argument("--shard", metavar="K/N", default=None,
                   help="provision only the builds shard K of N of the run needs (also "
                   "$QMPCOMPAT_SHARD; the plan is the one `pytest --qmpcompat-shard K/N` makes "
                   "with the default vector set)")
    p.add_argument("--durations", metavar="RESULTS.json", default=None,
                   help="the recorded durations the shard plan is balanced by (also "
                   "$QMPCOMPAT_DURATIONS)")
    p.add_argument("--cache-key", action="store_true",
                   help="print the key of the cache this selection fills (the packages chosen "
                   "and the archive indexes' dates; for a CI cache, see docs/sharding.md) and "
                   "download nothing")
    p.set_defaults(func=run)


def _targets(args: argparse.Namespace) -> list[str] | None:
    return [t for t in args.targets.split(",") if t] if args.targets else None


def _shard(args: argparse.Namespace, suites: list[str], sources: list[str]) -> Shard | None:
    """The shard of the run these options plan (--shard, $QMPCOMPAT_SHARD), if any."""
    spec = shard_spec(args.shard)
    if spec is None:
        return None
    keys = candidates(named_binaries(args.qemu), suites, progress=print_progress,
                      strict=args.strict, refresh=args.refresh, sources=sources,
                      targets=_targets(args), profile=args.profile)
    shard = plan_shard(spec, keys, load(None), args.durations)
    print_progress(shard.describe())
    return shard


def run(args: argparse.Namespace) -> int:
    sources = named_sources(args.source)
    suites = suites_of(args)
    suites = suites if suites is not None else [] if sources else list(DEFAULT_SUITES)
    try:
        if args.cache_key:
            profile = source_profile(args.profile) if sources else ""
            print(cache_key(suites, progress=print_progress, strict=args.strict,
                            targets=_targets(args) or default_targets(),
                            sources=[source_request(s, profile) for s in sources]))
            return 0
        shard = _shard(args, suites, sources)
    except (ValueError, QmpCompatError) as exc:
        print(f"qmpcompat provision: {exc}", file=sys.stderr)
        return 2
    start = time.monotonic()
    sel = selection(args, suites, progress=print_progress, strict=args.strict, refresh=args.refresh,
                    targets=_targets(args), want=shard.wants if shard else None)
    for spec in sources:
        try:
            if shard is None or shard.wants(source_request(spec, source_profile(args.profile))):
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
