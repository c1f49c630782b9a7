"""A real guest on both sides of a migration: start it, hold it still, check it arrived.

Both sides run the test guest's firmware (``-bios``); the source also gets the
case's memory pattern, loaded into RAM before its CPU starts (``-device
loader``), so no firmware, boot loader or fill loop runs before a migration.
The source's guest says it runs, then a ``paused`` guest is stopped. The
destination of a ``running`` guest starts with ``-S`` so that its memory holds
still at the moment of switchover; the destination of a paused guest starts
without it and must come up in the source's run state by itself.

After a migration that completed on both sides, ``verify`` reads, with one
pipelined round of ``pmemsave`` per side, both sides at once: the pattern on the destination
(compared with the bytes the harness loaded), the pages the guest dirties with
its status word on both sides, and a few pages sampled from the rest of RAM on
both sides (compared with each other); it checks the run state and that
``query-migrate`` counted at least the pattern as transferred.
"""

from __future__ import annotations

import hashlib
import random
import secrets
import struct
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

from qmpcompat.errors import QemuError
from qmpcompat.guest.image import PAGE, READY, STATUS_ADDR, Layout, firmware
from qmpcompat.guest.spec import GuestSpec
from qmpcompat.harness import Qemu, QemuOptions
from qmpcompat.safety import TMPDIR, qemu_opt
from qmpcompat.types import JSONObject, Version, json_object

FIRMWARE_NAME = "guest.bios"
PATTERN_NAME = "guest.pattern"
START_TIMEOUT = 5.0  # from QMP up to the guest saying it runs
BEAT_TIMEOUT = 5.0


def new_layout(spec: GuestSpec) -> Layout:
    """A layout with a fresh random seed: no two cases load the same pattern."""
    return Layout(spec.memory, secrets.randbelow((1 << 32) - 1) + 1, spec.state)


@dataclass(frozen=True)
class GuestFiles:
    """The guest's files in a case dir and the layout they were made for."""

    firmware: Path
    pattern: Path
    layout: Layout


def template_files(spec: GuestSpec) -> GuestFiles:
    """The guest's files as a case's command line names them before the case has a
    dir (the safety gate's placeholder for it), for checking the options a vector
    or profile will start QEMU with."""
    return GuestFiles(Path(f"{TMPDIR}/{FIRMWARE_NAME}"), Path(f"{TMPDIR}/{PATTERN_NAME}"),
                      Layout(spec.memory, 1, spec.state))


# The pattern files this process wrote, by path, with how each is made (its
# ``Layout.pattern_recipe``): a reproducer script makes them again instead of
# carrying a megabyte of random bytes.
_RECIPES: dict[str, tuple[int, int]] = {}


def write_files(workdir: Path, layout: Layout) -> GuestFiles:
    """Write the firmware and the pattern of ``layout`` into ``workdir``."""
    files = GuestFiles(workdir / FIRMWARE_NAME, workdir / PATTERN_NAME, layout)
    files.firmware.write_bytes(firmware(layout))
    files.pattern.write_bytes(layout.pattern)
    _RECIPES[str(files.pattern)] = layout.pattern_recipe
    return files


def recipe(path: Path) -> tuple[int, int] | None:
    """How the file at ``path`` was made, when it is a pattern this process wrote
    there and has not changed since: ``random.Random(SEED).randbytes(SIZE)``."""
    made = _RECIPES.get(str(path))
    if made is None or not path.is_file() or path.read_bytes() != random.Random(made[0]).randbytes(made[1]):
        return None
    return made


def options(spec: GuestSpec, version: Version, files: GuestFiles, *, source: bool,
            incoming: bool, timeout: float) -> QemuOptions:
    """QEMU options of one side. ``version`` picks the versioned machine type (the
    older side's, when two builds meet). The firmware's path is one argv element
    that QEMU does not parse as an option list; the pattern's reaches ``-device``
    with its commas doubled."""
    hold = not source and spec.state == "running"
    loader = ["-device", f"loader,file={qemu_opt(str(files.pattern))},"
                         f"addr={files.layout.pattern_addr:#x},force-raw=on"] if source else []
    extra = ["-bios", str(files.firmware), *spec.device_args(), *loader, *(["-S"] if hold else [])]
    return QemuOptions(machine=spec.machine_type(version), incoming_defer=incoming,
                       timeout=timeout, memory=f"{spec.memory_mib}M", extra_args=tuple(extra))


def read(q: Qemu, workdir: Path, regions: list[tuple[int, int]]) -> list[bytes]:
    """The guest memory of each ``(address, size)`` region of ``q``, dumped with one
    pipelined round of ``pmemsave`` into files of the case dir."""
    paths = [workdir / f"{q.name}.mem{i}" for i in range(len(regions))]
    q.commands([("pmemsave", {"val": addr, "size": size, "filename": str(path)})
                for (addr, size), path in zip(regions, paths, strict=True)])
    out = [path.read_bytes() for path in paths]
    for path in paths:
        path.unlink()
    return out


def status_and_beat(q: Qemu, workdir: Path) -> tuple[int, int]:
    """The guest's status word and its count of dirtying passes."""
    status, beat = struct.unpack("<II", read(q, workdir, [(STATUS_ADDR, 8)])[0])
    return int(status), int(beat)


