"""What a vector makes QEMU do, as data: the QEMU options of each side and the
commands sent before the one under test. The runner does exactly this, and the
safety gate checks exactly this (``vectors.safety``), so neither can drift."""

from __future__ import annotations

from typing import Any

from qmpcompat.harness import QemuOptions
from qmpcompat.vectors.model import Vector

Command = tuple[str, dict[str, Any], str]  # command, arguments, where in the vector


def qemu_options(vec: Vector, incoming: bool, timeout: float) -> QemuOptions:
    """A side's options: the vector's machine; a real machine gets 64 MiB and -S."""
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
