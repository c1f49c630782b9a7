"""The data files a source build needs at run time, gathered into its cache entry.

A QEMU binary copied out of its build directory no longer finds the build's
``pc-bios``: an x86 machine type (``pc``, ``q35``) needs a BIOS (``bios-256k.bin``;
the test guest brings its own, but a vector's bare ``pc`` machine does not) and
the ROM its APIC loads (``kvmvapic.bin``), and other guests the option ROMs
(``multiboot_dma.bin``, ``linuxboot_dma.bin``, ...). A git checkout holds these blobs in ``pc-bios/``;
a Debian ``+ds`` tree holds none, so the option ROMs are built from the tree
(``pc-bios/optionrom``, which needs a compiler that emits 32-bit code, Debian's
``gcc-multilib``) and the BIOS comes from the host's SeaBIOS (Debian's
``seabios`` package, ``/usr/share/seabios``). Everything is copied (never
linked) into ``STORE/share``, which the build then passes to QEMU with ``-L``.
"""

from __future__ import annotations

import shutil
from pathlib import Path

SHARE = "share"
SEABIOS_DIR = Path("/usr/share/seabios")
# Files in pc-bios/ that are data QEMU loads (firmware, ROMs, device trees).
_BLOB_SUFFIXES = (".bin", ".rom", ".img", ".dtb", ".lid", ".fd")
# What the suite's x86 machines cannot start without: a bare pc or q35 machine
# (SeaBIOS), and the test guest's (its own firmware, the APIC's ROM).
X86_NEEDS = ("bios-256k.bin", "kvmvapic.bin")


def optionrom_dir(work: Path) -> Path | None:
    """The build directory's option-ROM makefile dir, when configure set it up
    (it does so only for an x86 target and a compiler that can emit 32-bit code)."""
    path = work / "pc-bios" / "optionrom"
    return path if (path / "config.mak").is_file() else None


def _copy_files(src: Path, dest: Path, only_new: bool) -> None:
    if not src.is_dir():
        return
    for path in sorted(src.iterdir()):
        if path.is_file() and path.name.endswith(_BLOB_SUFFIXES):
            if only_new and (dest / path.name).exists():
                continue
            shutil.copyfile(path, dest / path.name)  # follows symlinks: a copy, never a link


def gather(tree: Path, work: Path, dest: Path) -> list[str]:
    """Copy into ``dest`` the tree's firmware blobs, the option ROMs built in
    ``work`` and the build's keymaps, then whatever the tree lacks from the
    host's SeaBIOS. Promises: ``dest`` exists; returns the x86 files of
    ``X86_NEEDS`` still missing (empty when an x86 guest can start)."""
    dest.mkdir(parents=True, exist_ok=True)
    _copy_files(tree / "pc-bios", dest, only_new=False)
    _copy_files(work / "pc-bios" / "optionrom", dest, only_new=False)
    _copy_files(SEABIOS_DIR, dest, only_new=True)
    keymaps = work / "pc-bios" / "keymaps"
    if keymaps.is_dir() and any(keymaps.iterdir()):
        shutil.copytree(keymaps, dest / "keymaps", dirs_exist_ok=True)
    return [name for name in X86_NEEDS if not (dest / name).is_file()]
