"""QEMU releases as libvirt recorded them: the ``libvirt:VERSION[:ARCH]`` input.

libvirt's source package carries one recorded QMP conversation per QEMU release
and architecture (``tests/qemucapabilitiesdata/caps_<version>_<arch>[+variant].replies``):
each command libvirt sent, followed by QEMU's reply. The reply to
``query-qmp-schema`` is that release's whole introspection, as QEMU gave it.

Every libvirt source version the Debian archive lists is fetched once through
the private deb-src apt (Release signatures and SHA256 sums checked, no root);
each replies file is reduced to its ``query-version``, ``query-target`` and
``query-qmp-schema`` replies and kept under ``CACHE/libvirt/<libvirt version>/``,
the tarballs are thrown away. ``CACHE/libvirt/index.json`` says which source
versions the archive lists, which it actually serves, and which QEMU release
each recording is (from its ``query-version`` reply, not its file name: a file
may hold a development snapshot). It is re-read after a week, like the other
package lists.
"""

from __future__ import annotations

import json
import re
import shutil
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import TypedDict

from qmpcompat.errors import AptError, SchemaError, SourceUnavailable
from qmpcompat.provision import DEFAULT_SUITES, cache_dir
from qmpcompat.provision.debian import INDEX_MAX_AGE, locked, upstream_version
from qmpcompat.provision.source_tree import refresh_sources, source_apt
from qmpcompat.reaper import temp_dir
from qmpcompat.schema.sources.debsrc import extract_matching, fetch_source
from qmpcompat.schema.sources.input import SchemaInput
from qmpcompat.types import JSON, JSONObject, Version, json_object, qemu_id, version_prefix

PACKAGE = "libvirt"
DEFAULT_ARCH = "x86_64"
INDEX_FORMAT = "qmpcompat-libvirt-index/1"
REPLIES_RE = re.compile(
    r"(?:^|/)(tests/qemucapabilitiesdata/caps_(\d+\.\d+\.\d+)[._]([A-Za-z0-9_]+)"
    r"(?:\+([A-Za-z0-9_]+))?\.replies)$")
SPEC_RE = re.compile(r"^(\d+(?:\.\d+){0,2})(?::([A-Za-z0-9_]+)(?:\+([A-Za-z0-9_]+))?)?$")


@dataclass(frozen=True)
class Recording:
    """One replies file: the QEMU release it recorded and where it came from."""

    qemu: str      # what query-version answered, MAJOR.MINOR.MICRO
    arch: str
    variant: str   # libvirt's "+variant" suffix ("" for the plain recording)
    file: str      # the path in libvirt's source tree
    libvirt: str   # the Debian version of the libvirt source package
    package: str   # query-version's "package" string
    path: str      # the reduced recording, relative to CACHE/libvirt

    @property
    def key(self) -> Version:
        return Version.parse(self.qemu)

    @property
    def development(self) -> bool:
        """True for a development snapshot between releases (micro 50 and up)."""
        return self.key[2] >= 50

    def describe(self) -> str:
        """``8.2.0 (libvirt 11.3.0-3+deb13u3, tests/.../caps_8.2.0_x86_64.replies)``."""
        return f"{self.qemu} (libvirt {self.libvirt}, {self.file})"


@dataclass(frozen=True)
class Package:
    """A libvirt source version the archive lists, and whether it serves its files."""

    version: str
    suites: tuple[str, ...]
    served: bool
    reason: str = ""


@dataclass
class Catalogue:
    """What the archive's libvirt source packages hold."""

    packages: list[Package]
    recordings: list[Recording]

    def available(self, arch: str = DEFAULT_ARCH, variant: str = "") -> list[Recording]:
        """The recordings of ``arch`` (and ``variant``), one per QEMU version (the
        newest libvirt's), oldest first."""
        best: dict[str, Recording] = {}
        for rec in self.recordings:
            if rec.arch != arch or rec.variant != variant:
                continue
            old = best.get(rec.qemu)
            if old is None or Version.parse(upstream_version(rec.libvirt)) > \
                    Version.parse(upstream_version(old.libvirt)):
                best[rec.qemu] = rec
        return sorted(best.values(), key=lambda r: r.key)

    def releases(self, arch: str = DEFAULT_ARCH) -> list[Recording]:
        """The plain recordings of released QEMU versions (no development snapshots)."""
        return [r for r in self.available(arch) if not r.development]

    def find(self, spec: str) -> Recording:
        """The recording ``VERSION[:ARCH[+VARIANT]]`` names: the version is matched
        component by component and the newest match wins. SourceUnavailable, listing
        what is available, when nothing matches."""
        match = SPEC_RE.match(spec)
        if match:
            arch, variant = match.group(2) or DEFAULT_ARCH, match.group(3) or ""
            found = [r for r in self.available(arch, variant) if version_prefix(match.group(1), r.qemu)]
            if match.group(1).count(".") < 2:
                found = [r for r in found if not r.development] or found
            if found:
                return found[-1]
        raise SourceUnavailable(self.unavailable(spec), f"libvirt:{spec}")

    def unavailable(self, spec: str) -> str:
        """The one message for a version (or architecture) nothing recorded."""
        match = SPEC_RE.match(spec)
        arch = (match.group(2) if match else None) or DEFAULT_ARCH
        have = self.available(arch)
        lines = [f"no libvirt recording of QEMU {spec!r} (give VERSION[:ARCH], e.g. 9.1.0 or"
                 f" 8.2.0:aarch64)"]
        lines.append(f"  recorded for {arch}: " + (", ".join(
            f"{r.qemu} (libvirt {upstream_version(r.libvirt)}"
            f"{', development snapshot' if r.development else ''})" for r in have) or "none"))
        archs = sorted({r.arch for r in self.recordings} - {arch})
        if archs:
            lines.append(f"  other architectures: {', '.join(archs)}")
        for pkg in self.packages:
            if not pkg.served:
                lines.append(f"  libvirt {pkg.version} ({', '.join(pkg.suites)}) is listed but"
                             f" not served: {pkg.reason}")
        return "\n".join(lines)


