"""The test guest as a libvirt domain: as close to the harness's own guest
(``qmpcompat.guest``) as libvirt's domain XML allows.

- the guest's own firmware as ``<os><loader type='rom'>`` (libvirt passes it
  with ``-bios``), no disk, no network, no display;
- its memory pattern through ``<qemu:commandline>`` (libvirt has no element for
  QEMU's generic ``loader`` device; libvirt accepts the pass-through and marks
  the domain tainted, ``custom-argv``), on the source only: the destination's
  XML drops it (``destination_xml``), so the pattern can only arrive by migration;
- the profile's devices: ``serial`` is ``<serial type='null'>``, ``usb-tablet`` a
  ``qemu-xhci`` controller with a USB tablet, ``virtio-rng`` a virtio ``<rng>``
  backed by /dev/urandom, ``virtio-balloon`` a virtio ``<memballoon>`` (else
  ``model='none'``: libvirt adds a balloon unless told not to);
- ``<features><acpi/>``: without it libvirt passes ``-no-acpi``, which QEMU 11
  no longer takes, while the harness's guest has QEMU's default (ACPI on).

What libvirt adds that the harness's guest does not have: ``-cpu qemu64`` (the
TCG default anyway), its RAM as a ``memory-backend-ram`` object named
``pc.ram``, ``-rtc base=utc``, ``-no-shutdown``, ``-boot strict=on``, a master
key secret object. Every path is an XML text or attribute (escaped by
ElementTree), never markup.
"""

from __future__ import annotations

import xml.etree.ElementTree as ET
from pathlib import Path

from qmpcompat.guest import GuestFiles, GuestSpec
from qmpcompat.safety import qemu_opt

QEMU_NS = "http://libvirt.org/schemas/domain/qemu/1.0"
UUID = "51e2a3c4-0b6e-4a0e-9d6f-71d0c0e5a001"  # the same domain on both sides
ET.register_namespace("qemu", QEMU_NS)


def _sub(parent: ET.Element, tag: str, text: str | None = None, **attrs: str) -> ET.Element:
    node = ET.SubElement(parent, tag, attrs)
    if text is not None:
        node.text = text
    return node


def domain_xml(name: str, spec: GuestSpec, machine: str, emulator: Path, files: GuestFiles) -> str:
    """The source's domain: ``spec``'s guest on ``machine``, run by ``emulator``."""
    dom = ET.Element("domain", type="qemu")
    _sub(dom, "name", name)
    _sub(dom, "uuid", UUID)
    _sub(dom, "memory", str(spec.memory_mib), unit="MiB")
    _sub(dom, "vcpu", "1")
    os_ = _sub(dom, "os")
    _sub(os_, "type", "hvm", arch="x86_64", machine=machine)
    _sub(os_, "loader", str(files.firmware), type="rom")
    _sub(_sub(dom, "features"), "acpi")
    devices = _sub(dom, "devices")
    _sub(devices, "emulator", str(emulator))
    if "serial" in spec.devices:
        _sub(_sub(devices, "serial", type="null"), "target", port="0")
    if "usb-tablet" in spec.devices:
        _sub(devices, "controller", type="usb", model="qemu-xhci")
        _sub(devices, "input", type="tablet", bus="usb")
    else:
        _sub(devices, "controller", type="usb", model="none")
    if "virtio-rng" in spec.devices:
        _sub(_sub(devices, "rng", model="virtio"), "backend", "/dev/urandom", model="random")
    _sub(devices, "memballoon", model="virtio" if "virtio-balloon" in spec.devices else "none")
    cmdline = ET.SubElement(dom, f"{{{QEMU_NS}}}commandline")
    for arg in ("-device", f"loader,file={qemu_opt(str(files.pattern))},addr={files.layout.pattern_addr:#x},"
                           "force-raw=on"):
        ET.SubElement(cmdline, f"{{{QEMU_NS}}}arg", value=arg)
    return ET.tostring(dom, encoding="unicode")


def destination_xml(migratable: str, emulator: Path) -> str:
    """The destination's domain: the source's migratable XML with the destination's
    emulator and without the pass-through (the pattern must arrive by migration)."""
    dom = ET.fromstring(migratable)
    node = dom.find("devices/emulator")
    if node is None:
        raise ValueError("the migratable XML has no <emulator>")
    node.text = str(emulator)
    for cmdline in dom.findall(f"{{{QEMU_NS}}}commandline"):
        dom.remove(cmdline)
    return ET.tostring(dom, encoding="unicode")
