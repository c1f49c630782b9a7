"""The QAPI schema of a Debian ``qemu`` source package, fetched without root.

A private apt with deb-src lines downloads (and verifies) the source package;
the ``qapi/`` directory of its orig tarball is kept under the qmpcompat cache
(``CACHE/qapi-src/VERSION/qapi``), with QEMU's deprecation documents
(``docs/about/deprecated.rst`` and ``removed-features.rst``, in
``CACHE/qapi-src/VERSION/docs``), and the tarballs are thrown away.
"""

from __future__ import annotations

import re
import shutil
import subprocess
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from urllib.parse import unquote

from qmpcompat.errors import AptError, SchemaError, SourceUnavailable
from qmpcompat.provision import DEFAULT_SUITES, cache_dir
from qmpcompat.provision.apt import PrivateSourceApt
from qmpcompat.provision.debian import locked
from qmpcompat.provision.source_tree import refresh_sources, resolve_version, source_apt
from qmpcompat.reaper import temp_dir

PACKAGE = "qemu"


def fetch_source(apt: PrivateSourceApt, package: str, version: str, suites: tuple[str, ...],
                 dest: Path, spec: str) -> list[Path]:
    """Download and verify the files of ``package=version`` into ``dest``;
    SourceUnavailable (naming the input ``spec``) when the archive serves none."""
    try:
        return apt.source_download(package, version, suites, dest)
    except AptError as exc:
        missing = re.findall(r"Failed to fetch \S+/(\S+)\s+404", exc.output)
        why = (f"the archive serves none of {', '.join(map(unquote, missing))}"
               if missing else str(exc))
        raise SourceUnavailable(f"cannot fetch source package {package}={version}: {why}",
                                spec) from exc


@contextmanager
def _filling(version: str) -> Iterator[None]:
    """Held while a version's entry is filled: the source lists are read (shared:
    versions are fetched side by side; an update of the lists waits), the entry
    is filled by one process alone."""
    entry = _version_dir(version)
    with locked(cache_dir() / "lock-src", shared=True), \
            locked(entry.with_name(f".lock-{entry.name}")):
        yield


def _version_dir(version: str) -> Path:
    return cache_dir() / "qapi-src" / re.sub(r"[^A-Za-z0-9.+~-]", "_", version)


DOCS = ("deprecated.rst", "removed-features.rst")  # docs/about/ files kept beside qapi/


# What GNU tar says of a pattern that names nothing (not an error here).
_UNMATCHED = re.compile(r"Not found in archive|Exiting with failure status due to previous errors")


def extract_matching(archive: Path, dest: Path, patterns: Sequence[str]) -> list[Path]:
    """Extract the members of ``archive`` whose names match one of the shell
    ``patterns`` (a ``*`` never matches a ``/``) into ``dest``, and return the
    regular files extracted, sorted. GNU tar reads a compressed tarball at C
    speed, where Python's tarfile would parse every one of its headers. A
    pattern that matches nothing is not an error; SchemaError for an archive
    that does not read."""
    dest.mkdir(parents=True, exist_ok=True)
    proc = subprocess.run(["tar", "-x", "-f", str(archive), "-C", str(dest), "--no-same-owner",
                           "--no-same-permissions", "--wildcards", "--no-wildcards-match-slash",
                           "--", *patterns], capture_output=True, text=True, check=False)
    said = [line for line in proc.stderr.splitlines() if line.strip() and not _UNMATCHED.search(line)]
    if proc.returncode != 0 and (said or proc.returncode != 2):
        why = said[0].removeprefix("tar: ") if said else f"exit status {proc.returncode}"
        raise SchemaError(f"tar cannot read it: {why}", str(archive))
    return sorted(p for p in dest.rglob("*") if p.is_file() and not p.is_symlink())


def _extract(orig: Path, qapi: Path | None, docs: Path) -> None:
    """Copy the ``qapi/*.json`` files of the orig tarball ``orig`` into ``qapi``
    (unless None) and its ``docs/about/`` deprecation documents into ``docs``."""
    docs.mkdir(parents=True, exist_ok=True)
    wanted = [f"*/docs/about/{name}" for name in DOCS] + (["*/qapi/*.json"] if qapi else [])
    found = 0
    with temp_dir(orig.parent, ".src-") as tmp:
        for path in extract_matching(orig, Path(tmp), wanted):
            parts = path.relative_to(tmp).parts
            where = qapi / parts[2] if qapi is not None and parts[1] == "qapi" else docs / parts[-1]
            path.rename(where)
            found += where.parent == qapi
    if qapi is not None and not found:
        raise SchemaError("the orig tarball has no qapi/*.json", str(orig))


def _orig(apt: PrivateSourceApt, version: str, suites: tuple[str, ...], spec: str,
          tmp: Path) -> Path:
    """The downloaded (and verified) orig tarball of ``qemu=version``."""
    files = fetch_source(apt, PACKAGE, version, suites, tmp / "dl", f"debian:{spec}")
    origs = [f for f in files if ".orig.tar" in f.name]
    if not origs:
        raise SchemaError(f"source package {PACKAGE}={version} has no orig tarball")
    return origs[0]


def source_version(package: str) -> str:
    """The source version of a binary package's version string (``Debian
    1:7.2+dfsg-7+deb12u18+b3`` -> ``1:7.2+dfsg-7+deb12u18``: binNMUs share the source)."""
    return re.sub(r"\+b\d+$", "", package.removeprefix("Debian ").strip())


def debian_qapi_dir(spec: str, suites: tuple[str, ...] = DEFAULT_SUITES) -> tuple[Path, str]:
    """The cached ``qapi/`` dir of the source package ``spec`` names, and its
    Debian version; downloads it on first use."""
    apt = source_apt()
    for known in sorted((cache_dir() / "qapi-src").glob("*/qapi")):
        version = known.parent.name
        if spec in (version, version.replace("_", ":")):
            return known, version.replace("_", ":", 1) if version[:2] == "1_" else version
    with locked(cache_dir() / "lock-src"):
        refresh_sources(apt, suites)
        version = resolve_version(spec, apt.source_versions(PACKAGE, suites))
    target = _version_dir(version) / "qapi"
    with _filling(version):
        if target.is_dir():
            return target, version
        with temp_dir(cache_dir(), ".src-") as tmp:
            orig = _orig(apt, version, suites, spec, Path(tmp))
            staging = Path(tmp) / "qapi"
            staging.mkdir()
            _extract(orig, staging, Path(tmp) / "docs")
            target.parent.mkdir(parents=True, exist_ok=True)
            for done, where in ((Path(tmp) / "docs", target.parent / "docs"), (staging, target)):
                if where.exists():
                    shutil.rmtree(where)
                done.rename(where)
    return target, version


def debian_docs_dir(spec: str, suites: tuple[str, ...] = DEFAULT_SUITES) -> tuple[Path, str]:
    """The cached ``docs/about/`` deprecation documents (``DOCS``) of the source
    package ``spec`` names, and its Debian version; fetched on first use."""
    qapi, version = debian_qapi_dir(spec, suites)
    docs = qapi.parent / "docs"
    if docs.is_dir():
        return docs, version
    with _filling(version):
        if not docs.is_dir():
            with temp_dir(cache_dir(), ".src-") as tmp:
                _extract(_orig(source_apt(), version, suites, spec, Path(tmp)), None,
                         Path(tmp) / "docs")
                (Path(tmp) / "docs").rename(docs)
    return docs, version
