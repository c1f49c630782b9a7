"""What an ELF file asks of the host, read from the file itself (no tool run).

``needs`` reads a 64-bit little-endian ELF's dynamic section and its version
needs (``.gnu.version_r``): the libraries it names (``DT_NEEDED``), its
``DT_RUNPATH``/``DT_RPATH`` (``$ORIGIN`` resolved) and, per library, the symbol
versions it requires (``GLIBC_2.38`` from ``libc.so.6``, say).
``glibc_needed`` is the highest ``GLIBC_x.y`` a binary and the libraries of its
own runpath ask for; ``host_glibc`` is this host's. A file that is not such an
ELF (a wrapper script) asks for nothing that can be read here: ``None``.
"""

from __future__ import annotations

import os
import re
import struct
from dataclasses import dataclass, field
from pathlib import Path

_SHT_DYNAMIC, _SHT_VERNEED = 6, 0x6FFFFFFE
_DT_NEEDED, _DT_RPATH, _DT_RUNPATH = 1, 15, 29
_GLIBC = re.compile(r"GLIBC_(\d+)\.(\d+)(?:\.(\d+))?$")


@dataclass(frozen=True)
class ElfNeeds:
    """The dynamic needs of one ELF file."""

    needed: tuple[str, ...] = ()
    runpath: tuple[str, ...] = ()  # with $ORIGIN resolved
    versions: dict[str, tuple[str, ...]] = field(default_factory=dict)  # library -> versions


def is_elf(path: Path) -> bool:
    try:
        with path.open("rb") as fh:
            return fh.read(4) == b"\x7fELF"
    except OSError:
        return False


def _cstr(blob: bytes, offset: int) -> str:
    end = blob.find(b"\0", offset)
    return blob[offset:end if end >= 0 else len(blob)].decode(errors="replace")


def needs(path: Path) -> ElfNeeds | None:
    """``path``'s dynamic needs; None for a file that is not a 64-bit
    little-endian ELF (or is truncated)."""
    try:
        data = path.read_bytes()
    except OSError:
        return None
    if data[:4] != b"\x7fELF" or data[4] != 2 or data[5] != 1:
        return None
    try:
        return _parse(data, path)
    except (struct.error, IndexError):
        return None


def _parse(data: bytes, path: Path) -> ElfNeeds:
    shoff, = struct.unpack_from("<Q", data, 0x28)
    shentsize, shnum = struct.unpack_from("<HH", data, 0x3A)
    sections = [struct.unpack_from("<IIQQQQIIQQ", data, shoff + i * shentsize)
                for i in range(shnum)]

    def body(index: int) -> bytes:
        _n, _t, _f, _a, off, size, *_rest = sections[index]
        return data[off:off + size]

    needed: list[str] = []
    paths: list[str] = []
    versions: dict[str, tuple[str, ...]] = {}
    for index, (_name, kind, _f, _a, _off, size, link, info, _al, _es) in enumerate(sections):
        if kind == _SHT_DYNAMIC:
            strtab = body(link)
            dyn = body(index)
            for i in range(0, len(dyn) - 15, 16):
                tag, value = struct.unpack_from("<qQ", dyn, i)
                if tag == _DT_NEEDED:
                    needed.append(_cstr(strtab, value))
                elif tag in (_DT_RPATH, _DT_RUNPATH):
                    paths += _cstr(strtab, value).split(":")
        elif kind == _SHT_VERNEED:
            strtab = body(link)
            blob = data[_off:_off + size]
            offset = 0
            for _entry in range(info):
                _ver, count, file_off, aux, nxt = struct.unpack_from("<HHIII", blob, offset)
                names, at = [], offset + aux
                for _v in range(count):
                    _hash, _flags, _other, name_off, vnext = struct.unpack_from("<IHHII", blob, at)
                    names.append(_cstr(strtab, name_off))
                    at += vnext
                versions[_cstr(strtab, file_off)] = tuple(names)
                if not nxt:
                    break
                offset += nxt
    origin = str(path.resolve().parent)
    runpath = tuple(p.replace("$ORIGIN", origin).replace("${ORIGIN}", origin)
                    for p in paths if p)
    return ElfNeeds(tuple(needed), runpath, versions)


def _glibc(versions: dict[str, tuple[str, ...]]) -> tuple[int, ...]:
    found = [tuple(int(g) for g in m.groups() if g is not None)
             for names in versions.values() for v in names if (m := _GLIBC.match(v))]
    return max(found, default=())


def glibc_needed(binary: Path) -> tuple[int, ...] | None:
    """The highest glibc version ``binary`` or a library of its own runpath
    requires (e.g. ``(2, 38)``); ``()`` when none is named; None when
    ``binary`` is not an ELF this module reads."""
    top = needs(binary)
    if top is None:
        return None
    best = _glibc(top.versions)
    for lib in top.needed:
        for directory in top.runpath:
            candidate = Path(directory) / lib
            if candidate.is_file():
                found = needs(candidate)
                best = max(best, _glibc(found.versions) if found else ())
                break
    return best


def host_glibc() -> tuple[int, ...]:
    """This host's glibc version, ``(2, 36)``; ``()`` when it has none (musl)."""
    try:
        text = os.confstr("CS_GNU_LIBC_VERSION") or ""
    except (ValueError, OSError):
        text = ""
    match = re.search(r"glibc (\d+)\.(\d+)", text)
    return (int(match.group(1)), int(match.group(2))) if match else ()
