"""What guest a migration moves: machine family, memory, run state, devices.

Everything here becomes QEMU options, so every choice is from a closed list:
two machine families (resolved to a versioned machine type), a few memory
sizes, and named device sets with fixed option strings. Nothing a vector
writes reaches QEMU's command line as text.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import TypeVar

from qmpcompat.safety.options import DEVICES  # each name stands for fixed QEMU options
from qmpcompat.types import JSONObject, Version

MACHINES = ("pc", "q35")
STATES = ("paused", "running")
MEMORY_MIB = (64, 128, 256)
DEFAULT_DEVICES = ("serial", "usb-tablet", "virtio-rng", "virtio-balloon")
_TYPE_PREFIX = {"pc": "pc-i440fx", "q35": "pc-q35"}
T = TypeVar("T")


class GuestSpecError(ValueError):
    """A guest mapping names something outside the closed lists."""


@dataclass(frozen=True)
class GuestSpec:
    """The guest of one migration (defaults: pc, paused, 64 MiB, every device)."""

    machine: str = "pc"
    state: str = "paused"
    memory_mib: int = 64
    devices: tuple[str, ...] = DEFAULT_DEVICES

    @property
    def memory(self) -> int:
        return self.memory_mib << 20

    def machine_type(self, version: Version) -> str:
        """The versioned machine type of ``version`` (the older side of a pair), e.g.
        ``pc-i440fx-7.2``; a development build (micro >= 50) gets the plain alias,
        since the type of its coming release may not exist yet."""
        if version[2] >= 50:
            return self.machine
        return f"{_TYPE_PREFIX[self.machine]}-{version[0]}.{version[1]}"

    def device_args(self) -> list[str]:
        return [arg for name in self.devices for arg in DEVICES[name]]

    def to_json(self) -> JSONObject:
        return {"machine": self.machine, "state": self.state, "memory": self.memory_mib,
                "devices": list(self.devices)}


def _one_of(raw: Mapping[str, object], key: str, default: T, allowed: tuple[T, ...]) -> T:
    """The choice among ``allowed`` that ``raw[key]`` (``default`` when missing) names;
    GuestSpecError otherwise."""
    value = raw.get(key, default)
    for choice in allowed:
        if choice == value:
            return choice
    raise GuestSpecError(f"guest: {key} {value!r} is not one of " + ", ".join(map(str, allowed)))


def parse_guest(raw: Mapping[str, object] | None) -> GuestSpec:
    """A GuestSpec from a vector's ``guest`` mapping; GuestSpecError names the bad key."""
    raw = raw or {}
    unknown = sorted(set(raw) - {"machine", "state", "memory", "devices"})
    if unknown:
        raise GuestSpecError(f"guest: unknown key {unknown[0]!r}")
    machine = _one_of(raw, "machine", "pc", MACHINES)
    state = _one_of(raw, "state", "paused", STATES)
    memory_mib = _one_of(raw, "memory", 64, MEMORY_MIB)
    listed = raw.get("devices", DEFAULT_DEVICES)
    if not isinstance(listed, (list, tuple)):
        raise GuestSpecError(f"guest: devices {listed!r} is not a list")
    devices: list[str] = []
    for name in listed:
        if not isinstance(name, str) or name not in DEVICES:
            raise GuestSpecError(f"guest: device {name!r} is not one of {', '.join(DEVICES)}")
        devices.append(name)
    if len(set(devices)) != len(devices):
        raise GuestSpecError("guest: a device is named twice")
    return GuestSpec(machine, state, memory_mib, tuple(devices))
