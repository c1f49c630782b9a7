"""What a foreign QEMU binary needs to run here, found and supplied without root.

A binary built elsewhere (an Ubuntu build in a wheel, a tarball) may ask for
more than this host has:

- a newer glibc than the host's (its ELF's version needs, ``qmpcompat.provision.elf``):
  supplied as the ``libc6`` package (with its loader) of the first Debian suite
  that serves a new enough one; the build then runs through that loader;
- its modules (TCG, for one, may be a module): the directory next to it whose
  ``.so`` files carry the binary's build stamp (``qemu_stamp_...``) becomes
  ``QEMU_MODULE_DIR``;
- firmware it does not ship (option ROMs such as ``kvmvapic.bin`` and
  ``multiboot_dma.bin``): Debian's ``qemu-system-data`` and ``seabios`` of the
  suite whose QEMU is nearest below the binary's version (else the nearest
  above) are added as ``-L`` directories after its own, so its own files
  always win and the added ones only fill gaps.

Packages come through the private apt (signatures checked, see
``qmpcompat.provision.apt``) and are unpacked with ``dpkg-deb -x``. A part that
another finished entry of the same cache already holds (the same packages at
the same versions: its dir's name says which) is hard-linked from there instead
(copied where links fail), so each entry stays whole on its own. Each part
added is recorded as a ``Supplement``: what, from which package and suite,
which files.
"""

from __future__ import annotations

import os
import re
import shutil
from collections.abc import Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from qmpcompat.errors import ProvisionError
from qmpcompat.provision.build import MANIFEST
from qmpcompat.provision.debian import (
    DEFAULT_SUITES,
    FIRMWARE_PACKAGES,
    LIBC_PACKAGE,
    LOADERS,
    LOOKED_UP,
    DebianProvisioner,
    Progress,
    say,
    unpack,
    upstream_version,
)
from qmpcompat.provision.elf import glibc_needed, host_glibc, needs
from qmpcompat.provision.provenance import Supplement
from qmpcompat.reaper import temp_dir
from qmpcompat.types import Version

_STAMP = re.compile(rb"qemu_stamp_[0-9a-f]{8,}")
_MODULE = re.compile(r"^(accel|audio|block|chardev|hw|ui)-[\w-]+\.so$")
_FIRMWARE = re.compile(r"\.(bin|rom|img|fd|dtb|lid)$|^(openbios|palcode|slof|u-boot|qboot)")
_WALK_LIMIT = 2000  # directories looked at under a root (a binary in $HOME, say)
FIRMWARE_DIRS = ("usr/share/qemu", "usr/share/seabios")
# Where to look for a newer glibc: stable first, so the oldest one new enough is taken.
LIBC_SUITES = ("bookworm", "trixie", "forky", "sid")


def _version_tuple(debian_version: str) -> tuple[int, ...]:
    return tuple(int(x) for x in re.findall(r"\d+", upstream_version(debian_version))[:3])


def stamp(binary: Path) -> bytes | None:
    """The binary's module build stamp (modules of the same build export it);
    None for a build without modules."""
    try:
        found = _STAMP.search(binary.read_bytes())
    except OSError:
        return None
    return found.group(0) if found else None


def _walk(root: Path, depth: int) -> Iterator[tuple[str, list[str], list[str]]]:
    """``os.walk`` of ``root``, sorted, ``depth`` levels deep, at most
    ``_WALK_LIMIT`` directories."""
    for seen, (dirpath, dirnames, filenames) in enumerate(os.walk(root)):
        dirnames.sort()
        if seen >= _WALK_LIMIT:
            return
        if len(Path(dirpath).relative_to(root).parts) >= depth:
            dirnames[:] = []
        yield dirpath, dirnames, filenames


