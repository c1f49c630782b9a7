"""The allow-list of QEMU command-line options a case may use.

Checked is everything after the build's own prefix (its loader, library path
and ``-L`` firmware dirs, which provisioning sets): each option must be in
``OPTIONS`` with a value its rule accepts. Machine types are named, never given
properties that read or write host files (``kernel=``, ``firmware=``,
``dumpdtb=``, ``memory-backend=`` ...): only the properties in
``MACHINE_PROPERTIES`` are allowed. Values are parsed by QEMU's option rules
(``,,`` is an escaped comma), as QEMU will read them. A real guest adds
``-bios`` (its firmware, a file in the case dir, which QEMU takes as one
value), the fixed options of the devices in ``DEVICES`` (``-device`` and
``-chardev`` accept those exact values) and one ``-device loader`` for its
memory pattern (a file in the case dir, a plain address, raw): nothing else.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence

from qmpcompat.safety.commands import RESERVED
from qmpcompat.safety.policy import Policy, split_qemu_opts

OptionCheck = Callable[[str, Policy], str | None]

MACHINE_TYPES = ("none", "pc", "q35", "isapc", "microvm")
_VERSIONED_MACHINE = re.compile(r"pc-(q35|i440fx)-\d+\.\d+")
_ON_OFF = ("on", "off", "auto")
MACHINE_PROPERTIES: dict[str, tuple[str, ...]] = {
    "accel": ("tcg",), "usb": _ON_OFF, "graphics": _ON_OFF, "acpi": _ON_OFF, "hpet": _ON_OFF,
    "pit": _ON_OFF, "sata": _ON_OFF, "smbus": _ON_OFF, "vmport": _ON_OFF,
    "mem-merge": _ON_OFF, "dump-guest-core": _ON_OFF,
}
_SIZE = re.compile(r"\d{1,6}[kKmMgG]?")


def machine_problem(text: str, policy: Policy | None = None) -> str | None:
    """Why ``-M text`` is refused, or None."""
    kind, *props = split_qemu_opts(text)
    kind = kind.removeprefix("type=")
    if not (kind in MACHINE_TYPES or _VERSIONED_MACHINE.fullmatch(kind)
            or kind.startswith(RESERVED)):
        return f"machine type {kind!r} is not on the safety allow-list"
    for prop in props:
        name, _eq, value = prop.partition("=")
        if name not in MACHINE_PROPERTIES:
            return f"machine property {name!r} is not on the safety allow-list"
        if value not in MACHINE_PROPERTIES[name]:
            return f"machine property {name}={value!r} is not on the safety allow-list"
    return None


def _size(text: str, policy: Policy) -> str | None:
    return None if _SIZE.fullmatch(text) else f"memory size {text!r} is not a plain size"


def _qmp(text: str, policy: Policy) -> str | None:
    """The harness's own QMP socket: ``unix:PATH`` in the case dir, nothing else."""
    if not text.startswith("unix:"):
        return f"QMP chardev {text!r} is not a unix socket"
    parts = split_qemu_opts(text[5:])
    if len(parts) != 1:
        return f"QMP chardev {text!r} has options"
    return policy.path_problem(parts[0], "QMP socket")


def _incoming(text: str, policy: Policy) -> str | None:
    return None if text == "defer" else policy.uri_problem(text)


def _one_of(*values: str) -> OptionCheck:
    return lambda text, policy: None if text in values else f"value {text!r} is not allowed"


# The devices a case's guest may have, each as fixed options (no host file, no
# network, no value from a vector): the only values -device and -chardev accept.
DEVICES: dict[str, tuple[str, ...]] = {
    "serial": ("-chardev", "null,id=qmpc-serial0", "-device", "isa-serial,chardev=qmpc-serial0"),
    "usb-tablet": ("-device", "qemu-xhci,id=qmpc-xhci", "-device", "usb-tablet,bus=qmpc-xhci.0"),
    "virtio-rng": ("-device", "virtio-rng-pci"),
    "virtio-balloon": ("-device", "virtio-balloon-pci"),
}


def _fixed(option: str) -> OptionCheck:
    """A value of ``option`` that one of ``DEVICES`` uses, exactly."""
    allowed = {argv[i + 1] for argv in DEVICES.values() for i in range(0, len(argv), 2)
               if argv[i] == option}
    return lambda text, policy: None if text in allowed else f"value {text!r} is not allowed"


_ADDRESS = re.compile(r"0x[0-9a-f]{1,8}|\d{1,10}")


def _loader(text: str, policy: Policy) -> str | None:
    """The test guest's memory pattern: ``loader,file=F,addr=A,force-raw=on`` with F a
    file the harness wrote into the case dir and A a plain guest address."""
    _kind, *props = split_qemu_opts(text)
    named = dict(p.partition("=")[::2] for p in props)
    if len(named) != len(props) or set(named) != {"file", "addr", "force-raw"} \
            or not _ADDRESS.fullmatch(named["addr"]) or named["force-raw"] != "on":
        return f"value {text!r} is not allowed: a loader takes file=, a plain addr= and force-raw=on"
    return policy.path_problem(named["file"], "loader file")


_DEVICE = _fixed("-device")


def _device(text: str, policy: Policy) -> str | None:
    """One of the fixed devices of ``DEVICES``, or the guest pattern's loader."""
    if split_qemu_opts(text)[0] == "loader":
        return _loader(text, policy)
    return _DEVICE(text, policy)


def _bios(text: str, policy: Policy) -> str | None:
    """The test guest's firmware: a file the harness wrote into the case dir."""
    return policy.path_problem(text, "firmware")


_FLAGS = ("-nodefaults", "-S", "-no-shutdown", "-no-reboot")
OPTIONS: dict[str, OptionCheck] = {
    "-bios": _bios, "-device": _device, "-chardev": _fixed("-chardev"),
    "-M": machine_problem, "-machine": machine_problem,
    "-m": _size, "-display": _one_of("none"), "-qmp": _qmp, "-incoming": _incoming,
    "-accel": _one_of("tcg"), "-smp": lambda t, p: None if t.isdigit() and 0 < int(t) <= 8
    else f"cpu count {t!r} is not 1 to 8",
    # the self-check's trace events, which name the module and firmware files QEMU loads
    "-trace": _one_of("module_load_module", "load_file"),
}


def option_problems(options: Sequence[str], policy: Policy) -> list[str]:
    """Every reason the gate refuses a QEMU command line (the part after the
    build's own prefix); empty when QEMU may start with it."""
    out, i = [], 0
    while i < len(options):
        opt = options[i]
        if opt in _FLAGS:
            i += 1
            continue
        if opt not in OPTIONS:
            out.append(f"option {opt!r} is not on the safety allow-list")
            break  # its arity is unknown: what follows cannot be read
        if i + 1 >= len(options):
            out.append(f"option {opt} needs a value")
            break
        why = OPTIONS[opt](options[i + 1], policy)
        if why:
            out.append(f"{opt} {options[i + 1]}: {why}")
        i += 2
    return out
