"""The binary-selection options, declared once for every command that selects
QEMU builds (``--qemu``, ``--suites``, ``--only``), and the selection they make."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

from qmpcompat.errors import QmpCompatError
from qmpcompat.provision.build import QemuBuild
from qmpcompat.provision.debian import Progress
from qmpcompat.runconfig import add_cli, selection_config
from qmpcompat.selection import Selection, Want, named_binaries, select

CHECK_TIMEOUT = 10.0  # seconds a QEMU may take to start or answer while a build is checked


def selection_parser() -> argparse.ArgumentParser:
    """A parent parser with ``--qemu``, ``--suites`` and ``--only``."""
    parser = argparse.ArgumentParser(add_help=False)
    group = parser.add_argument_group("QEMU binaries")
    add_cli(group, ("qemu", "suites"))
    group.add_argument("--only", action="append", default=[], metavar="VERSION",
                       help="of the selected binaries, only those with this label (e.g. 11.1.3; "
                            "repeatable)")
    return parser


def suites_of(args: argparse.Namespace) -> list[str] | None:
    """The ``--suites`` list, or None when it was not given."""
    suites = selection_config(args).suites
    return None if suites is None else list(suites)


def selection(args: argparse.Namespace, suites: Sequence[str] | None = None,
              progress: Progress | None = None, strict: bool = False, refresh: bool = False,
              targets: Sequence[str] | None = None, want: Want | None = None,
              start_timeout: float | None = None, foreign: Sequence[str] | None = None,
              recheck: bool = False) -> Selection:
    """The builds the options select (``suites`` when --suites is absent), narrowed
    by ``--only``; ``strict``, ``refresh``, ``targets``, ``want``, ``start_timeout``,
    ``foreign`` and ``recheck`` as ``select`` takes them."""
    given = suites_of(args)
    to = getattr(args, "to", None)  # a destination --only need not name
    only = [*args.only, to] if args.only and to else args.only or ()
    sel = select(named_binaries(selection_config(args).qemu), given if given is not None else suites,
                 progress=progress, strict=strict, refresh=refresh, targets=targets, want=want,
                 start_timeout=start_timeout, foreign=foreign, only=only, recheck=recheck)
    return sel


def sources_and_destination(args: argparse.Namespace, builds: Sequence[QemuBuild]
                            ) -> tuple[list[QemuBuild], QemuBuild | None]:
    """For a command with ``--to``: the sources (the builds ``--only`` names, every
    build without it) and the destination ``--to`` names, which ``--only`` need
    not name (None without ``--to``); QmpCompatError when no build has that label."""
    sources = [b for b in builds if not args.only or b.label in args.only]
    if not args.to:
        return sources, None
    target = next((b for b in builds if args.to in (b.label, b.version_str)), None)
    if target is None:
        raise QmpCompatError(f"--to {args.to}: no selected build has that label or version "
                             f"({', '.join(b.label for b in builds)})")
    return sources, target


def selected_builds(args: argparse.Namespace) -> Selection:
    """The selection, each build self-checked (``qmpcompat.selfcheck``, within
    ``--timeout`` where the command has one), each unusable binary or suite and
    each warning said on stderr; QmpCompatError when nothing usable is left."""
    sel = selection(args, start_timeout=getattr(args, "timeout", None) or CHECK_TIMEOUT)
    for problem in sel.problems:
        print(f"qmpcompat: unusable: {problem}", file=sys.stderr)
    for warning in sel.warnings:
        print(f"qmpcompat: warning: {warning}", file=sys.stderr)
    if not sel.builds:
        raise QmpCompatError("no usable QEMU binary" + (f" labelled {', '.join(args.only)}"
                                                       if args.only else ""))
    return sel