def module_dir(binary: Path, roots: Sequence[Path]) -> Path | None:
    """The directory under ``roots`` (depth 3) holding modules of ``binary``'s
    own build (their files carry its stamp); None when it has no modules or
    none is found."""
    mark = stamp(binary)
    if mark is None:
        return None
    for root in roots:
        for dirpath, _dirnames, filenames in _walk(root, 3):
            mods = [f for f in filenames if _MODULE.match(f)]
            if mods and any(mark in (Path(dirpath) / f).read_bytes() for f in mods[:3]):
                return Path(dirpath)
    return None


def firmware_dirs(roots: Sequence[Path]) -> list[Path]:
    """The directories under ``roots`` (depth 4) that hold QEMU firmware
    (``bios-256k.bin``, option ROMs ...), in walk order."""
    out: list[Path] = []
    for root in roots:
        for dirpath, _dirnames, filenames in _walk(root, 4):
            if sum(1 for f in filenames if _FIRMWARE.search(f)) >= 2 or "bios-256k.bin" in filenames:
                out.append(Path(dirpath))
    return out


def _link_file(src: str, dst: str) -> None:
    try:
        os.link(src, dst)
    except OSError:  # another file system, or links refused
        shutil.copy2(src, dst)


def _link_from_sibling(root: Path, name: str, staging: Path) -> Path | None:
    """Fill ``staging`` with the part ``name`` of a finished entry under ``root``
    (one with its manifest; staged ones start with a dot), its files hard-linked
    and its (relative) symlinks kept; the entry it came from, None when no entry
    holds it."""
    for entry in sorted(root.iterdir()):
        part = entry / name
        if not entry.name.startswith(".") and (entry / MANIFEST).is_file() and part.is_dir():
            shutil.copytree(part, staging, symlinks=True, copy_function=_link_file)
            return entry
    return None


def _slug(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9.+~-]", "_", text)


