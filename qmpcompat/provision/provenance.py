"""Where a build's modules and firmware come from: the records and the host dirs.

A QEMU binary searches for its modules and firmware in the places it was
given (``QEMU_MODULE_DIR``, ``-L``) and then in the directories compiled into
it (Debian's ``/usr/lib/x86_64-linux-gnu/qemu``, ``/usr/share/qemu``,
``/usr/share/seabios``, ``/usr/lib/ipxe/qemu``, ``/var/run/qemu/VERSION``). On a
host with a QEMU package installed those directories hold another build's
files: a module of another build aborts QEMU ("Only modules from the same
build can be loaded"), a ROM of another version changes the migration stream.

``compiled_dirs`` reads those directories from the binary itself (its
strings), plus the usual ones of the common distributions; the harness hides
the ones that exist on the host from a provisioned build
(``qmpcompat.harness.isolation``). ``Supplement`` records a part a foreign
build was given (a newer glibc, firmware it lacks: what, from which verified
package, which files); ``Provenance`` is what the build's self-check saw
(``qmpcompat.selfcheck``): what was hidden and how, every module and firmware
file it loaded, and any it took from outside its own tree or could not find.
Nothing here starts a process.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path

from qmpcompat.types import JSONObject

# Where distributions and QEMU's own default prefix put modules and firmware;
# whatever the binary's strings name is added to these.
COMMON_DIRS = (
    "/usr/lib/x86_64-linux-gnu/qemu", "/usr/lib/aarch64-linux-gnu/qemu", "/usr/lib64/qemu",
    "/usr/lib/qemu", "/usr/share/qemu", "/usr/share/seabios", "/usr/lib/ipxe/qemu",
    "/usr/share/ipxe/qemu", "/usr/local/lib/x86_64-linux-gnu/qemu", "/usr/local/lib/qemu",
    "/usr/local/share/qemu", "/var/run/qemu", "/run/qemu",
)
# An absolute path string in a binary whose last part names a module or firmware dir
# (``/var/run/qemu/%s`` is the module-upgrade dir of a package version), found by
# its end (a literal the regex engine skips to) and then read back to the NUL that
# starts it: a search anchored at that NUL tried every byte of the binary (0.35 s
# against 0.01 s for 27 MB).
_DIR_END = re.compile(rb"/(?:qemu|seabios)(?:/%s)?\x00")
_DIR_STRING = re.compile(rb"(/[A-Za-z0-9_.+/-]*/(?:qemu|seabios|ipxe/qemu))(?:/%s)?")
_READ_LIMIT = 256 << 20


def compiled_dirs(binary: Path) -> tuple[str, ...]:
    """The module and firmware directories ``binary`` may search outside the
    places it is given: those its strings name (an ELF's compiled-in
    ``CONFIG_QEMU_MODDIR``, ``CONFIG_QEMU_FIRMWAREPATH``, ...) and
    ``COMMON_DIRS``; sorted, each once. A file that cannot be read (a wrapper
    out of reach, say) gives ``COMMON_DIRS``."""
    try:
        with binary.open("rb") as fh:
            data = fh.read(_READ_LIMIT)
    except OSError:
        data = b""
    return tuple(sorted(_dir_strings(data) | set(COMMON_DIRS)))


def _dir_strings(data: bytes) -> set[str]:
    """Each NUL-delimited string of ``data`` that ``_DIR_STRING`` matches whole."""
    found = set()
    for end in _DIR_END.finditer(data):
        start = data.rfind(b"\x00", 0, end.start()) + 1
        whole = _DIR_STRING.fullmatch(data, start, end.end() - 1) if start else None
        if whole:
            found.add(whole.group(1).decode())
    return found


def inside(path: str, roots: Iterable[str]) -> bool:
    """True when ``path`` is one of ``roots`` or below one."""
    return any(path == r or path.startswith(r.rstrip("/") + "/") for r in roots if r)


@dataclass(frozen=True)
class Supplement:
    """A part a foreign build was given so that it runs here: ``what`` (e.g.
    ``glibc 2.41``, ``firmware``), ``source`` (the verified package, e.g.
    ``Debian libc6 2.41-12 (trixie)``), the directory it lives in and the files
    of it the build uses."""

    what: str
    source: str
    path: str
    files: tuple[str, ...] = ()

    def to_json(self) -> JSONObject:
        return {"what": self.what, "source": self.source, "path": self.path,
                "files": list(self.files)}

    @classmethod
    def from_json(cls, data: Mapping[str, object]) -> Supplement:
        files = data.get("files")
        return cls(str(data.get("what", "")), str(data.get("source", "")),
                   str(data.get("path", "")),
                   tuple(str(f) for f in files) if isinstance(files, list) else ())

    def text(self) -> str:
        """``glibc 2.41 from Debian libc6 2.41-12 (trixie)``, with its files when few."""
        files = f": {', '.join(self.files)}" if 0 < len(self.files) <= 6 else \
            f": {len(self.files)} files" if self.files else ""
        return f"{self.what} from {self.source}{files}"


# How a build was kept from the host's module and firmware dirs
# (the same texts are in qmpcompat/data/report.html)
ISOLATION = {
    "namespace": "hidden from it (a private mount namespace)",
    "nothing to hide": "none on this host",
    "unavailable": "NOT hidden (the host does not allow it)",
    "in place": "used in place: its compiled-in dirs are its own",
}


@dataclass(frozen=True)
class Provenance:
    """What a build's self-check saw (``qmpcompat.selfcheck``).

    ``isolation`` is a key of ``ISOLATION``; ``host_dirs`` the host's QEMU dirs
    that exist here (hidden from the build under ``namespace``); ``note`` why
    hiding them is unavailable. ``modules`` and ``firmware``
    are the files QEMU itself said it loaded (its ``module_load_module`` and
    ``load_file`` trace events), ``outside`` those of them not in the build's
    own tree, ``lacking`` the firmware names it did not find, ``types`` how many
    QOM types it listed (``qom-list-types``, which loads every module that has
    any), ``machines`` the guest machine types whose firmware was checked, and
    ``traced`` whether the build has the trace events at all; ``module_files``
    how many module files its own module dir holds, each checked to carry the
    binary's build stamp (one that does not is ``outside``: it is of another
    build, loaded or not). ``remembered`` is when the self-check that saw all
    this ran (UTC, ISO 8601) when a run took it from an earlier run's
    (``qmpcompat.checkmemo``), '' when it ran in this one."""

    isolation: str
    host_dirs: tuple[str, ...] = ()
    note: str = ""
    modules: tuple[str, ...] = ()
    firmware: tuple[str, ...] = ()
    outside: tuple[str, ...] = ()
    lacking: tuple[str, ...] = ()
    types: int = 0
    machines: tuple[str, ...] = ()
    traced: bool = True
    fork_server: str = ""  # why QEMUs of this build cannot come from a fork server
    module_files: int = 0
    remembered: str = ""

    @property
    def reaches_outside(self) -> bool:
        return bool(self.outside)

    def to_json(self) -> JSONObject:
        return {"isolation": self.isolation, "host_dirs": list(self.host_dirs), "note": self.note,
                "modules": list(self.modules), "firmware": list(self.firmware),
                "outside": list(self.outside), "lacking": list(self.lacking),
                "types": self.types, "machines": list(self.machines), "traced": self.traced,
                "fork_server": self.fork_server, "module_files": self.module_files,
                "remembered": self.remembered}

    @classmethod
    def from_json(cls, data: Mapping[str, object]) -> Provenance:
        def strings(key: str) -> tuple[str, ...]:
            raw = data.get(key)
            return tuple(str(x) for x in raw) if isinstance(raw, list) else ()

        types, files = data.get("types"), data.get("module_files")
        return cls(isolation=str(data.get("isolation", "")), host_dirs=strings("host_dirs"),
                   note=str(data.get("note", "")), modules=strings("modules"),
                   firmware=strings("firmware"), outside=strings("outside"),
                   lacking=strings("lacking"), types=types if isinstance(types, int) else 0,
                   machines=strings("machines"), traced=data.get("traced") is not False,
                   fork_server=str(data.get("fork_server", "")),
                   module_files=files if isinstance(files, int) else 0,
                   remembered=str(data.get("remembered", "")))
