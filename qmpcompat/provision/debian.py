"""Provision the Debian archive's builds of qemu-system-x86, without root.

Each suite's candidate build and its whole dependency closure are downloaded
by a private apt, unpacked with dpkg-deb into the cache, and recorded as a
``QemuBuild`` that runs through the build's own dynamic loader.
"""

from __future__ import annotations

import fcntl
import json
import os
import re
import shutil
import subprocess
import sys
import time
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass, field, replace
from pathlib import Path

from qmpcompat.errors import ProvisionError, QmpCompatError, UnknownSuiteError
from qmpcompat.provision.apt import PrivateApt, suite_sources
from qmpcompat.provision.build import QemuBuild, load_manifest, probe_version, write_manifest
from qmpcompat.provision.indexes import SuiteIndex
from qmpcompat.provision.indexes import update as update_indexes
from qmpcompat.provision.provenance import compiled_dirs
from qmpcompat.reaper import temp_dir
from qmpcompat.types import Version

DEFAULT_SUITES = ("bookworm", "bookworm-backports", "trixie", "trixie-backports", "forky", "sid")
PACKAGE = "qemu-system-x86"
BINARY = "qemu-system-x86_64"
# QEMU target -> the Debian package of its system emulator (all built from src:qemu,
# so every suite serves them at the version it serves qemu-system-x86 at).
TARGET_PACKAGES = {"x86_64": PACKAGE, "aarch64": "qemu-system-arm"}
# What a build of another origin takes from Debian (``qmpcompat.provision.supplement``).
LIBC_PACKAGE = "libc6"
FIRMWARE_PACKAGES = ("qemu-system-data", "seabios")
# What a look-up at a suite's lists asks for, all in one apt-cache run whose answers
# are remembered: the package a suite is resolved by, and what a supplement asks next.
LOOKED_UP = (PACKAGE, LIBC_PACKAGE, *FIRMWARE_PACKAGES)
DEFAULT_TARGETS = ("x86_64",)
# Multiarch triplet and dynamic loader per Debian architecture.
LOADERS = {
    "amd64": ("x86_64-linux-gnu", "ld-linux-x86-64.so.2"),
    "arm64": ("aarch64-linux-gnu", "ld-linux-aarch64.so.1"),
}
INDEX_MAX_AGE = 7 * 24 * 3600  # re-read the archive's lists after a week

Progress = Callable[[str], None]


def cache_dir() -> Path:
    """``$QMPCOMPAT_CACHE``, else ``$XDG_CACHE_HOME/qmpcompat``, else ``~/.cache/qmpcompat``."""
    env = os.environ.get("QMPCOMPAT_CACHE")
    if env:
        return Path(env).expanduser()
    xdg = os.environ.get("XDG_CACHE_HOME") or os.path.expanduser("~/.cache")
    return Path(xdg) / "qmpcompat"


def upstream_version(debian_version: str) -> str:
    """``1:10.0.2+ds-2+deb13u1~bpo12+1`` -> ``10.0.2``; ``1:7.2+dfsg-7+deb12u18`` -> ``7.2``."""
    version = debian_version.split(":", 1)[-1].rsplit("-", 1)[0]
    return re.split(r"[+~]", version, maxsplit=1)[0]


@dataclass
class ProvisionResult:
    """What a provisioning run produced: the builds, per suite what went wrong,
    and the dates of the archive indexes the builds were chosen from."""

    builds: list[QemuBuild] = field(default_factory=list)
    suites: dict[str, str] = field(default_factory=dict)  # suite -> Debian version it serves
    errors: dict[str, QmpCompatError] = field(default_factory=dict)  # suite -> error
    indexes: dict[str, SuiteIndex] = field(default_factory=dict)  # index suite -> its dates


@contextmanager
def locked(path: Path, shared: bool = False) -> Iterator[None]:
    """Hold an exclusive ``flock`` on ``path`` (made if missing) while the block runs:
    one process (or thread) at a time fills a cache entry. ``shared``: a shared
    one, which only an exclusive holder excludes (many read what one writes)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "a") as fh:
        fcntl.flock(fh, fcntl.LOCK_SH if shared else fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(fh, fcntl.LOCK_UN)


def say(progress: Progress | None, text: str) -> None:
    """Tell ``progress``, when there is one, ``text``."""
    if progress:
        progress(text)


SUITES_FILE = "suites.json"  # in the cache: what the last look-up found, suite by suite


def _read_suites_file(path: Path) -> dict[str, object]:
    try:
        data = json.loads(path.read_text())
    except (OSError, ValueError):
        return {}
    return data if isinstance(data, dict) else {}


def last_indexes(cache: Path | None = None) -> dict[str, SuiteIndex]:
    """Each suite's binary index as the last look-up found it (none before the first)."""
    raw = _read_suites_file((cache or cache_dir()) / SUITES_FILE).get("indexes")
    if not isinstance(raw, dict):
        return {}
    return {str(k): SuiteIndex.from_json(v) for k, v in raw.items() if isinstance(v, dict)}


