"""``qmpcompat snapshot`` and ``qmpcompat diff``: schema snapshots and the differ."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from qmpcompat.ciformats import FORMATS
from qmpcompat.commands.output import write_out
from qmpcompat.provision import QemuBuild
from qmpcompat.runconfig import add_cli
from qmpcompat.schema.differ.compare import history, load
from qmpcompat.schema.differ.ignore import apply_ignore, load_ignore
from qmpcompat.schema.differ.locate import Locator
from qmpcompat.schema.differ.report import DiffReport, render_ci_report, text, write_files
from qmpcompat.schema.differ.since import since_audits
from qmpcompat.schema.model.normalize import DEFAULT_ROOTS, all_roots
from qmpcompat.schema.model.query import SchemaIndex
from qmpcompat.schema.sources.conditions import attach, note_without_source
from qmpcompat.schema.sources.input import SchemaInput
from qmpcompat.schema.sources.libvirt import catalogue, recorded_schema
from qmpcompat.schema.sources.live import from_build
from qmpcompat.schema.sources.patch import check_next, derive
from qmpcompat.schema.sources.qapi_convert import Conditions
from qmpcompat.schema.sources.qapi_source import git_reader
from qmpcompat.schema.sources.releases import known_schemas, patch_releases, source_releases
from qmpcompat.schema.sources.resolve import load_input, provisioned_builds
from qmpcompat.schema.sources.snapshot import (
    BASELINE_DIR,
    RELEASE_DIR,
    SLICE_ROOTS,
    baseline_path,
    check_canonical,
    dumps,
    snapshot,
)
from qmpcompat.types import Level, json_object

INPUT_HELP = ("provisioned version (7.2, 11.1, 10.0.13), QEMU binary, snapshot JSON, QAPI source"
              " dir or file, REPO@REF, debian:VERSION, or libvirt:VERSION[:ARCH]")


def add_roots_option(parser: argparse.ArgumentParser) -> None:
    """``--type ROOT``: the roots a timeline or diff follows (repeatable)."""
    parser.add_argument("--type", action="append", metavar="ROOT",
                        help="root command, event, type or query path (repeatable; default:"
                             " MigrationChannel, migrate, migrate-incoming)")


def conditions(args: argparse.Namespace) -> Conditions:
    """The --define / --undefine adjustments of QAPI source conditionals."""
    return Conditions(frozenset(args.define or ()), frozenset(args.undefine or ()))


def conditions_parser() -> argparse.ArgumentParser:
    """Options shared by the subcommands that read QAPI source."""
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("--define", action="append", metavar="SYMBOL",
                        help="treat this QAPI 'if' symbol as true in source inputs (repeatable)")
    common.add_argument("--undefine", action="append", metavar="SYMBOL",
                        help="treat this QAPI 'if' symbol as false in source inputs")
    return common


class InputLoader:
    """Loads inputs, provisioning the Debian builds only if a version is named."""

    def __init__(self, conditions: Conditions) -> None:
        self._builds: list[QemuBuild] | None = None
        self.conditions = conditions

    def load(self, spec: str) -> SchemaInput:
        needs_builds = spec[:1].isdigit() and not Path(spec).exists()
        if needs_builds and self._builds is None:
            self._builds = provisioned_builds()
        return load_input(spec, self._builds, self.conditions)


def distinct_labels(schemas: list[SchemaInput]) -> list[str]:
    """Give each of ``schemas`` a label no other input has: a repeated label (two
    binaries of one version) gets ``-2``, ``-3``, ... after the first. Returns a
    note per relabelled input saying which input it is."""
    seen: dict[str, int] = {}
    notes = []
    for schema in schemas:
        seen[schema.label] = seen.get(schema.label, 0) + 1
        if seen[schema.label] > 1:
            schema.label = f"{schema.label}-{seen[schema.label]}"
            notes.append(f"{schema.label} is {schema.spec}")
    return notes


def _roots(args: argparse.Namespace, schemas: list[SchemaInput]) -> list[str]:
    if args.all:
        names: set[str] = set()
        for schema in schemas:
            names.update(all_roots(SchemaIndex(schema.entries, schema.spec)))
        return sorted(names)
    return list(args.type or DEFAULT_ROOTS)


def source_locators(schemas: list[SchemaInput]) -> dict[str, Locator]:
    """A locator of the declaring line per QAPI source input, by input label."""
    out = {}
    for s in schemas:
        if s.kind == "source" and s.definitions:
            if "repo" in s.meta:
                reader = git_reader(str(s.meta["repo"]), str(s.meta["ref"]), "qapi")
                out[s.label] = Locator(s.definitions, reader, "qapi/")
            else:
                out[s.label] = Locator(s.definitions)
    return out


def cmd_diff(args: argparse.Namespace) -> int:
    """Compare the inputs as a history; exit 1 when a finding reaches --fail-on."""
    if len(args.inputs) < 2:
        print("qmpcompat diff: error: give at least two inputs", file=sys.stderr)
        return 2
    inputs = InputLoader(conditions(args))
    schemas = [inputs.load(spec) for spec in args.inputs]
    notes = distinct_labels(schemas)
    notes += attach(schemas, inputs.load, args.conditions_from) + note_without_source(schemas)
    roots = _roots(args, schemas)
    comparisons = history([load(s, roots) for s in schemas])
    if not args.no_since_audit:
        comparisons += since_audits(schemas)
    report = DiffReport([{"spec": s.spec, "label": s.label, "kind": s.kind,
                          "version": s.version,
                          **({"conditions-from": str(s.meta["conditions-from"])}
                             if "conditions-from" in s.meta else {})} for s in schemas],
                        roots, comparisons, notes=notes)
    if args.ignore:
        entries = load_ignore(Path(args.ignore))
        used = set()
        versions = {s.label: s.version for s in schemas}
        for comparison in comparisons:
            version = versions.get(comparison.new, "")
            comparison.findings, ignored, hit = apply_ignore(comparison.findings, entries, version)
            report.ignored.update(ignored)
            used |= hit
            late = [e for e in entries if e.overdue(version) and e not in report.overdue]
            if comparison.step == "step":  # reported once, on the step that passed review-by
                comparison.findings += [e.overdue_finding(comparison.old, comparison.new, version)
                                        for e in late]
                report.overdue += late
        report.stale = [e for e in entries if e not in used and e not in report.overdue]
        report.ignore_file = args.ignore
    locators = source_locators(schemas)
    sys.stdout.write(text(report) if args.format == "text"
                     else render_ci_report(report, args.format, locators))
    if not args.no_files:
        for path in write_files(report, Path(args.output), locators):
            print(f"wrote {path}", file=sys.stderr)
    return 1 if report.worst() >= Level(args.fail_on).rank else 0


def _write_releases(directory: Path, roots: list[str] | None) -> int:
    """Regenerate the recorded releases' snapshots from libvirt's replies, the
    committed releases read from QAPI source from the input each names, and the
    derived releases from their regenerated base and their QAPI changes."""
    directory.mkdir(parents=True, exist_ok=True)
    known = catalogue()
    for rec in known.releases():
        path = baseline_path(rec.qemu, directory)
        path.write_text(dumps(snapshot(recorded_schema(rec), roots)))
        print(f"wrote {path} from {rec.describe()}")
    for pkg in known.packages:
        if not pkg.served:
            print(f"libvirt {pkg.version} ({', '.join(pkg.suites)}): not served, skipped")
    for src in source_releases():  # the committed ones, each from the input it names
        spec = str(src.source.get("input") or "")
        path = baseline_path(src.version, directory)
        path.write_text(dumps(snapshot(load_input(spec, None, Conditions()), roots)))
        print(f"wrote {path} from QAPI source {spec}")
    for der in patch_releases():  # the committed ones, after their base: the base plus its changes
        base_path = baseline_path(str(der.source.get("base") or ""), directory)
        base = json_object(json.loads(base_path.read_text()))
        path = baseline_path(der.version, directory)
        path.write_text(dumps(derive(base, der.version, der.source)))
        print(f"wrote {path} from {base_path.name} and its QAPI changes")
    return 0


def derived_problems() -> list[str]:
    """Where a committed derived release fails its check against the known schemas
    its ``next`` names (``patch.check_next``)."""
    known = {k.version: json_object(json.loads(k.path.read_text())) for k in known_schemas()}
    return [p for der in patch_releases() for p in check_next(known[der.version], known)]


def cmd_snapshot(args: argparse.Namespace) -> int:
    """Write one snapshot, regenerate the baselines or the recorded releases, or
    check snapshots are canonical."""
    roots = None if args.full else list(args.type or SLICE_ROOTS)
    directory = Path(args.dir or (RELEASE_DIR if args.releases else BASELINE_DIR))
    if args.check is not None:
        files = [Path(f) for f in args.check] or sorted(
            [*directory.glob("*.json"), *(RELEASE_DIR.glob("*.json") if not args.dir else ())])
        problems = [p for f in files for p in check_canonical(f)]
        derived = derived_problems() if not args.check else []
        for problem in problems + derived:
            print(problem)
        print(f"{len(files) - len({p.split(':')[0] for p in problems})} of {len(files)}"
              " snapshots canonical" + ("" if args.check else
                                        f"; {len(derived)} derived release checks failed"))
        return 1 if problems or derived or not files else 0
    if args.releases:
        return _write_releases(directory, roots)
    if args.baselines:
        directory.mkdir(parents=True, exist_ok=True)
        for build in provisioned_builds():
            path = baseline_path(build.version_str, directory)
            path.write_text(dumps(snapshot(from_build(build), roots)))
            print(f"wrote {path}")
        return 0
    if not args.qemu or not args.output:
        print("qmpcompat snapshot: error: give QEMU and -o FILE, --baselines, or --check",
              file=sys.stderr)
        return 2
    write_out(args.output, dumps(snapshot(InputLoader(conditions(args)).load(args.qemu), roots)))
    return 0


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add ``snapshot`` and ``diff``."""
    common = conditions_parser()
    snap = subparsers.add_parser(
        "snapshot", parents=[common], help="write a QEMU's schema (or its migration slice) as canonical JSON",
        description="Write the migration-relevant slice (or with --full the whole) of a"
                    " schema as canonical JSON; regenerate or check the committed baselines.")
    snap.add_argument("qemu", metavar="QEMU", nargs="?", help=INPUT_HELP)
    snap.add_argument("-o", "--output", metavar="FILE", help="where to write ('-': stdout)")
    snap.add_argument("--full", action="store_true", help="every command and event")
    snap.add_argument("--type", action="append", metavar="ROOT",
                      help="root command, event, type or query path (repeatable)")
    snap.add_argument("--baselines", action="store_true",
                      help="regenerate the baseline of every provisioned version")
    snap.add_argument("--releases", action="store_true",
                      help="regenerate the snapshot of every QEMU release libvirt recorded,"
                           " and of every committed release read from QAPI source (from the"
                           " input its record names), in vectors/schema/releases/")
    snap.add_argument("--check", nargs="*", metavar="FILE",
                      help="check snapshots are canonical (default: every baseline and release)")
    snap.add_argument("--dir", help="baseline directory (default: vectors/schema, or"
                                    " vectors/schema/releases with --releases)")
    snap.set_defaults(func=cmd_snapshot)

    diff = subparsers.add_parser(
        "diff", parents=[common], help="classify the schema changes between QEMU versions",
        description="Compare schemas as a history (each step, and from the oldest to each"
                    " later input). Exit 0 clean, 1 findings at or above --fail-on, 2 bad"
                    " usage or input.")
    diff.add_argument("inputs", metavar="INPUT", nargs="+", help=INPUT_HELP)
    add_roots_option(diff)
    diff.add_argument("--all", action="store_true", help="compare every command and event")
    diff.add_argument("--conditions-from", metavar="SPEC",
                      help="QAPI source (debian:VERSION, a QEMU tree, REPO@REF) whose 'if' conditions "
                           "tell configuration from compatibility between binary inputs of its "
                           "version (default: each binary's own source when it is known: a "
                           "source build's, a build directory's, a Debian build's source package)")
    diff.add_argument("--ignore", metavar="FILE", help="YAML file of accepted changes")
    add_cli(diff, ("fail-on",))
    diff.add_argument("--format", choices=("text", *FORMATS), default="text",
                      help="what to print: the text report, GitHub Actions workflow annotations "
                           "(github), GitLab code quality JSON (gitlab) or SARIF 2.1.0 (sarif); QAPI "
                           "source inputs point each finding at its file and line")
    diff.add_argument("--output", metavar="DIR", default="reports",
                      help="where the JSON, Markdown and HTML reports go (default: reports/)")
    diff.add_argument("--no-files", action="store_true", help="only print the text report")
    diff.add_argument("--no-since-audit", action="store_true",
                      help="skip the audit of QAPI source inputs' Since: tags against the history")
    diff.set_defaults(func=cmd_diff)