class Supplier:
    """Supplies what a foreign binary lacks from Debian packages, into ``entry``
    (its cache entry): ``libc-SUITE-VERSION/`` and ``firmware-SUITE-VERSION/``."""

    def __init__(self, entry: Path, cache: Path | None = None,
                 progress: Progress | None = None) -> None:
        self.entry, self.progress = entry, progress
        self.debian = DebianProvisioner(cache, progress)
        self._looked_up = False

    def _candidates(self, suites: Sequence[str], packages: Sequence[str]) -> list[dict[str, str | None]]:
        """What each of ``suites`` serves of ``packages`` (one look at each suite's
        lists, all at once)."""
        if not self._looked_up:  # the archive's lists, as fresh as provisioning keeps them
            self.debian.resolve(DEFAULT_SUITES)
            self._looked_up = True
        # all that a look-up asks for: the other question then needs no apt-cache run
        ask = tuple(dict.fromkeys([*packages, *LOOKED_UP]))
        with ThreadPoolExecutor(len(suites)) as pool:
            found = list(pool.map(lambda suite: self.debian.apt.candidates(suite, ask), suites))
        return [{p: answer[p] for p in packages} for answer in found]

    def _fetch(self, suite: str, packages: Sequence[tuple[str, str]], dest: Path) -> None:
        with temp_dir(self.entry.parent, ".dl-") as tmp:
            staging = tmp / "root"
            sibling = _link_from_sibling(self.entry.parent, dest.name, staging)
            if sibling is not None:
                say(self.progress, f"  nothing to fetch: {dest.name} linked from {sibling}")
            else:
                debs: list[Path] = []
                for package, version in packages:
                    debs += self.debian.apt.download(suite, package, version, tmp / package)
                unpack(debs, staging)
            staging.rename(dest)

    def glibc(self, binary: Path) -> tuple[str, list[str], Supplement] | None:
        """A loader and library dirs with a glibc new enough for ``binary``, when
        the host's is too old: (loader, library dirs, what was added); None when
        the host's glibc will do (or ``binary`` is no ELF read here)."""
        wanted = glibc_needed(binary)
        have = host_glibc()
        if not wanted or (have and wanted <= have):
            return None
        need = ".".join(map(str, wanted))
        served = zip(LIBC_SUITES, self._candidates(LIBC_SUITES, [LIBC_PACKAGE]), strict=True)
        new_enough = [(suite, v) for suite, found in served
                      if (v := found[LIBC_PACKAGE]) and _version_tuple(v) >= wanted]
        if not new_enough:
            raise ProvisionError(f"{binary} needs glibc {need}; no Debian suite of "
                                 f"{', '.join(LIBC_SUITES)} serves one")
        suite, version = new_enough[0]
        dest = self.entry / _slug(f"libc-{suite}-{version}")
        if not dest.is_dir():
            say(self.progress, f"{binary.name} needs glibc {need} (this host has "
                 f"{'.'.join(map(str, have)) or 'none'}): adding libc6 {version} from {suite}")
            self._fetch(suite, [(LIBC_PACKAGE, version)], dest)
        triplet, loader_name = LOADERS.get(self.debian.apt.arch, LOADERS["amd64"])
        libdirs = [dest / d for d in (f"usr/lib/{triplet}", f"lib/{triplet}") if (dest / d).is_dir()]
        loader = next((d / loader_name for d in libdirs if (d / loader_name).exists()), None)
        if loader is None:
            raise ProvisionError(f"libc6 {version} from {suite} unpacked without {loader_name}")
        files = sorted(p.name for d in libdirs for p in d.iterdir() if ".so" in p.name)
        added = Supplement(f"glibc {'.'.join(map(str, _version_tuple(version)[:2]))} "
                           "(loader and C library)", f"Debian libc6 {version} ({suite})",
                           str(dest), tuple(files))
        return str(loader), [str(d) for d in libdirs], added

    def firmware_suite(self, version: Version) -> tuple[str, dict[str, str]]:
        """The suite whose qemu-system-data is nearest below ``version`` (else the
        nearest above), with the versions of ``FIRMWARE_PACKAGES`` it serves."""
        offers = []
        for suite, found in zip(DEFAULT_SUITES, self._candidates(DEFAULT_SUITES, FIRMWARE_PACKAGES),
                                strict=True):
            data = found["qemu-system-data"]
            if data and all(found.values()):
                offers.append((_version_tuple(data), suite, {k: str(v) for k, v in found.items()}))
        if not offers:
            raise ProvisionError("no Debian suite serves qemu-system-data and seabios")
        below = [o for o in offers if o[0] <= tuple(version)]
        _v, suite, versions = max(below) if below else min(offers)
        return suite, versions

    def firmware(self, version: Version, own: Sequence[Path]) -> tuple[list[str], Supplement] | None:
        """Debian's firmware dirs to search after ``own`` (the binary's firmware
        dirs) and what they add (the files ``own`` lacks); None when they add
        nothing."""
        suite, versions = self.firmware_suite(version)
        dest = self.entry / _slug(f"firmware-{suite}-{versions['qemu-system-data']}")
        if not dest.is_dir():
            say(self.progress, "adding the firmware it lacks from Debian "
                 + " and ".join(f"{p} {v}" for p, v in versions.items()) + f" ({suite})")
            self._fetch(suite, list(versions.items()), dest)
        dirs = [dest / d for d in FIRMWARE_DIRS if (dest / d).is_dir()]
        have = {p.name for d in own for p in d.iterdir()}
        lacking = sorted({p.name for d in dirs for p in d.iterdir()
                          if p.name not in have and _FIRMWARE.search(p.name)})
        if not lacking:
            return None
        source = " and ".join(f"{p} {v}" for p, v in versions.items())
        return [str(d) for d in dirs], Supplement("firmware", f"Debian {source} ({suite})",
                                                  str(dest), tuple(lacking))


def runpath_dirs(binary: Path) -> list[Path]:
    """The binary's own library dirs (its ELF runpath), where they exist."""
    found = needs(binary)
    return [Path(p) for p in found.runpath if Path(p).is_dir()] if found else []