class DebianProvisioner:
    """Resolves suites to builds and keeps them in ``cache``."""

    def __init__(self, cache: Path | None = None, progress: Progress | None = None) -> None:
        self.cache = cache or cache_dir()
        self.apt = PrivateApt(self.cache / "apt")
        self.progress = progress
        self.index_file = self.cache / SUITES_FILE

    # -- which version does each suite serve ---------------------------------

    def _read_index(self) -> dict[str, object]:
        return _read_suites_file(self.index_file)

    def _stale(self, suites: Sequence[str], refresh: bool) -> tuple[dict[str, str], list[str]]:
        """The cached suite -> version map, and the suites that must be looked up again."""
        index = self._read_index()
        suites_seen = index.get("suites")
        known = {str(k): str(v) for k, v in suites_seen.items()} if isinstance(suites_seen, dict) else {}
        updated = index.get("updated")
        fresh = time.time() - (float(updated) if isinstance(updated, (int, float)) else 0.0) < INDEX_MAX_AGE
        if refresh or not fresh:
            return known, list(suites)
        return known, [s for s in suites if s not in known]

    def _indexes(self) -> dict[str, SuiteIndex]:
        return last_indexes(self.cache)

    def resolve(self, suites: Sequence[str], refresh: bool = False,
                strict: bool = False) -> ProvisionResult:
        """Map each suite to the qemu-system-x86 version it serves (cached for a week).

        A suite whose index (or its base suite's) cannot be used gets its error
        and the others go on; a stale index is used, unless ``strict``.
        Safe to call from several processes at once (xdist workers): one reads
        the archive while the others wait, then use what it found.
        """
        result = ProvisionResult()
        known, todo = self._stale(suites, refresh)
        if todo:
            with locked(self.cache / "lock"):
                known, todo = self._stale(suites, refresh)
                if todo:
                    known = self._look_up(known, todo)
        indexes = self._indexes()
        for suite in suites:
            used = [indexes[s] for s in suite_sources(suite) if s in indexes]
            result.indexes.update((i.suite, i) for i in used)
            problem = next((p for p in (i.problem(strict) for i in used) if p), None)
            for index in used:
                if index.stale and not strict:
                    say(self.progress, "warning: " + index.warning())
            if problem and problem.kind != "missing":
                result.errors[suite] = problem
            elif known.get(suite) and not problem:
                result.suites[suite] = known[suite]
            else:
                result.errors[suite] = UnknownSuiteError(suite)
        return result

    def _look_up(self, known: dict[str, str], todo: list[str]) -> dict[str, str]:
        say(self.progress, f"reading the Debian archive's package lists for {', '.join(todo)}")
        # apt-get update drops the lists of suites it is not given: give it every suite
        # known, so that a concurrent look-up of another suite never loses its lists.
        wanted = sorted({x for s in [*todo, *known, *DEFAULT_SUITES] for x in suite_sources(s)})
        stale = [s for s, index in self._indexes().items() if index.stale]
        indexes = update_indexes(self.apt, wanted, known_stale=stale)
        found = dict(known)
        for suite in todo:
            bad = [s for s in suite_sources(suite) if indexes[s].error]
            version = None if bad else self.apt.candidates(suite, LOOKED_UP)[PACKAGE]
            if version:
                found[suite] = version
            else:
                found.pop(suite, None)  # an unknown suite is asked again next time
        self.index_file.parent.mkdir(parents=True, exist_ok=True)
        self.index_file.write_text(json.dumps(
            {"updated": time.time(), "suites": found,
             "indexes": {k: v.to_json() for k, v in sorted(indexes.items())}},
            indent=1, sort_keys=True))
        return found

    # -- getting one build ----------------------------------------------------

    def build_dir(self, version: str) -> Path:
        return self.cache / "builds" / re.sub(r"[^A-Za-z0-9.+~-]", "_", version)

    def _cached(self, prefix: Path) -> QemuBuild | None:
        """The build cached at ``prefix`` if it still runs (``--version``); a
        broken one is removed, with a word, so that it is provisioned again."""
        build = load_manifest(prefix)
        if build is None:
            if (prefix / "build.json").exists():
                say(self.progress, f"the cached build {prefix} is incomplete; provisioning it again")
            return None
        try:
            probe_version(build.command()[:4], build.environ(), build.binary, timeout=30)
        except QmpCompatError as exc:
            say(self.progress, f"the cached build {prefix} is broken ({exc.args[0]}); "
                 "provisioning it again")
            return None
        return build

    def fetch(self, suite: str, version: str, again: bool = False,
              target: str = "x86_64") -> QemuBuild:
        """The build of ``qemu-system-TARGET`` (package ``TARGET_PACKAGES[target]``
        at ``version``) from ``suite``, downloading it if it is not cached or the
        cached one does not run; ``again`` downloads it whatever the cache holds
        (a cached build that fails to start)."""
        if target not in TARGET_PACKAGES:
            raise ProvisionError(f"no Debian package for target {target!r} (known: "
                                 f"{', '.join(TARGET_PACKAGES)})")
        package = TARGET_PACKAGES[target]
        prefix = self.build_dir(version)
        if target != "x86_64":
            prefix = prefix.with_name(f"{prefix.name}+{target}")
        build = None if again else self._cached(prefix)
        if build:
            return build
        # The archive's package lists are read (shared: builds are fetched side by
        # side; ``resolve`` updates them alone), this build's entry is filled alone.
        with locked(self.cache / "lock", shared=True), locked(prefix.with_name(f".lock-{prefix.name}")):
            build = None if again else self._cached(prefix)
            if build:
                return build
            say(self.progress, f"downloading {package} {version} from {suite} with its dependencies")
            with temp_dir(self.cache, ".dl-") as tmp:
                debs = self.apt.download(suite, package, version, Path(tmp) / "debs")
                staging = Path(tmp) / "root"
                say(self.progress, f"unpacking {len(debs)} packages of {package} {version}")
                unpack(debs, staging)
                build = _describe(staging, prefix, suite, version, self.apt.arch, target)
                write_manifest(staging, build, prefix)
                if prefix.exists():
                    shutil.rmtree(prefix)
                prefix.parent.mkdir(parents=True, exist_ok=True)
                staging.rename(prefix)
            return build


