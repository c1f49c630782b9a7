"""Build QEMU from source (``qmpcompat provision --source SPEC``), cached.

Steps, each named in progress lines and in the error when it fails:
``dependencies`` (Debian packages, installed with apt when run as root, and
meson/pycotap from PyPI into a private venv), ``fetch``/``unpack`` (Debian
sources only, see ``source_tree``), ``configure``, ``compile`` (ninja, at
nice 19), ``check`` (``--version``) and ``store``. Every step's output goes to
the build directory's ``qmpcompat-build.log``, which a failed build keeps.

The build directory (``CACHE/source/work/KEY-PROFILE-TARGET``) is kept, so a
developer's checkout rebuilds incrementally; the finished binary is copied to
``CACHE/source/builds/IDENTITY-PROFILE-TARGET`` with a ``build.json``, keyed by
the source's identity and the profile, and re-used from there.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import shutil
import subprocess
import sys
import time
from pathlib import Path

from qmpcompat.errors import ProvisionError, QmpCompatError
from qmpcompat.provision.build import (
    MANIFEST,
    QemuBuild,
    load_manifest,
    probe_version,
    write_manifest,
)
from qmpcompat.provision.debian import Progress, cache_dir, locked, say
from qmpcompat.provision.firmware import SHARE, gather, optionrom_dir
from qmpcompat.provision.source_tree import SourceTree, slug, source_tree
from qmpcompat.reaper import temp_dir
from qmpcompat.types import Version

# Configuration profiles: configure arguments besides --target-list and --python.
PROFILES: dict[str, tuple[str, ...]] = {
    # Only what the migration QMP interface needs: TCG, machine type `none`, no
    # optional libraries (so no RDMA, SPICE, ...), no docs, no firmware blobs.
    "minimal": ("--without-default-features", "--without-default-devices", "--disable-docs",
                "--disable-download", "--disable-install-blobs"),
    # configure's own defaults (every feature whose libraries the host has).
    "default": ("--disable-docs", "--disable-download", "--disable-install-blobs"),
}
DEFAULT_PROFILE = "minimal"
# Debian packages the minimal profile needs (dtc: the +ds tarball has no device trees).
BUILD_PACKAGES = ("gcc", "make", "ninja-build", "pkg-config", "libglib2.0-dev", "libpixman-1-dev",
                  "flex", "bison", "device-tree-compiler", "python3-venv", "dpkg-dev", "git")
# What each profile needs besides: the default profile builds the x86 boards, so
# their firmware (the option ROMs need 32-bit code: gcc-multilib; SeaBIOS: seabios,
# see qmpcompat.provision.firmware) and RDMA migration (rdma-core's headers).
PROFILE_PACKAGES: dict[str, tuple[str, ...]] = {
    "minimal": (),
    "default": ("zlib1g-dev", "gcc-multilib", "seabios", "librdmacm-dev", "libibverbs-dev"),
}
PYTHON_PACKAGES = ("meson>=1.5", "pycotap")
LOG = "qmpcompat-build.log"
ENV_VAR = "QMPCOMPAT_SOURCE"
PROFILE_VAR = "QMPCOMPAT_SOURCE_PROFILE"


class BuildFailed(ProvisionError):
    """A step of a source build failed; ``step`` names it, ``log`` is kept."""

    def __init__(self, step: str, log: Path, detail: str) -> None:
        super().__init__(f"building QEMU from source failed at step '{step}': {detail}"
                         f"\n  log: {log}")
        self.step = step
        self.log = log
        self.hint = f"read {log}; fix the cause and run `qmpcompat provision --source` again"


def named_sources(cli: list[str] | tuple[str, ...] = ()) -> list[str]:
    """``--qmpcompat-source`` specs, then those in ``$QMPCOMPAT_SOURCE`` (comma-separated)."""
    env = [s.strip() for s in os.environ.get(ENV_VAR, "").split(",") if s.strip()]
    return list(cli) + env


def build_packages(profile: str = DEFAULT_PROFILE) -> tuple[str, ...]:
    """The Debian packages a build with ``profile`` needs."""
    return (*BUILD_PACKAGES, *PROFILE_PACKAGES.get(profile, ()))


def source_profile(cli: str | None = None) -> str:
    """The profile of the sources a run builds: ``cli`` (``--qmpcompat-source-profile``),
    else ``$QMPCOMPAT_SOURCE_PROFILE``, else the default profile; ProvisionError
    for an unknown one."""
    profile = cli or os.environ.get(PROFILE_VAR, "").strip() or DEFAULT_PROFILE
    if profile not in PROFILES:
        raise ProvisionError(f"unknown build profile {profile!r} (known: {', '.join(PROFILES)})")
    return profile


def missing_packages(profile: str = DEFAULT_PROFILE) -> list[str]:
    """The build packages this host lacks (by dpkg's status; none known on a
    host without dpkg, where configure says what it misses)."""
    if not shutil.which("dpkg-query"):
        return []
    wanted = build_packages(profile)
    out = subprocess.run(["dpkg-query", "-W", "-f=${Package} ${db:Status-Status}\n",
                          "--", *wanted], capture_output=True, text=True, check=False).stdout
    have = {line.split()[0].split(":")[0] for line in out.splitlines()
            if line.endswith(" installed")}
    return [p for p in wanted if p not in have]


def _run_logged(step: str, argv: list[str], log: Path, cwd: Path | None = None,
                progress: Progress | None = None) -> None:
    """Run one step, appending its output to ``log``; BuildFailed if it fails.
    ninja's ``[N/M]`` lines become progress lines about every 10%."""
    with log.open("a") as fh:
        fh.write(f"\n=== {step}: {' '.join(argv)}\n")
        fh.flush()
        proc = subprocess.Popen(argv, cwd=cwd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                                stdin=subprocess.DEVNULL, text=True, errors="replace")
        assert proc.stdout is not None
        shown = -1
        tail: list[str] = []
        for line in proc.stdout:
            fh.write(line)
            tail = [*tail[-19:], line.rstrip()]
            match = re.match(r"\[(\d+)/(\d+)\]", line)
            if match and progress:
                done, total = int(match.group(1)), int(match.group(2))
                tenth = done * 10 // max(total, 1)
                if tenth > shown:
                    shown = tenth
                    progress(f"{step}: {done}/{total}")
        rc = proc.wait()
    if rc != 0:
        said = next((t for pattern in (r"\berror\b|ERROR", r"FAILED|failed")
                     for t in reversed(tail) if re.search(pattern, t)), tail[-1] if tail else "")
        raise BuildFailed(step, log, f"exit status {rc}: {said}")


