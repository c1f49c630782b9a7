"""A Debian suite's libvirt (daemon, QEMU driver, virsh), unpacked without root
into the cache like a QEMU build, and run through its own dynamic loader.

The private apt of ``qmpcompat.provision`` downloads ``PACKAGES`` at the
suite's version with their whole dependency closure; ``dpkg-deb -x`` unpacks
them into ``CACHE/consumers/libvirt-VERSION/``. A newer suite's libvirt (trixie's
11.3.0 needs glibc 2.38 or later) runs on an older host the same way a newer
QEMU does: its programs start through the tree's ``ld-linux`` with the tree's
library path, and libvirt finds its driver modules through the variables it
reads for them (``LIBVIRT_DRIVER_DIR`` ...). Its data under
``/usr/share/libvirt`` (the CPU map the QEMU driver reads for every x86
domain) has no such variable: ``qmpcompat.libvirt.session`` lays the tree's
over the host's in the daemons' own mount namespace.
"""

from __future__ import annotations

import json
import shutil
import subprocess
from dataclasses import asdict, dataclass
from pathlib import Path

from qmpcompat.errors import ProvisionError
from qmpcompat.provision.apt import PrivateApt, suite_sources
from qmpcompat.provision.debian import LOADERS, Progress, cache_dir, locked, unpack
from qmpcompat.reaper import temp_dir

PACKAGES = ("libvirt-daemon", "libvirt-daemon-driver-qemu", "libvirt-clients")
MANIFEST = "libvirt.json"
# libvirt's variables for the directories of its loadable modules (src/driver.c,
# src/storage/storage_backend.c, src/storage_file/storage_file_backend.c,
# src/locking/lock_manager.c: virFileFindResourceFull's envname)
MODULE_DIRS = {"LIBVIRT_DRIVER_DIR": "connection-driver",
               "LIBVIRT_STORAGE_BACKEND_DIR": "storage-backend",
               "LIBVIRT_STORAGE_FILE_DIR": "storage-file",
               "LIBVIRT_LOCK_MANAGER_PLUGIN_DIR": "lock-driver"}


@dataclass(frozen=True)
class LibvirtTree:
    """One unpacked libvirt: ``root`` holds the packages' files; paths below are
    relative to it, so a copy of the tree (``moved``) runs the same."""

    root: Path
    version: str  # the Debian version, e.g. 9.0.0-4+deb12u2
    suite: str
    loader: str  # e.g. lib64/ld-linux-x86-64.so.2
    library_path: tuple[str, ...]
    triplet: str

    @property
    def upstream(self) -> str:
        """``9.0.0``."""
        return self.version.split("-", 1)[0].split(":")[-1]

    def moved(self, root: Path) -> LibvirtTree:
        return LibvirtTree(root, self.version, self.suite, self.loader, self.library_path,
                           self.triplet)

    def command(self, program: str) -> list[str]:
        """argv prefix that runs ``program`` (``usr/sbin/libvirtd``, ``usr/bin/virsh``)."""
        return [str(self.root / self.loader), "--library-path",
                ":".join(str(self.root / d) for d in self.library_path), str(self.root / program)]

    def environ(self) -> dict[str, str]:
        """The variables that point libvirt at the tree's modules."""
        base = self.root / "usr/lib" / self.triplet / "libvirt"
        return {name: str(base / sub) for name, sub in MODULE_DIRS.items()}

    @property
    def data(self) -> Path:
        """The tree's ``/usr/share/libvirt`` (the CPU map, the XML schemas)."""
        return self.root / "usr/share/libvirt"

    def to_json(self) -> dict[str, object]:
        raw = asdict(self)
        raw.pop("root")
        return raw


def _read(prefix: Path) -> LibvirtTree | None:
    try:
        raw = json.loads((prefix / MANIFEST).read_text())
        tree = LibvirtTree(prefix, str(raw["version"]), str(raw["suite"]), str(raw["loader"]),
                           tuple(raw["library_path"]), str(raw["triplet"]))
    except (OSError, ValueError, KeyError, TypeError):
        return None
    return tree if _runs(tree) else None