def unpack(debs: Sequence[Path], staging: Path) -> None:
    """Unpack ``debs`` into ``staging`` (``dpkg-deb -x``, no maintainer scripts;
    as many at a time as there are CPUs: decompressing is most of a build's
    provisioning) and point their absolute symlinks into it.
    CalledProcessError for a package that does not unpack."""
    staging.mkdir(parents=True, exist_ok=True)
    largest_first = sorted(debs, key=lambda d: -d.stat().st_size)
    with ThreadPoolExecutor(max(1, len(os.sched_getaffinity(0)))) as pool:
        list(pool.map(lambda deb: _extract(deb, staging), largest_first))  # (re-raises the first failure)
    _relink_absolute_symlinks(staging)


def _extract(deb: Path, staging: Path) -> None:
    subprocess.run(["dpkg-deb", "-x", "--", str(deb), str(staging)], check=True,
                   capture_output=True)


def _relink_absolute_symlinks(root: Path) -> None:
    """Point the packages' absolute symlinks (/lib/x -> ...) into the unpacked tree."""
    for dirpath, dirnames, filenames in os.walk(root):
        for name in dirnames + filenames:
            path = Path(dirpath) / name
            if not path.is_symlink():
                continue
            target = os.readlink(path)
            if target.startswith("/"):
                inside = root / target.lstrip("/")
                path.unlink()
                path.symlink_to(os.path.relpath(inside, path.parent))


def _describe(staging: Path, prefix: Path, suite: str, version: str, arch: str,
              target: str = "x86_64") -> QemuBuild:
    """Work out how to run the unpacked build (checked by running it from ``staging``);
    a build of another target than x86_64 is labelled ``VERSION-TARGET``."""
    triplet, loader_name = LOADERS.get(arch, LOADERS["amd64"])
    binary = f"qemu-system-{target}"
    libdirs = [d for d in (f"usr/lib/{triplet}", f"lib/{triplet}") if (staging / d).is_dir()]
    loader = next((d + "/" + loader_name for d in libdirs if (staging / d / loader_name).exists()), "")
    if not loader or not (staging / "usr/bin" / binary).exists():
        raise ProvisionError(f"{TARGET_PACKAGES[target]} {version} from {suite} unpacked without "
                             f"{binary} or its loader")
    data_dirs = [d for d in ("usr/share/qemu", "usr/share/seabios") if (staging / d).is_dir()]

    def build_at(root: Path) -> QemuBuild:
        return QemuBuild(
            binary=str(root / "usr/bin" / binary), version=Version(0, 0, 0), version_line="",
            package=f"Debian {version}", origin=f"debian:{suite}",
            loader=str(root / loader), library_path=":".join(str(root / d) for d in libdirs),
            env={"QEMU_MODULE_DIR": str(root / f"usr/lib/{triplet}/qemu")},
            data_dirs=tuple(str(root / d) for d in data_dirs),
            host_dirs=compiled_dirs(staging / "usr/bin" / binary))

    trial = build_at(staging)
    ver, line, _pkg = probe_version(trial.command()[:4], trial.environ(), trial.binary)
    final = build_at(prefix)
    label = "" if target == "x86_64" else f"{'.'.join(map(str, ver))}-{target}"
    return QemuBuild(**{**final.__dict__, "version": ver, "version_line": line,
                        "run_label": label})