def _dependencies(log: Path, progress: Progress | None, profile: str) -> Path:
    """Install what a build needs; the Python of the private venv with meson."""
    missing = missing_packages(profile)
    if missing:
        if os.geteuid() == 0 and shutil.which("apt-get"):
            say(progress, f"dependencies: apt-get install {' '.join(missing)}")
            env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
            proc = subprocess.run(["apt-get", "install", "-y", "-q", "--no-install-recommends",
                                   "--", *missing], capture_output=True, text=True, env=env,
                                  check=False, stdin=subprocess.DEVNULL)
            with log.open("a") as fh:
                fh.write(proc.stdout + proc.stderr)
            if proc.returncode != 0:
                raise BuildFailed("dependencies", log, f"apt-get install {' '.join(missing)} "
                                  f"failed: {proc.stderr.strip()[-300:]}")
        else:
            err = ProvisionError(f"building QEMU needs these Debian packages: {' '.join(missing)}")
            err.hint = f"as root: apt-get install {' '.join(missing)}"
            raise err
    venv = cache_dir() / "source" / "pyenv"
    python = venv / "bin" / "python3"
    stamp = venv / "qmpcompat-packages"
    if not stamp.exists() or stamp.read_text() != " ".join(PYTHON_PACKAGES):
        say(progress, f"dependencies: pip install {' '.join(PYTHON_PACKAGES)} (private venv)")
        _run_logged("dependencies", [sys.executable, "-m", "venv", str(venv)], log)
        _run_logged("dependencies", [str(python), "-m", "pip", "install", "-q",
                                     *PYTHON_PACKAGES], log)
        stamp.write_text(" ".join(PYTHON_PACKAGES))
    return python


def _key(tree: SourceTree, profile: str, target: str) -> str:
    args = "\0".join(PROFILES[profile])
    digest = hashlib.sha256(f"{tree.identity}\0{profile}\0{target}\0{args}".encode()).hexdigest()
    return f"{slug(tree.identity)[:60]}-{profile}-{target}-{digest[:8]}"


def _configure(tree: SourceTree, work: Path, python: Path, profile: str, target: str,
               log: Path, progress: Progress | None) -> None:
    argv = [str(tree.path / "configure"), f"--python={python}",
            f"--target-list={target}-softmmu", *PROFILES[profile]]
    record = work / "qmpcompat-configure.json"
    if (work / "build.ninja").exists() and record.exists() and json.loads(record.read_text()) == argv:
        return
    say(progress, f"configure: profile {profile}, target {target}")
    _run_logged("configure", ["nice", "-n", "19", *argv], log, cwd=work)
    record.write_text(json.dumps(argv))


def _cached(store: Path, progress: Progress | None) -> QemuBuild | None:
    """The build cached at ``store`` if it is whole and its binary still runs and
    says the recorded version; else None, and a broken entry (a binary that no
    longer runs or is gone, a half-written entry without its build.json) is
    removed with a message saying it is rebuilt. (A staging dir left by a build
    killed while it stored is the reaper's: ``.store-`` temp dirs.)"""
    if not store.exists():
        return None
    build = load_manifest(store)
    reason = "its build.json is missing or unreadable" if build is None else ""
    if build is not None:
        try:
            version, _line, _pkg = probe_version(build.command(), build.environ(), build.binary,
                                                 timeout=60)
            if version != build.version:
                reason = f"its binary says {version.label}, its build.json {build.version_str}"
        except QmpCompatError as exc:
            reason = str(exc)
    if not reason:
        return build
    say(progress, f"store: the cached build {store} is broken ({reason}); rebuilding it")
    shutil.rmtree(store, ignore_errors=True)
    return None