def parse_replies(text: str, source: str = "") -> list[tuple[str, JSONObject]]:
    """The (command, reply) pairs of a libvirt ``.replies`` text, in order: each
    reply belongs to the command sent just before it."""
    decoder = json.JSONDecoder()
    pairs: list[tuple[str, JSONObject]] = []
    command = ""
    pos = 0
    nonspace = re.compile(r"\S")
    while (found := nonspace.search(text, pos)) is not None:
        try:
            obj, pos = decoder.raw_decode(text, found.start())
        except json.JSONDecodeError as exc:
            raise SchemaError(f"not a libvirt replies file: {exc.msg}", source, exc.lineno) from exc
        if not isinstance(obj, dict):
            raise SchemaError("not a libvirt replies file: a value is not an object", source)
        if "execute" in obj:
            command = str(obj["execute"])
        elif command:
            pairs.append((command, obj))
            command = ""
    return pairs


class Reduced(TypedDict):
    """What a replies file records: the release, its package and architecture, and
    the introspected schema."""

    qemu: str
    package: str
    arch: str
    schema: list[JSON]


def reduce_replies(text: str, file: str) -> Reduced:
    """The release, architecture and schema a replies text records."""
    first: dict[str, JSONObject] = {}
    for command, reply in parse_replies(text, file):
        first.setdefault(command, reply)
    try:
        returned = json_object(first["query-version"]["return"])
        version = json_object(returned["qemu"])
        schema = first["query-qmp-schema"]["return"]
    except (KeyError, TypeError) as exc:
        raise SchemaError(f"no query-version or query-qmp-schema reply ({exc})", file) from exc
    if not isinstance(schema, list):
        raise SchemaError("the query-qmp-schema reply is not a list", file)
    target = first.get("query-target", {}).get("return", {})
    return {"qemu": f"{version['major']}.{version['minor']}.{version['micro']}",
            "package": str(returned.get("package", "")),
            "arch": str(target.get("arch", "")) if isinstance(target, dict) else "",
            "schema": schema}


def _extract(orig: Path, libvirt: str, dest: Path) -> list[Recording]:
    """Reduce every replies file of the orig tarball ``orig`` into ``dest``."""
    recordings = []
    with temp_dir(orig.parent, ".src-") as tmp:
        for path in extract_matching(orig, Path(tmp), ["*/tests/qemucapabilitiesdata/caps_*.replies"]):
            match = REPLIES_RE.search(path.relative_to(tmp).as_posix())
            if not match:
                continue
            file, _named, arch, variant = match.groups()
            reduced = reduce_replies(path.read_text(encoding="utf-8"), file)
            name = Path(file).stem + ".json"
            (dest / name).write_text(json.dumps(reduced, separators=(",", ":")))
            recordings.append(Recording(reduced["qemu"], arch, variant or "", file, libvirt,
                                        reduced["package"], f"{dest.name}/{name}"))
    if not recordings:
        raise SchemaError("the orig tarball has no tests/qemucapabilitiesdata/*.replies",
                          str(orig))
    return recordings


def _root() -> Path:
    return cache_dir() / "libvirt"