def _runs(tree: LibvirtTree) -> bool:
    """Whether the tree's virsh starts and says its version."""
    try:
        out = subprocess.run([*tree.command("usr/bin/virsh"), "--version"], capture_output=True,
                             text=True, timeout=30, check=False, stdin=subprocess.DEVNULL)
    except (OSError, subprocess.SubprocessError):
        return False
    return out.returncode == 0 and out.stdout.strip() == tree.upstream


def fetch_libvirt(suite: str, cache: Path | None = None, progress: Progress | None = None,
                  stale_ok: bool = True) -> LibvirtTree:
    """``suite``'s libvirt, from the cache or downloaded and unpacked into it;
    ProvisionError when the suite serves none or it does not start here.
    ``stale_ok`` uses a suite whose index is past its Valid-Until (with apt's
    own checks otherwise on), as ``qmpcompat provision`` does without --strict."""
    cache = cache or cache_dir()
    apt = PrivateApt(cache / "apt")
    if stale_ok:
        apt.accept_stale |= set(suite_sources(suite))
    version = apt.candidate(suite, PACKAGES[0])
    if version is None:
        raise ProvisionError(f"the {suite} suite serves no {PACKAGES[0]}")
    prefix = cache / "consumers" / f"libvirt-{version.replace(':', '_')}"
    with locked(cache / "lock"):
        if (found := _read(prefix)) is not None:
            return found
        if progress:
            progress(f"downloading libvirt {version} from {suite} with its dependencies")
        prefix.parent.mkdir(parents=True, exist_ok=True)
        with temp_dir(prefix.parent, ".dl-") as tmp:
            debs = apt.download_packages(suite, [f"{p}={version}" for p in PACKAGES], tmp / "debs")
            staging = tmp / "root"
            unpack(debs, staging)
            tree = _describe(staging, version, suite, apt.arch)
            (staging / MANIFEST).write_text(json.dumps(tree.to_json(), indent=1) + "\n")
            if prefix.exists():
                shutil.rmtree(prefix)
            staging.rename(prefix)
        return tree.moved(prefix)


def _describe(staging: Path, version: str, suite: str, arch: str) -> LibvirtTree:
    triplet, loader_name = LOADERS.get(arch, LOADERS["amd64"])
    libdirs = tuple(d for d in (f"usr/lib/{triplet}", f"lib/{triplet}") if (staging / d).is_dir())
    loader = next((f"{d}/{loader_name}" for d in libdirs if (staging / d / loader_name).exists()), "")
    tree = LibvirtTree(staging, version, suite, loader, libdirs, triplet)
    missing = [p for p in ("usr/sbin/libvirtd", "usr/bin/virsh") if not (staging / p).exists()]
    if not loader or missing:
        raise ProvisionError(f"libvirt {version} from {suite} unpacked without "
                             f"{', '.join(missing) or 'its loader'}")
    if not _runs(tree):
        raise ProvisionError(f"libvirt {version} from {suite}: its virsh does not start here "
                             "through its own loader")
    return tree


SUITES = ("bookworm", "trixie", "forky", "sid", "bookworm-backports", "trixie-backports")


def libvirt_at(version: str, cache: Path | None = None,
               progress: Progress | None = None) -> LibvirtTree:
    """libvirt at ``version`` (a profile's ``version``): the cached tree when there
    is one (the archive may have moved on since), else fetched from the suite that
    serves that version (``suite_of``, ``fetch_libvirt``)."""
    cached = _read((cache or cache_dir()) / "consumers" / f"libvirt-{version.replace(':', '_')}")
    return cached or fetch_libvirt(suite_of(version, cache), cache, progress=progress)


def suite_of(version: str, cache: Path | None = None) -> str:
    """The Debian suite that serves libvirt at ``version`` (a profile's ``version``);
    ProvisionError when none of ``SUITES`` does."""
    apt = PrivateApt((cache or cache_dir()) / "apt")
    for suite in SUITES:
        apt.accept_stale |= set(suite_sources(suite))
        if apt.candidate(suite, PACKAGES[0]) == version:
            return suite
    raise ProvisionError(f"no Debian suite ({', '.join(SUITES)}) serves libvirt {version}")
