"""What a vector makes QEMU do, as data: the QEMU options of each side and the
commands sent before the one under test. The runner does exactly this, and the
safety gate checks exactly this (``vectors.safety``), so neither can drift."""

from __future__ import annotations

from qmpcompat.guest import GuestFiles
from qmpcompat.guest import options as guest_options
from qmpcompat.harness import QemuOptions
from qmpcompat.types import JSONObject, Version
from qmpcompat.vectors.model import Vector

Command = tuple[str, JSONObject, str]  # command, arguments, where in the vector


def qemu_options(vec: Vector, incoming: bool, timeout: float, files: GuestFiles | None = None,
                 version: Version | None = None, source: bool = False) -> QemuOptions:
    """A side's options: with a guest (and its ``files``), the guest's machine type
    of ``version`` (the older side's), memory, devices and firmware, ``source``
    telling the side that gets its memory pattern; else the vector's machine (a
    real one gets 64 MiB and -S)."""
    if vec.guest is not None and files is not None:
        return guest_options(vec.guest, version or Version(0, 0, 0), files, source=source,
                             incoming=incoming, timeout=timeout)
    real = vec.machine != "none"
    return QemuOptions(machine=vec.machine, incoming_defer=incoming, timeout=timeout,
                       memory="64M" if real else None, extra_args=("-S",) if real else ())


def setup_commands(vec: Vector) -> list[Command]:
    """The commands each side gets before its command: capabilities, then parameters."""
    out: list[Command] = []
    if vec.capabilities:
        out.append(("migrate-set-capabilities", {"capabilities": [
            {"capability": k, "state": v} for k, v in vec.capabilities.items()]},
            "requires"))
    if vec.parameters:
        out.append(("migrate-set-parameters", dict(vec.parameters), "requires/parameters"))
    return out
