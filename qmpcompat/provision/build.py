"""A runnable QEMU: where it is, how to start it, and what version it says it is."""

from __future__ import annotations

import json
import os
import re
import subprocess
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path

from qmpcompat.errors import BinaryError
from qmpcompat.provision.provenance import Provenance, Supplement, compiled_dirs, inside
from qmpcompat.resultdoc import BinaryJSON
from qmpcompat.types import JSONObject, Version

# "QEMU emulator version 10.0.2 (Debian 1:10.0.2+ds-2+deb13u1~bpo12+1)"
_VERSION_RE = re.compile(r"QEMU emulator version (\d+)\.(\d+)\.(\d+)\S*(?: \((.*)\))?")

MANIFEST = "build.json"


@dataclass(frozen=True)
class QemuBuild:
    """One QEMU binary and everything needed to start it on this host.

    ``command()`` gives the argv prefix: for a provisioned build that is the
    build's own dynamic loader with its library path, so a newer Debian build
    runs on an older host; for a user's binary it is the binary itself.

    ``host_dirs`` are the module and firmware dirs compiled into a provisioned
    or foreign build that lie outside its own tree: the harness hides those
    that exist on the host from it (``qmpcompat.harness.isolation``); a binary
    used in place has none (its compiled-in dirs are its own). ``added`` is
    what a foreign build was given to run here; ``provenance`` what its
    self-check saw (``qmpcompat.selfcheck``); ``arch`` the target it says it
    emulates (``query-target``); ``program`` the argv[0] QEMU runs as when
    ``binary`` is a wrapper that executes it ("" when it is ``binary``).
    """

    binary: str
    version: Version
    version_line: str
    package: str = ""
    origin: str = "path"
    loader: str = ""
    library_path: str = ""
    env: dict[str, str] = field(default_factory=dict)
    data_dirs: tuple[str, ...] = ()
    run_label: str = ""  # set when two builds of a run share a version
    # What the build can do, probed before a run (qmpcompat.harness.features).
    features: tuple[str, ...] = ()
    features_probed: bool = False
    # How the run asked for it, before it had it (e.g. ``debian 1:10.0.13+ds-0+deb13u1 x86_64``):
    # the build's key in a shard plan (qmpcompat.shard), the same on every machine.
    request: str = ""
    host_dirs: tuple[str, ...] = ()
    distribution: str = ""  # e.g. "Ubuntu 24.04 LTS", for a build whose origin says so
    added: tuple[Supplement, ...] = ()
    arch: str = ""
    program: str = ""
    provenance: Provenance | None = None

    @property
    def version_str(self) -> str:
        return Version(*self.version).label

    @property
    def label(self) -> str:
        """Short, unique-per-run name used in test ids and reports (e.g. ``10.0.2``)."""
        return self.run_label or self.version_str

    @property
    def target(self) -> str:
        """The target the binary emulates, e.g. ``x86_64``: what it answered to
        ``query-target`` once asked, else read from a ``qemu-system-*`` name."""
        if self.arch:
            return self.arch
        name = Path(self.binary).name
        return name.removeprefix("qemu-system-") if name.startswith("qemu-system-") else name

    def own_dirs(self) -> tuple[str, ...]:
        """The directories of the build's own tree: its binary's, its loader's,
        its library path, its module dir, its ``-L`` dirs and what it was given."""
        dirs = [str(Path(self.binary).parent), *self.library_path.split(":"), *self.data_dirs,
                *(p for k, p in self.env.items() if k == "QEMU_MODULE_DIR"),
                *(a.path for a in self.added)]
        if self.loader:
            dirs.append(str(Path(self.loader).parent))
        return tuple(dict.fromkeys(d for d in dirs if d))

    def command(self) -> list[str]:
        """argv prefix that runs this QEMU (add QEMU's own arguments after it)."""
        argv = [self.loader, "--library-path", self.library_path] if self.loader else []
        argv.append(self.binary)
        for d in self.data_dirs:
            argv += ["-L", d]
        return argv

    def environ(self) -> dict[str, str]:
        """Environment to start the binary with (the caller's, plus the build's own)."""
        env = dict(os.environ)
        env.update(self.env)
        return env

    @property
    def package_text(self) -> str:
        """What it is, as a packager would say: ``Debian 1:10.0.13+ds-0+deb13u1``, or
        with a known distribution ``Ubuntu 24.04 LTS 1:8.2.2+ds-0ubuntu1.16`` (an
        Ubuntu build calls its package version "Debian ..." too)."""
        return package_text(self.package, self.distribution)

    def describe(self) -> str:
        extra = f", {self.origin}" if self.origin != "path" else ""
        return f"QEMU {self.version_str} ({self.package_text}{extra}): {self.binary}"

    def to_json(self) -> BinaryJSON:
        """Every field, in field order (``from_json`` reads it back)."""
        out: BinaryJSON = {
            "binary": self.binary, "version": self.version_str, "version_line": self.version_line,
            "package": self.package, "origin": self.origin, "loader": self.loader,
            "library_path": self.library_path, "env": dict(self.env),
            "data_dirs": list(self.data_dirs), "run_label": self.run_label,
            "features": list(self.features), "features_probed": self.features_probed,
            "host_dirs": list(self.host_dirs), "distribution": self.distribution,
            "added": [a.to_json() for a in self.added], "arch": self.arch,
            "program": self.program, "request": self.request}
        if self.provenance is not None:
            out["provenance"] = self.provenance.to_json()
        return out

    @classmethod
    def from_json(cls, data: Mapping[str, object]) -> QemuBuild:
        raw = dict(data)
        raw["version"] = Version.parse(str(raw["version"]))
        for key in ("data_dirs", "features", "host_dirs"):
            value = raw.get(key)
            raw[key] = tuple(str(v) for v in value) if isinstance(value, list | tuple) else ()
        raw["added"] = tuple(Supplement.from_json(a) for a in _objects(raw.get("added")))
        prov = raw.get("provenance")
        raw["provenance"] = Provenance.from_json(prov) if isinstance(prov, dict) else None
        return cls(**raw)  # type: ignore[arg-type]