def settle_source(q: Qemu, spec: GuestSpec, workdir: Path) -> str:
    """Wait until the guest says it runs, stop a paused guest; return the run
    status the migration starts from."""
    deadline = time.monotonic() + START_TIMEOUT
    while status_and_beat(q, workdir)[0] != READY:
        if time.monotonic() > deadline:
            raise QemuError(f"the test guest did not start within {START_TIMEOUT:g}s",
                            q.stderr_tail())
        time.sleep(0.002)
    stop: list[tuple[str, JSONObject | None]] = [("stop", None)] if spec.state == "paused" else []
    return str(json_object(q.commands([*stop, ("query-status", None)])[-1])["status"])


@dataclass
class Arrival:
    """What the checks after a completed migration found."""

    # sha256 of what was compared: the pattern as the harness loaded it, the rest as the source holds it
    source_digest: str = ""
    destination_digest: str = ""  # ... and as the destination does
    compared: int = 0  # bytes compared
    run_state: str = ""  # "SOURCE -> DESTINATION"
    ram_transferred: int = 0
    problems: list[str] = field(default_factory=list)
    held_at: int | None = None  # a held running guest's pass count, until it is seen running on

    def to_json(self) -> JSONObject:
        return {"source_sha256": self.source_digest, "destination_sha256": self.destination_digest,
                "compared_bytes": self.compared, "run_state": self.run_state,
                "ram_transferred": self.ram_transferred}


def _digest(parts: list[bytes]) -> str:
    h = hashlib.sha256()
    for part in parts:
        h.update(part)
    return h.hexdigest()


def first_difference(regions: list[tuple[int, int]], ours: list[bytes],
                     theirs: list[bytes]) -> int | None:
    """The guest address of the first byte that differs between two reads of the
    same ``regions`` (None if they agree)."""
    for (addr, _size), a, b in zip(regions, ours, theirs, strict=True):
        if a != b:
            n = min(len(a), len(b))
            return addr + next((i for i in range(n) if a[i] != b[i]), n)
    return None


def verify(src: Qemu, dst: Qemu, spec: GuestSpec, layout: Layout, workdir: Path,
           source_state: str, source_info: JSONObject, resume: bool = True) -> Arrival:
    """Check that the guest arrived: the pattern in place, the same dirtied and
    sampled pages on both sides, the source's run state, and at least the pattern
    counted as transferred. A running guest's destination, held by ``-S``, is
    continued here and must run on; with ``resume`` false it is left held (its
    ``held_at`` set) for whoever continues it, and ``runs_on`` judges it after."""
    out = Arrival()
    ram = json_object(source_info.get("ram") or {})
    out.ram_transferred = sum(n for n in (ram.get("transferred"), ram.get("multifd-bytes"))
                              if isinstance(n, int))
    if out.ram_transferred < layout.pattern_bytes:
        out.problems.append(f"query-migrate counts {out.ram_transferred} bytes of RAM transferred, "
                            f"less than the guest's {layout.pattern_bytes}-byte pattern")
    regions = [(layout.pattern_addr, layout.pattern_bytes),
               (STATUS_ADDR, layout.hot_end - STATUS_ADDR),
               *((page, PAGE) for page in layout.samples)]
    if src.shares_loop(dst):
        theirs, ours = read(dst, workdir, regions), [layout.pattern, *read(src, workdir, regions[1:])]
    else:
        with ThreadPoolExecutor(1, thread_name_prefix="qmpcompat-verify") as other:
            reading = other.submit(read, dst, workdir, regions)
            ours = [layout.pattern, *read(src, workdir, regions[1:])]
            theirs = reading.result()
    out.source_digest = _digest(ours)
    out.destination_digest = out.source_digest if ours == theirs else _digest(theirs)
    out.compared = sum(size for _addr, size in regions)
    if struct.unpack_from("<I", ours[1])[0] != READY:
        out.problems.append("the source's guest never said it runs")
    if (at := first_difference(regions, ours, theirs)) is not None:
        out.problems.append(f"guest memory differs after migration: sha256 {out.source_digest[:16]} "
                            f"on the source, {out.destination_digest[:16]} on the destination, "
                            f"first difference at guest address {at:#x}")
    if spec.state == "running":
        out.held_at = status_and_beat(dst, workdir)[1]
        if not resume:
            return out
        dst.cmd("cont")
        runs_on(dst, workdir, out, source_state)
        return out
    _judge_state(out, source_state, str(json_object(dst.cmd("query-status"))["status"]))
    return out


def runs_on(dst: Qemu, workdir: Path, out: Arrival, source_state: str) -> None:
    """After a held running guest's destination was continued: the guest must run
    on (its pass counter moves past ``out.held_at``), and the run states of both
    sides must agree (``out`` gets the run state and any problem)."""
    before = out.held_at
    deadline = time.monotonic() + BEAT_TIMEOUT
    while status_and_beat(dst, workdir)[1] == before:
        if time.monotonic() > deadline:
            out.problems.append(f"the guest does not run on the destination: its pass counter "
                                f"stayed at {before} for {BEAT_TIMEOUT:g}s after cont")
            break
        time.sleep(0.002)
    out.held_at = None
    _judge_state(out, source_state, str(json_object(dst.cmd("query-status"))["status"]))


def _judge_state(out: Arrival, source_state: str, dst_state: str) -> None:
    out.run_state = f"{source_state} -> {dst_state}"
    if dst_state != source_state:
        out.problems.append(f"run state: the source was {source_state!r} before migrating, "
                            f"the destination is {dst_state!r}")

