"""A real guest on both sides of a migration: boot it, hold it still, check it arrived.

The source boots the test kernel and waits until the guest says its pattern
is in memory; a ``paused`` guest is then stopped. The destination of a
``running`` guest starts with ``-S`` so that its memory holds still at the
moment of switchover; the destination of a paused guest starts without it and
must come up in the source's run state by itself. After a migration that
completed on both sides, ``verify`` compares digests of ``pmemsave`` dumps of
all guest RAM on both sides (files in the case dir), the run state, and that
``query-migrate`` counted at least the guest's pattern as transferred.
"""

from __future__ import annotations

import hashlib
import secrets
import struct
import time
from dataclasses import dataclass, field
from pathlib import Path

from qmpcompat.errors import QemuError
from qmpcompat.guest.image import MARKER, PATTERN_START, READY, STATUS_ADDR, Layout, build_image
from qmpcompat.guest.spec import GuestSpec
from qmpcompat.harness import Qemu, QemuOptions
from qmpcompat.types import JSONObject, Version, json_object

KERNEL_NAME = "guest.kernel"
BOOT_TIMEOUT = 20.0  # firmware, kernel load and the pattern fill under TCG
BEAT_TIMEOUT = 5.0
_CHUNK = 1 << 20


def new_layout(spec: GuestSpec) -> Layout:
    """A layout with a fresh random seed: no two cases write the same pattern."""
    return Layout(spec.memory, secrets.randbelow((1 << 32) - 1) + 1)


def write_kernel(workdir: Path, layout: Layout) -> Path:
    path = workdir / KERNEL_NAME
    path.write_bytes(build_image(layout))
    return path


def options(spec: GuestSpec, version: Version, kernel: Path, *, source: bool,
            incoming: bool, timeout: float) -> QemuOptions:
    """QEMU options of one side. ``version`` picks the versioned machine type (the
    older side's, when two builds meet). ``-kernel`` takes its path as one argv
    element that QEMU does not parse as an option list."""
    hold = not source and spec.state == "running"
    extra = ["-kernel", str(kernel), *spec.device_args(), *(["-S"] if hold else [])]
    return QemuOptions(machine=spec.machine_type(version), incoming_defer=incoming,
                       timeout=timeout, memory=f"{spec.memory_mib}M", extra_args=tuple(extra))


def _read(q: Qemu, workdir: Path, addr: int, size: int, name: str) -> bytes:
    path = workdir / f"{q.name}.{name}"
    q.cmd("pmemsave", {"val": addr, "size": size, "filename": str(path)})
    return path.read_bytes()


def status_and_beat(q: Qemu, workdir: Path) -> tuple[int, int]:
    """The guest's status word and its count of dirtying passes."""
    status, beat = struct.unpack("<II", _read(q, workdir, STATUS_ADDR, 8, "status"))
    return int(status), int(beat)


def settle_source(q: Qemu, spec: GuestSpec, workdir: Path) -> str:
    """Wait until the guest's pattern is in memory, stop a paused guest; return the
    run status the migration starts from."""
    deadline = time.monotonic() + BOOT_TIMEOUT
    while status_and_beat(q, workdir)[0] != READY:
        if time.monotonic() > deadline:
            raise QemuError(f"the test guest did not write its pattern within {BOOT_TIMEOUT:g}s",
                            q.stderr_tail())
        time.sleep(0.01)
    if spec.state == "paused":
        q.cmd("stop")
    return str(json_object(q.cmd("query-status"))["status"])


@dataclass
class Arrival:
    """What the checks after a completed migration found."""

    source_digest: str = ""
    destination_digest: str = ""
    run_state: str = ""  # "SOURCE -> DESTINATION"
    ram_transferred: int = 0
    problems: list[str] = field(default_factory=list)

    def to_json(self) -> JSONObject:
        return {"source_sha256": self.source_digest, "destination_sha256": self.destination_digest,
                "run_state": self.run_state, "ram_transferred": self.ram_transferred}


def _dump(q: Qemu, workdir: Path, size: int) -> tuple[Path, str]:
    path = workdir / f"{q.name}.mem"
    q.cmd("pmemsave", {"val": 0, "size": size, "filename": str(path)})
    with path.open("rb") as f:
        return path, hashlib.file_digest(f, "sha256").hexdigest()


def first_difference(a: Path, b: Path) -> int | None:
    """The offset of the first differing byte of two files (None if equal)."""
    with a.open("rb") as fa, b.open("rb") as fb:
        offset = 0
        while True:
            ca, cb = fa.read(_CHUNK), fb.read(_CHUNK)
            if ca != cb:
                n = min(len(ca), len(cb))
                return offset + next((i for i in range(n) if ca[i] != cb[i]), n)
            if not ca:
                return None
            offset += len(ca)


def verify(src: Qemu, dst: Qemu, spec: GuestSpec, layout: Layout, workdir: Path,
           source_state: str, source_info: JSONObject) -> Arrival:
    """Check that the guest arrived: same memory on both sides, the source's run
    state, and at least the guest's pattern counted as transferred. Dumps stay in
    ``workdir`` (removed with it)."""
    out = Arrival()
    ram = json_object(source_info.get("ram") or {})
    out.ram_transferred = sum(n for n in (ram.get("transferred"), ram.get("multifd-bytes"))
                              if isinstance(n, int))
    if out.ram_transferred < layout.pattern_bytes:
        out.problems.append(f"query-migrate counts {out.ram_transferred} bytes of RAM transferred, "
                            f"less than the guest's {layout.pattern_bytes}-byte pattern")
    src_path, out.source_digest = _dump(src, workdir, layout.memory)
    dst_path, out.destination_digest = _dump(dst, workdir, layout.memory)
    with src_path.open("rb") as f:
        f.seek(PATTERN_START)
        if f.read(len(MARKER)) != MARKER:
            out.problems.append("the source's memory lacks the guest's marker: the guest never "
                                "wrote its pattern")
    if out.source_digest != out.destination_digest:
        at = first_difference(src_path, dst_path)
        out.problems.append(f"guest memory differs after migration: sha256 {out.source_digest[:16]} "
                            f"on the source, {out.destination_digest[:16]} on the destination, "
                            f"first difference at guest address {at:#x}")
    dst_state = str(json_object(dst.cmd("query-status"))["status"])
    if spec.state == "running":
        dst_state = _resume(dst, workdir, out)
    out.run_state = f"{source_state} -> {dst_state}"
    if dst_state != source_state:
        out.problems.append(f"run state: the source was {source_state!r} before migrating, "
                            f"the destination is {dst_state!r}")
    return out


def _resume(dst: Qemu, workdir: Path, out: Arrival) -> str:
    """Continue a destination held by ``-S``: the guest must run on (its pass
    counter moves). Returns the destination's run status."""
    before = status_and_beat(dst, workdir)[1]
    dst.cmd("cont")
    deadline = time.monotonic() + BEAT_TIMEOUT
    while status_and_beat(dst, workdir)[1] == before:
        if time.monotonic() > deadline:
            out.problems.append(f"the guest does not run on the destination: its pass counter "
                                f"stayed at {before} for {BEAT_TIMEOUT:g}s after cont")
            break
        time.sleep(0.01)
    return str(json_object(dst.cmd("query-status"))["status"])