def _objects(value: object) -> list[JSONObject]:
    return [v for v in value if isinstance(v, dict)] if isinstance(value, list) else []


def package_text(package: str, distribution: str = "") -> str:
    """What a build is, as a packager would say (``QemuBuild.package_text``), from
    its package string and distribution (a build's record has both)."""
    if distribution:
        return f"{distribution} {package.removeprefix('Debian ')}".strip()
    return package or "unpackaged"


def probe_version(argv: list[str], env: dict[str, str], shown: str,
                  timeout: float = 20.0) -> tuple[Version, str, str]:
    """Run ``QEMU --version``; return (version, first line, package string).

    Raises BinaryError when the binary does not run or does not say it is QEMU.
    """
    try:
        proc = subprocess.run([*argv, "--version"], env=env, capture_output=True, text=True,
                              timeout=timeout, check=False, stdin=subprocess.DEVNULL)
    except FileNotFoundError as exc:
        raise BinaryError(shown, "no such file",
                          "pass the path of a qemu-system-* binary (e.g. build/qemu-system-x86_64)") from exc
    except PermissionError as exc:
        raise BinaryError(shown, "not executable", f"chmod +x {shown}, or name another binary") from exc
    except OSError as exc:
        raise BinaryError(shown, f"cannot be run: {exc.strerror}",
                          "name a qemu-system-* binary built for this host") from exc
    except subprocess.TimeoutExpired as exc:
        raise BinaryError(shown, f"`--version` did not finish within {timeout:g}s",
                          "this does not behave like QEMU; name a qemu-system-* binary") from exc
    first = (proc.stdout.strip().splitlines() or [""])[0]
    match = _VERSION_RE.search(first)
    if proc.returncode != 0 or not match:
        said = (first or proc.stderr.strip()[-300:] or f"exit status {proc.returncode}")
        raise BinaryError(shown, f"is not QEMU (`--version` said: {said!r})",
                          "name a qemu-system-* binary (e.g. build/qemu-system-x86_64)")
    version = Version(int(match.group(1)), int(match.group(2)), int(match.group(3)))
    return version, first, match.group(4) or ""


