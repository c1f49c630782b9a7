"""Which QEMU binaries a run uses: the ones the user names, else the default
Debian set; each with a label that is unique within the run, each checked to
start (a provisioned build that does not is provisioned again) and probed for
its features. Above ``provision`` and ``harness``: it uses both."""

from __future__ import annotations

import os
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path

from qmpcompat.errors import BinaryError, ProvisionError, QemuDied, QmpCompatError
from qmpcompat.harness import check_starts
from qmpcompat.harness.features import with_features
from qmpcompat.provision.build import QemuBuild, build_from_path, manifest_of
from qmpcompat.provision.debian import (
    DEFAULT_SUITES,
    DEFAULT_TARGETS,
    Progress,
    planned,
    provision,
    reprovision,
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


def default_targets() -> tuple[str, ...]:
    """``$QMPCOMPAT_TARGETS`` (comma-separated), else x86_64 only."""
    env = [t.strip() for t in os.environ.get(TARGETS_VAR, "").split(",") if t.strip()]
    return tuple(env) or DEFAULT_TARGETS


def named_binaries(cli: Sequence[str] = ()) -> list[str]:
    """``--qemu`` paths, then those in ``$QMPCOMPAT_QEMU`` (separated by ``os.pathsep``)."""
    env = [p for p in os.environ.get(ENV_VAR, "").split(os.pathsep) if p.strip()]
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
    """The key of a named binary (``QemuBuild.request``): its resolved path."""
    return f"qemu {Path(path).expanduser().resolve()}"


def source_request(spec: str, profile: str) -> str:
    """The key of a build from source: its spec and profile."""
    return f"source {spec} {profile}"


def _default_suites(binaries: Sequence[str], sources: Sequence[str],
                    suites: Sequence[str] | None) -> Sequence[str]:
    return suites if suites is not None else () if binaries or sources else DEFAULT_SUITES


def candidates(binaries: Sequence[str] = (), suites: Sequence[str] | None = None,
               cache: Path | None = None, progress: Progress | None = None,
               strict: bool = False, refresh: bool = False, sources: Sequence[str] = (),
               targets: Sequence[str] | None = None, profile: str | None = None) -> list[str]:
    """The key of every build ``select`` would give for the same arguments, in
    its order, known before any is provisioned, built or started (a Debian
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
    suites = _default_suites(binaries, sources, suites)
    if suites:
        keys += planned(suites, cache, refresh, quiet, strict,
                        targets or default_targets())[0]
    return list(dict.fromkeys(keys))


def _named(sel: Selection, path: str, start_timeout: float | None, want: Want) -> None:
    if not want(named_request(path)):
        return
    try:
        # A binary of a cache entry runs as the entry says (its loader, its -L firmware).
        build = manifest_of(Path(path).expanduser()) or build_from_path(
            path, timeout=start_timeout or 20.0)
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
            targets: Sequence[str] | None, want: Want) -> None:
    try:
        result = provision(suites, cache=cache, progress=progress, strict=strict,
                           refresh=refresh, targets=targets or default_targets(), wanted=want)
    except QmpCompatError as exc:
        sel.problems.append(Problem("debian:" + ",".join(suites), exc))
        return
    for build in result.builds:
        try:
            if start_timeout is not None:
                again = _debian_again(build, start_timeout, cache, progress)
                build = replace(again, request=build.request)
            sel.builds.append(build)
        except QmpCompatError as exc:
            sel.problems.append(Problem(build.origin, exc))
    sel.indexes = [result.indexes[k] for k in sorted(result.indexes)]
    sel.problems += [Problem(f"debian:{s}", e) for s, e in result.errors.items()]


def select(binaries: Sequence[str] = (), suites: Sequence[str] | None = None,
           cache: Path | None = None, progress: Progress | None = None,
           start_timeout: float | None = None, strict: bool = False,
           refresh: bool = False, sources: Sequence[str] = (),
           targets: Sequence[str] | None = None, profile: str | None = None,
           want: Want | None = None) -> Selection:
    """Named binaries, plus the Debian builds of ``suites``.

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
    the archive's indexes even when the cached ones are fresh. ``want``, given
    a build's key (``candidates``), says whether to provision and start it at
    all (a shard of a run uses only its own builds); each build records its key
    (``QemuBuild.request``).
    """
    sel = Selection()
    wanted: Want = want or (lambda _key: True)
    for path in binaries:
        _named(sel, path, start_timeout, wanted)
    for spec in sources:
        _source(sel, spec, profile, start_timeout, progress, wanted)
    suites = _default_suites(binaries, sources, suites)
    if suites:
        _debian(sel, suites, cache, progress, start_timeout, strict, refresh, targets, wanted)
    if start_timeout is not None:
        usable = []
        for build in sel.builds:
            try:
                usable.append(with_features(build, start_timeout))
            except QmpCompatError as exc:
                sel.problems.append(Problem(build.binary, exc))
        sel.builds = usable
    sel.builds = _unique_labels(sel.builds)
    return sel