def discard(build: QemuBuild, progress: Progress | None = None) -> None:
    """Remove the cache entry of source build ``build`` (one that was found
    broken after it was cached), so that the next ``build_source`` rebuilds it."""
    store = Path(build.binary).parent
    if store.parent == cache_dir() / "source" / "builds" and (store / MANIFEST).exists():
        say(progress, f"store: discarding the broken cached build {store}")
        shutil.rmtree(store, ignore_errors=True)


def _compile_checked(work: Path, binary: str, log: Path,
                     progress: Progress | None) -> tuple[Version, str]:
    """Compile ``binary`` in ``work`` and check that it runs; a binary that does
    not (left broken in the build dir) is removed and linked once more."""
    for attempt in (1, 2):
        _run_logged("compile", ["nice", "-n", "19", "ninja", f"-j{os.cpu_count() or 1}", binary],
                    log, cwd=work, progress=progress)
        say(progress, f"check: {binary} --version")
        try:
            version, line, _pkg = probe_version([str(work / binary)], dict(os.environ),
                                                str(work / binary), timeout=60)
            return version, line
        except QmpCompatError as exc:
            if attempt == 2 or not (work / binary).exists():
                raise BuildFailed("check", log, str(exc)) from exc
            say(progress, f"check: {binary} in the build dir does not run ({exc}); linking it again")
            (work / binary).unlink()
    raise AssertionError("unreachable")


def _firmware(tree: SourceTree, work: Path, share: Path, target: str, log: Path,
              progress: Progress | None) -> None:
    """Build the x86 option ROMs when configure set them up, and gather the
    firmware into ``share`` (see ``qmpcompat.provision.firmware``)."""
    if target in ("x86_64", "i386") and (roms := optionrom_dir(work)):
        say(progress, "firmware: x86 option ROMs")
        _run_logged("firmware", ["nice", "-n", "19", "make", "-C", str(roms)], log)
    missing = gather(tree.path, work, share)
    if missing and target in ("x86_64", "i386"):
        say(progress, f"firmware: this build has no {', '.join(missing)}: its x86 machine "
             "types cannot start a guest (the default profile installs gcc-multilib and seabios)")


def build_source(spec: str, profile: str = DEFAULT_PROFILE, target: str = "x86_64",
                 progress: Progress | None = None, relink: bool = False) -> QemuBuild:
    """The QEMU built from ``spec`` with ``profile`` for ``target``: from the
    cache when this source and profile were built before and that build still
    runs, else built now (a broken cache entry is rebuilt, with a message).
    ``relink``: the build directory's binary is linked again even if ninja
    thinks it is up to date (after the cached copy was found broken)."""
    if profile not in PROFILES:
        raise ProvisionError(f"unknown build profile {profile!r} (known: {', '.join(PROFILES)})")
    if not re.fullmatch(r"[a-z0-9_]+", target):
        raise ProvisionError(f"{target!r} is not a QEMU target name (e.g. x86_64, aarch64)")
    tree = source_tree(spec, progress)
    store = cache_dir() / "source" / "builds" / _key(tree, profile, target)
    work = cache_dir() / "source" / "work" / f"{tree.workdir_key}-{profile}-{target}"
    work.mkdir(parents=True, exist_ok=True)
    log = work / LOG
    with locked(work / "qmpcompat-lock"):
        cached = _cached(store, progress)
        if cached:
            return cached
        started = time.monotonic()
        log.write_text(f"qmpcompat source build of {spec} ({tree.identity}), profile {profile}, "
                       f"target {target}\n")
        python = _dependencies(log, progress, profile)
        _configure(tree, work, python, profile, target, log, progress)
        binary = f"qemu-system-{target}"
        if relink:
            (work / binary).unlink(missing_ok=True)
        version, line = _compile_checked(work, binary, log, progress)
        build = QemuBuild(binary=str(store / binary), version=version, version_line=line,
                          package=tree.label, origin=f"source:{spec}, profile {profile}",
                          data_dirs=(str(store / SHARE),))
        store.parent.mkdir(parents=True, exist_ok=True)
        with temp_dir(store.parent, ".store-") as tmp:
            staging = tmp / store.name
            staging.mkdir()
            _firmware(tree, work, staging / SHARE, target, log, progress)
            shutil.copy2(work / binary, staging / binary)
            shutil.copy2(log, staging / LOG)
            write_manifest(staging, build, store)
            shutil.rmtree(store, ignore_errors=True)
            staging.rename(store)
        say(progress, f"store: {build.version_str} ({tree.label}) built in "
             f"{time.monotonic() - started:.0f}s: {store}")
    found = load_manifest(store)
    if found is None:
        raise BuildFailed("store", log, f"the stored build at {store} cannot be read back")
    return found