def _fetch(upstream: str, versions: list[str], suites: tuple[str, ...]) -> list[Recording]:
    """The recordings of libvirt ``upstream`` (from the cache, else from the first
    of its Debian ``versions`` the archive serves)."""
    done = _root() / upstream / "recordings.json"
    if done.exists():
        return [Recording(**r) for r in json.loads(done.read_text())]
    apt = source_apt()
    error: SourceUnavailable | None = None
    for version in versions:
        with temp_dir(cache_dir(), ".src-") as tmp:
            try:
                files = fetch_source(apt, PACKAGE, version, suites, Path(tmp) / "dl",
                                     f"libvirt {version}")
            except SourceUnavailable as exc:
                error = exc
                continue
            origs = [f for f in files if re.search(r"\.orig\.tar\.\w+$", f.name)]
            if not origs:
                raise SchemaError(f"source package {PACKAGE}={version} has no orig tarball")
            staging = Path(tmp) / upstream
            staging.mkdir()
            found = _extract(origs[0], version, staging)
            (staging / "recordings.json").write_text(json.dumps([asdict(r) for r in found]))
            if done.parent.exists():
                shutil.rmtree(done.parent)
            _root().mkdir(parents=True, exist_ok=True)
            staging.rename(done.parent)
            return found
    assert error is not None
    raise error


def _read_index(path: Path, max_age: float = INDEX_MAX_AGE) -> Catalogue | None:
    try:
        data = json.loads(path.read_text())
    except (OSError, ValueError):
        return None
    if not isinstance(data, dict) or data.get("format") != INDEX_FORMAT:
        return None
    if time.time() - float(data.get("updated", 0)) > max_age:
        return None
    return Catalogue([Package(p["version"], tuple(p["suites"]), p["served"], p["reason"])
                      for p in data["packages"]],
                     [Recording(**r) for r in data["recordings"]])


def catalogue(suites: tuple[str, ...] = DEFAULT_SUITES, refresh: bool = False) -> Catalogue:
    """Every recording of every libvirt source version the archive serves
    (downloaded on first use; the list is re-read after a week or with ``refresh``)."""
    index = _root() / "index.json"
    known = None if refresh else _read_index(index)
    if known is not None:
        return known
    with locked(cache_dir() / "lock-src"):  # the source lists are updated alone
        apt = source_apt()
        try:
            refresh_sources(apt, suites, refresh)
            listed = apt.source_suites(PACKAGE, suites)
        except (AptError, SourceUnavailable):
            stale = _read_index(index, float("inf"))
            if stale is None:
                raise
            return stale  # the archive cannot be reached: the last list will do
    # read (shared: QEMU's source packages are fetched beside it), the catalogue made alone
    with locked(cache_dir() / "lock-src", shared=True), locked(_root() / ".lock-catalogue"):
        known = None if refresh else _read_index(index)
        if known is not None:
            return known  # made meanwhile by another process
        by_upstream: dict[str, list[str]] = {}
        for version in sorted(listed, key=lambda v: ("~bpo" in v, v)):
            by_upstream.setdefault(upstream_version(version), []).append(version)
        packages, recordings = [], []
        for upstream, versions in by_upstream.items():
            try:
                found = _fetch(upstream, versions, suites)
            except (SourceUnavailable, AptError) as exc:
                packages += [Package(v, tuple(listed[v]), False, str(exc).split(": ", 1)[-1])
                             for v in versions]
                continue
            served = {r.libvirt for r in found}
            packages += [Package(v, tuple(listed[v]), True,
                                 "" if v in served else f"same files as {', '.join(served)}")
                         for v in versions]
            recordings += found
        result = Catalogue(packages, recordings)
        index.parent.mkdir(parents=True, exist_ok=True)
        index.write_text(json.dumps({"format": INDEX_FORMAT, "updated": time.time(),
                                     "packages": [asdict(p) for p in packages],
                                     "recordings": [asdict(r) for r in recordings]}, indent=1))
    return result


def recorded_schema(rec: Recording) -> SchemaInput:
    """The schema of a recording, as an input like any other."""
    try:
        data = json.loads((_root() / rec.path).read_text())
    except (OSError, ValueError) as exc:
        raise SchemaError(f"cached recording unreadable ({exc}); rerun to fetch it again",
                          str(_root() / rec.path)) from exc
    suffix = "" if rec.arch == DEFAULT_ARCH and not rec.variant else \
        f"-{rec.arch}" + (f"+{rec.variant}" if rec.variant else "")
    source: JSONObject = {"kind": "recorded", "libvirt": rec.libvirt, "file": rec.file,
              "package": rec.package}
    return SchemaInput(f"libvirt:{rec.qemu}:{rec.arch}" + (f"+{rec.variant}" if rec.variant else ""),
                       f"{qemu_id(rec.qemu)}{suffix}", "recorded", data["schema"], rec.qemu,
                       {"source": source})


def from_libvirt(spec: str) -> SchemaInput:
    """The schema of the QEMU release ``spec`` (``VERSION[:ARCH]``) names, as
    the newest libvirt that recorded it gives it."""
    return recorded_schema(catalogue().find(spec))
