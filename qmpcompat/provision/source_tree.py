"""Where a source build's QEMU tree comes from, and what identifies it.

A SPEC is ``debian:VERSION`` (a ``qemu`` source package the Debian archive
serves: fetched and verified by the private apt, unpacked with Debian's
patches applied by ``dpkg-source``) or a path to a QEMU source tree (a git
checkout, with or without local changes, or a plain tree). The identity of a
tree says exactly which source a build came from: the Debian version, the git
commit plus a digest of the local changes, or a digest of a plain tree.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import re
import shutil
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

from qmpcompat.errors import ProvisionError, SourceUnavailable
from qmpcompat.provision.apt import PrivateSourceApt
from qmpcompat.provision.debian import (
    DEFAULT_SUITES,
    INDEX_MAX_AGE,
    Progress,
    cache_dir,
    last_indexes,
    locked,
    say,
    upstream_version,
)
from qmpcompat.provision.indexes import fetch
from qmpcompat.reaper import temp_dir
from qmpcompat.types import Version, version_prefix

PACKAGE = "qemu"


@dataclass(frozen=True)
class SourceTree:
    """A QEMU source tree ready to build.

    ``identity`` is unique per source content (it keys the cache), ``label``
    is how reports name it (``debian source``, ``git 1a2b3c4, dirty``), and
    ``workdir_key`` names the build directory (one per Debian version, one per
    checkout, so a developer's tree rebuilds incrementally).
    """

    spec: str
    path: Path
    identity: str
    label: str
    workdir_key: str


def slug(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9.+~-]", "_", text)


def resolve_version(spec: str, versions: list[str]) -> str:
    """The Debian version ``spec`` names: an exact Debian version, or an upstream
    version prefix (``10.0``, ``11.1.3``), the newest match winning."""
    if spec in versions:
        return spec
    matches = [v for v in versions if version_prefix(spec, upstream_version(v))]
    if not matches:
        raise SourceUnavailable(f"no Debian source package of {PACKAGE} matches {spec!r}"
                                f" (the archive serves: {', '.join(versions) or 'none'})",
                                f"debian:{spec}")
    return max(matches, key=lambda v: (Version.parse(upstream_version(v)), "~bpo" not in v, v))


STALE_FILE = "stale-suites"  # suites whose stale source index the last update accepted


def source_apt() -> PrivateSourceApt:
    """The private deb-src apt shared by every source-package input (with the
    suites whose stale index the last update accepted)."""
    apt = PrivateSourceApt(cache_dir() / "apt-src")
    with contextlib.suppress(OSError):
        apt.accept_stale = set((apt.root / STALE_FILE).read_text().split())
    return apt


def refresh_sources(apt: PrivateSourceApt, suites: tuple[str, ...], force: bool = False) -> None:
    """Fetch the Sources indexes of ``suites`` when they are missing, older than
    a week, or ``force`` (call it holding the ``lock-src`` lock).

    Like the binary indexes (``qmpcompat.provision.indexes``), one suite at a
    time: a suite whose index is past its Valid-Until (a stale mirror) is used
    with a warning on stderr; one that cannot be used at all is left out with a
    warning, and only when no suite can be used is it an error."""
    indexes = list((apt.root / "lists").glob("*Sources*"))
    if indexes and not force and \
            time.time() - max(p.stat().st_mtime for p in indexes) <= INDEX_MAX_AGE:
        return
    # a suite's InRelease signs its binary and source indexes alike: stale in either, stale in both
    known = apt.accept_stale | {s for s, index in last_indexes().items() if index.stale}
    failed, stale = fetch(apt, suites, apt.source_update_output, known)
    apt.root.mkdir(parents=True, exist_ok=True)
    (apt.root / STALE_FILE).write_text("".join(f"{s}\n" for s in sorted(stale)))
    for suite in sorted(stale):
        print(f"qmpcompat: warning: the source index of {suite!r} is past its Valid-Until date"
              " (a stale mirror); using it anyway", file=sys.stderr)
    for suite, (kind, line) in sorted(failed.items()):
        print(f"qmpcompat: warning: the source index of {suite!r} cannot be used ({kind}):"
              f" {line}", file=sys.stderr)
    if len(failed) == len(set(suites)):
        raise SourceUnavailable("no suite's source index can be used: "
                                + "; ".join(f"{s}: {line}" for s, (_k, line) in failed.items()))


def debian_versions(suites: tuple[str, ...] = DEFAULT_SUITES) -> list[str]:
    """Every Debian version of the ``qemu`` source package ``suites`` serve."""
    apt = source_apt()
    with locked(cache_dir() / "lock-src"):
        refresh_sources(apt, suites)
    return apt.source_versions(PACKAGE, suites)


def debian_tree(version_spec: str, progress: Progress | None = None) -> SourceTree:
    """The unpacked (patched) tree of source package ``qemu`` ``version_spec``
    names; fetched and verified on first use, then kept in the cache."""
    version = resolve_version(version_spec, debian_versions())
    trees = cache_dir() / "source" / "trees"
    target = trees / f"debian-{slug(version)}"
    tree = SourceTree(f"debian:{version_spec}", target, f"debian-{version}",
                      "debian source", f"debian-{slug(version)}")
    if (target / "configure").is_file():
        return tree
    if not shutil.which("dpkg-source"):
        raise ProvisionError("dpkg-source is needed to unpack a Debian source package"
                             "\n  hint: apt-get install dpkg-dev")
    with locked(cache_dir() / "lock-src"):
        if (target / "configure").is_file():
            return tree
        trees.mkdir(parents=True, exist_ok=True)
        with temp_dir(trees, ".fetch-") as tmp:
            say(progress, f"fetch: downloading source package {PACKAGE} {version}")
            files = source_apt().source_download(PACKAGE, version, DEFAULT_SUITES, Path(tmp) / "dl")
            dsc = next((f for f in files if f.suffix == ".dsc"), None)
            if dsc is None:
                raise ProvisionError(f"the archive serves no .dsc for {PACKAGE} {version}")
            say(progress, f"unpack: {dsc.name} with Debian's patches")
            # The files' SHA256 were checked against the signed Sources index.
            proc = subprocess.run(["dpkg-source", "--no-check", "-x", "--", str(dsc),
                                   str(Path(tmp) / "tree")], capture_output=True, text=True,
                                  check=False, stdin=subprocess.DEVNULL)
            if proc.returncode != 0:
                raise ProvisionError(f"dpkg-source -x {dsc.name} failed: "
                                     f"{proc.stderr.strip()[-1000:]}")
            (Path(tmp) / "tree").rename(target)
    return tree


def _git(path: Path, *args: str) -> str:
    proc = subprocess.run(["git", "-C", str(path), *args], capture_output=True, check=False,
                          stdin=subprocess.DEVNULL)
    if proc.returncode != 0:
        raise ProvisionError(f"git {' '.join(args)} in {path} failed: "
                             f"{proc.stderr.decode(errors='replace').strip()}")
    return proc.stdout.decode(errors="surrogateescape")


def _git_identity(path: Path) -> tuple[str, str]:
    """(identity, label) of a git checkout: its commit, and a digest of its
    local changes (tracked and untracked, not ignored) when there are any."""
    commit = _git(path, "rev-parse", "HEAD").strip()
    status = _git(path, "status", "--porcelain", "--untracked-files=all")
    if not status.strip():
        return f"git-{commit}", f"git {commit[:7]}"
    digest = hashlib.sha256(_git(path, "diff", "HEAD", "--binary").encode(errors="surrogateescape"))
    for name in sorted(_git(path, "ls-files", "-z", "--others", "--exclude-standard").split("\0")):
        if name and (path / name).is_file():
            digest.update(name.encode() + b"\0" + (path / name).read_bytes())
    return f"git-{commit}-dirty-{digest.hexdigest()[:16]}", f"git {commit[:7]}, dirty"


def _tree_identity(path: Path) -> str:
    """A digest of a plain tree's file names, sizes and modification times."""
    digest = hashlib.sha256()
    for dirpath, dirnames, filenames in os.walk(path):
        dirnames[:] = sorted(d for d in dirnames if not d.startswith((".", "build")))
        for name in sorted(filenames):
            st = (Path(dirpath) / name).stat()
            digest.update(f"{Path(dirpath, name).relative_to(path)}\0{st.st_size}\0"
                          f"{st.st_mtime_ns}\n".encode(errors="surrogateescape"))
    return digest.hexdigest()[:16]


def local_tree(spec: str) -> SourceTree:
    """A QEMU source tree on disk (``spec`` is its path)."""
    path = Path(spec).expanduser().resolve()
    if not (path / "configure").is_file() or not (path / "qapi").is_dir():
        raise ProvisionError(f"{spec}: not a QEMU source tree (no configure and qapi/ in it)"
                             "\n  hint: name the top directory of a QEMU checkout, or "
                             "debian:VERSION")
    key = f"tree-{hashlib.sha256(str(path).encode()).hexdigest()[:12]}"
    if (path / ".git").exists():
        identity, label = _git_identity(path)
    else:
        identity, label = f"tree-{_tree_identity(path)}", "source tree"
    return SourceTree(spec, path, identity, label, key)


def source_tree(spec: str, progress: Progress | None = None) -> SourceTree:
    """The tree ``spec`` names: ``debian:VERSION`` or a path."""
    if spec.startswith("debian:"):
        return debian_tree(spec.removeprefix("debian:"), progress)
    return local_tree(spec)