def build_from_path(path: str, timeout: float = 20.0) -> QemuBuild:
    """A QemuBuild for a binary the user named (a build dir's qemu-system-*, say);
    its ``--version`` must answer within ``timeout`` seconds."""
    resolved = Path(path).expanduser()
    if not resolved.exists():
        raise BinaryError(path, "no such file",
                          "pass the path of a qemu-system-* binary (e.g. build/qemu-system-x86_64)")
    if resolved.is_dir():
        raise BinaryError(path, "is a directory", "name the qemu-system-* binary inside it")
    if not os.access(resolved, os.X_OK):
        raise BinaryError(path, "not executable", f"chmod +x {path}, or name another binary")
    binary = str(resolved.resolve())
    version, line, package = probe_version([binary], dict(os.environ), path, timeout)
    return QemuBuild(binary=binary, version=version, version_line=line, package=package)


def _rebase(data: dict[str, object], old: str, new: str) -> dict[str, object]:
    """``data`` with every path under ``old`` moved under ``new``."""
    def move(path: str) -> str:
        return new + path[len(old):] if path == old or path.startswith(old + "/") else path

    out = dict(data)
    for key in ("binary", "loader", "program"):
        out[key] = move(str(out.get(key) or "")) if out.get(key) else out.get(key, "")
    out["added"] = [{**a, "path": move(str(a.get("path", "")))} for a in _objects(out.get("added"))]
    out["library_path"] = ":".join(move(p) for p in str(out.get("library_path") or "").split(":")
                                   if p)
    out["env"] = {k: move(str(v)) for k, v in dict(out.get("env") or {}).items()}  # type: ignore[call-overload]
    out["data_dirs"] = [move(str(d)) for d in list(out.get("data_dirs") or [])]  # type: ignore[call-overload]
    return out


def moved(build: QemuBuild, old: Path, new: Path) -> QemuBuild:
    """``build`` with every path under ``old`` moved under ``new`` (a staged
    cache entry, described where it was made, as it will be)."""
    return QemuBuild.from_json(_rebase(dict(build.to_json()), str(old), str(new)))


def with_host_dirs(build: QemuBuild) -> QemuBuild:
    """``build`` with ``host_dirs`` read from its binary when it has none yet."""
    if build.host_dirs:
        return build
    return replace(build, host_dirs=compiled_dirs(Path(build.binary)))


def write_manifest(prefix: Path, build: QemuBuild, final: Path | None = None) -> None:
    """Record ``build`` in ``prefix/build.json`` (never what a run found out, its
    ``provenance``);
    ``final`` is where the tree will live (its paths are recorded relative to
    it, so a copied cache stays whole)."""
    data = {**replace(build, provenance=None).to_json(), "prefix": str(final or prefix)}
    (prefix / MANIFEST).write_text(json.dumps(data, indent=1))


def load_manifest(prefix: Path, outside: tuple[str, ...] = ()) -> QemuBuild | None:
    """The build recorded in ``prefix/build.json``, or None if there is none.

    Paths are taken relative to where the tree is now: a cache that was copied
    or moved runs its own files, never the original cache's. A manifest that
    names files outside its own tree (and the dirs of ``outside``: a foreign
    binary used where it is) is not trusted (None). A manifest written before
    builds recorded their ``host_dirs`` gets them from its binary.
    """
    try:
        data = json.loads((prefix / MANIFEST).read_text())
    except (OSError, ValueError):
        return None
    if not isinstance(data, dict) or "binary" not in data:
        return None
    here = str(prefix.resolve())
    recorded = str(data.pop("prefix", "") or Path(str(data["binary"])).parents[2])
    data = _rebase(data, recorded.rstrip("/"), here)
    build = QemuBuild.from_json(data)
    paths = [build.binary, build.loader, *build.data_dirs,
             *build.library_path.split(":"), *build.env.values(), *(a.path for a in build.added)]
    if any(p and not inside(p, (here, *outside)) for p in paths):
        return None
    return with_host_dirs(build) if Path(build.binary).exists() else None


def manifest_of(binary: Path) -> QemuBuild | None:
    """The cached build whose binary ``binary`` is (a Debian build's unpacked
    tree, ``PREFIX/usr/bin/qemu-system-*``, or a source build's store,
    ``STORE/qemu-system-*``), or None for a binary no cache entry records."""
    resolved = binary.resolve()
    for prefix in (binary.parent, *binary.parents[1:3]):
        build = load_manifest(prefix)
        if build is not None and Path(build.binary).resolve() == resolved:
            return build
    return None