def reprovision(build: QemuBuild, cache: Path | None = None,
                progress: Progress | None = None) -> QemuBuild:
    """Download a cached Debian build again (it no longer starts): same suite,
    same version. ProvisionError when ``build`` is not a provisioned one."""
    suite = build.origin.removeprefix("debian:")
    version = build.package.removeprefix("Debian ")
    if not build.origin.startswith("debian:") or version == build.package:
        raise ProvisionError(f"{build.binary} is not a provisioned Debian build")
    say(progress, f"the cached build of {version} does not start; provisioning it again")
    return DebianProvisioner(cache, progress).fetch(suite, version, again=True,
                                                    target=build.target)


def request_of(version: str, target: str) -> str:
    """The key of the Debian build of ``version`` (a Debian version) for
    ``target``, known before it is downloaded: ``QemuBuild.request``."""
    return f"debian {version} {target}"


def requested_version(key: str) -> str | None:
    """The upstream version of the Debian build a key (``request_of``) names; None
    for a key of another kind."""
    kind, _sep, rest = key.partition(" ")
    return upstream_version(rest.split(" ")[0]) if kind == "debian" and rest else None


def _chosen(result: ProvisionResult, suites: Sequence[str]) -> list[tuple[str, str]]:
    """(suite, Debian version) of each distinct upstream version the resolved
    suites serve: where two serve the same, the first non-backports suite."""
    chosen: dict[str, tuple[str, str]] = {}
    for suite in sorted(result.suites, key=lambda s: ("backports" in s, list(suites).index(s))):
        version = result.suites[suite]
        chosen.setdefault(upstream_version(version), (suite, version))
    return list(chosen.values())


def planned(suites: Sequence[str] = DEFAULT_SUITES, cache: Path | None = None,
            refresh: bool = False, progress: Progress | None = None, strict: bool = False,
            targets: Sequence[str] = DEFAULT_TARGETS) -> tuple[list[str], ProvisionResult]:
    """The keys (``request_of``) of the builds ``provision`` would give, in its
    order, without downloading any (the archive's package lists are read as
    ``provision`` reads them); and what resolving the suites found."""
    result = DebianProvisioner(cache, progress).resolve(suites, refresh, strict)
    chosen = sorted(_chosen(result, suites), key=lambda sv: _upstream_key(sv[1]))
    return [request_of(version, t) for _suite, version in chosen for t in targets], result


def _upstream_key(debian_version: str) -> tuple[int, ...]:
    """A Debian version's upstream version as numbers, for ordering."""
    return tuple(int(p) for p in re.findall(r"\d+", upstream_version(debian_version)))


def provision(suites: Sequence[str] = DEFAULT_SUITES, cache: Path | None = None,
              refresh: bool = False, progress: Progress | None = None,
              strict: bool = False,
              targets: Sequence[str] = DEFAULT_TARGETS,
              wanted: Callable[[str], bool] | None = None) -> ProvisionResult:
    """Provision one build per distinct QEMU version that ``suites`` serve, for
    each of ``targets`` (``x86_64``, ``aarch64``).

    Where two suites serve the same upstream version, the first non-backports
    suite wins. Errors are collected per suite; the other suites still provision.
    ``strict`` refuses suites whose index is past its Valid-Until. ``wanted``,
    given a build's key (``request_of``), says whether to provision it at all
    (a shard provisions only the builds it runs).
    """
    prov = DebianProvisioner(cache, progress)
    result = prov.resolve(suites, refresh, strict)
    todo = [(suite, version, target) for suite, version in _chosen(result, suites)
            for target in targets if wanted is None or wanted(request_of(version, target))]

    def fetch(suite: str, version: str, target: str) -> QemuBuild | QmpCompatError:
        try:
            return replace(prov.fetch(suite, version, target=target),
                           request=request_of(version, target))
        except QmpCompatError as exc:
            return exc
        except subprocess.CalledProcessError as exc:
            return ProvisionError(f"unpacking {version} failed: {exc.stderr!r}")

    # side by side: a cold cache's builds download and unpack at once
    with ThreadPoolExecutor(max(1, min(len(todo), len(os.sched_getaffinity(0))))) as pool:
        fetched = list(pool.map(lambda job: fetch(*job), todo))
    for (suite, _version, target), got in zip(todo, fetched, strict=True):
        if isinstance(got, QemuBuild):
            result.builds.append(got)
        else:
            result.errors[suite if target == "x86_64" else f"{suite}:{target}"] = got
    result.builds.sort(key=lambda b: (b.version, b.target != "x86_64", b.target))
    return result


def print_progress(text: str) -> None:
    print(f"qmpcompat: {text}", file=sys.stderr, flush=True)
