"""The real test guest: its firmware, its pattern, and the checks that a
migrated guest arrived intact (including a migration damaged on purpose, which
the checks must catch)."""

from __future__ import annotations

import shutil
import subprocess
import tempfile
import time
from pathlib import Path
from typing import Any

import pytest

from qmpcompat.guest import GuestSpec, GuestSpecError, options, parse_guest, settle_source, write_files
from qmpcompat.guest.image import HOT_BYTES, PATTERN_BYTES, READY, STATUS_ADDR, Layout, firmware
from qmpcompat.guest.live import read, status_and_beat
from qmpcompat.harness import Qemu
from qmpcompat.harness.process import private_dir
from qmpcompat.provision import QemuBuild
from qmpcompat.vectors.match import judge
from qmpcompat.vectors.model import Vector, parse_vector
from qmpcompat.vectors.run import Runner

SOURCE = Path(__file__).resolve().parents[2] / "qmpcompat" / "data" / "guest.S"
SINK = {"uri": "exec:cat > {tmpdir}/stream"}
READ_BACK = {"uri": "exec:cat {tmpdir}/stream"}


def vector(guest: dict[str, Any] | None = None, **raw: Any) -> Vector:
    base: dict[str, Any] = {"id": "T-0001", "description": "test vector", "flags": ["uri"],
                            "arguments": SINK, "peer": {"when": "after", "arguments": READ_BACK},
                            "requires": {"guest": guest or {}},
                            "expect": [{"result": "accept", "migration": "completed"}]}
    return parse_vector({**base, **raw}, "test.yaml", "migrate")


@pytest.mark.skipif(not (shutil.which("as") and shutil.which("ld")), reason="binutils not installed")
def test_firmware_is_what_the_source_assembles_to(tmp_path: Path) -> None:
    subprocess.run(["as", "--32", "-o", tmp_path / "g.o", SOURCE], check=True)
    subprocess.run(["ld", "-m", "elf_i386", "-Ttext=0xFFFF0000", "--oformat", "binary", "-o",
                    tmp_path / "g.bin", tmp_path / "g.o"], check=True)
    layout = Layout(64 << 20, 1, "running")  # the parameters guest.S assembles with
    assert (tmp_path / "g.bin").read_bytes() == firmware(layout)


def test_layout_keeps_its_regions_apart() -> None:
    """Pattern, dirtied pages and samples never overlap, lie in RAM outside the
    legacy hole, and follow from the seed alone."""
    for seed in range(1, 200):
        for memory in (64 << 20, 256 << 20):
            lay = Layout(memory, seed, "running" if seed % 2 else "paused")
            assert lay.hot_end <= lay.pattern_addr
            assert lay.pattern_addr + PATTERN_BYTES <= memory
            assert len(set(lay.samples)) == len(lay.samples) == 8
            for page in lay.samples:
                assert page < 0xA0000 or lay.hot_end <= page < lay.pattern_addr or \
                    page >= lay.pattern_addr + PATTERN_BYTES
                assert not STATUS_ADDR <= page < lay.hot_end
    assert Layout(64 << 20, 7).pattern == Layout(64 << 20, 7).pattern != Layout(64 << 20, 8).pattern
    assert Layout(64 << 20, 7).samples == Layout(64 << 20, 7).samples


def test_spec_is_a_closed_list() -> None:
    assert parse_guest(None) == GuestSpec()
    assert GuestSpec(machine="q35").machine_type((7, 2, 22)) == "pc-q35-7.2"
    assert GuestSpec().machine_type((11, 1, 3)) == "pc-i440fx-11.1"
    assert GuestSpec().machine_type((11, 2, 50)) == "pc"
    for bad, why in [({"machine": "microvm"}, "machine 'microvm'"), ({"memory": 100}, "memory 100"),
                     ({"devices": ["virtio-net"]}, "device 'virtio-net'"),
                     ({"kernel": "/etc/passwd"}, "unknown key 'kernel'"),
                     ({"memory": "64"}, "memory '64'"), ({"state": None}, "state None"),
                     ({"devices": "serial"}, "devices 'serial' is not a list"),
                     ({"devices": [["serial"]]}, r"device \['serial'\]")]:
        with pytest.raises(GuestSpecError, match=why):
            parse_guest(bad)
    with pytest.raises(ValueError, match="non-zero"):
        Layout(64 << 20, 0)


@pytest.mark.parametrize("state", ["paused", "running"])
def test_guest_runs_its_firmware_over_its_pattern(oldest: QemuBuild, state: str) -> None:
    """Start the guest on a real build: its RAM holds the pattern where the layout
    says, before and after it runs; it says it runs and dirties every hot page; a
    paused guest is stopped, a running one runs on."""
    spec = GuestSpec(state=state, devices=())
    layout = Layout(spec.memory, 0xC0FFEE, state)
    tmp = private_dir("qmpv-")
    try:
        files = write_files(tmp, layout)
        with Qemu(oldest, options(spec, oldest.version, files, source=True, incoming=False,
                                  timeout=10), "src").start(tmp) as q:
            assert settle_source(q, spec, tmp) == state
            deadline = time.monotonic() + 10  # a running guest may not have finished a pass yet
            while True:
                hot, pattern = read(q, tmp, [(STATUS_ADDR, HOT_BYTES[state]),
                                             (layout.pattern_addr, PATTERN_BYTES)])
                beat = int.from_bytes(hot[4:8], "little")
                if beat >= 1 or state == "paused" or time.monotonic() > deadline:
                    break
                time.sleep(0.05)
        assert pattern == layout.pattern
        assert int.from_bytes(hot[:4], "little") == READY
        assert beat >= 1
        counts = {int.from_bytes(hot[i + 16:i + 20], "little") for i in range(0, len(hot), 4096)}
        assert min(counts) >= beat  # every page was dirtied on each pass
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def test_a_paused_guest_halts_after_one_pass(oldest: QemuBuild) -> None:
    """Left running (never stopped), a paused guest's firmware dirties its pages
    once and halts, its CPU taking no more host time; a running guest's goes on."""
    tmp = private_dir("qmpv-")
    try:
        for state in ("paused", "running"):
            spec = GuestSpec(state=state, devices=())
            files = write_files(tmp, Layout(spec.memory, 0xC0FFEE, state))
            with Qemu(oldest, options(spec, oldest.version, files, source=True, incoming=False,
                                      timeout=10), "src").start(tmp) as q:
                deadline = time.monotonic() + 10
                while (beat := status_and_beat(q, tmp)[1]) < 1 and time.monotonic() < deadline:
                    time.sleep(0.01)
                time.sleep(0.2)
                later = status_and_beat(q, tmp)[1]
            halted = (beat, later) == (1, 1)
            assert halted if state == "paused" else later > beat >= 1, (state, beat, later)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


@pytest.mark.parametrize("state", ["paused", "running"])
def test_intact_guest_passes_every_check(newest: QemuBuild, state: str) -> None:
    vec = vector({"state": state})
    obs = Runner().run(vec, newest)
    assert (obs.result, obs.migration, obs.peer_migration) == ("accept", "completed",
                                                               "completed"), obs.summary()
    assert obs.guest is not None
    assert obs.guest["source_sha256"] == obs.guest["destination_sha256"]
    assert obs.guest["compared_bytes"] == PATTERN_BYTES + HOT_BYTES[state] + 8 * 4096
    assert obs.guest["run_state"] == f"{state} -> {state}"
    assert obs.guest["ram_transferred"] >= PATTERN_BYTES
    assert judge(vec, newest.version, obs, []).outcome == "passed"


def _damage(tmp: Path) -> None:
    """Change two bytes of the guest's pattern inside the migration stream: the
    stream stays well-formed, so only the memory check can tell."""
    stream = tmp / "stream"
    data = bytearray(stream.read_bytes())
    pattern = (tmp / "guest.pattern").read_bytes()
    at = data.find(pattern[4096:4096 + 64])  # the pattern's second page, sent whole
    assert at > 0 and data.count(pattern[4096:4096 + 64]) == 1
    data[at + 10:at + 12] = bytes(b ^ 0xFF for b in data[at + 10:at + 12])
    stream.write_bytes(data)


def test_damaged_migration_is_caught(newest: QemuBuild) -> None:
    vec = vector()
    seen: list[int] = []

    def damage(tmp: Path) -> None:
        _damage(tmp)
        seen.append(int.from_bytes((tmp / "guest.bios").read_bytes()[0x10:0x14], "little"))

    obs = Runner(between=damage).run(vec, newest)
    assert seen, "the stream was never damaged"
    assert obs.result == "corrupt", obs.summary()
    assert (obs.migration, obs.peer_migration) == ("completed", "completed")
    assert "guest memory differs after migration" in obs.detail
    assert obs.guest is not None and obs.guest["source_sha256"] != obs.guest["destination_sha256"]
    assert "first difference at guest address 0x" in obs.detail
    verdict = judge(vec, newest.version, obs, [])
    assert verdict.outcome == "failed" and verdict.message.startswith("migration completed, guest damaged:")


def test_guest_files_in_a_dir_with_comma_and_space(oldest: QemuBuild,
                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    """The firmware reaches QEMU as one argv element that QEMU does not parse as an
    option list, the pattern's path with its commas doubled: a case dir with ','
    and ' ' in its name still starts the guest and loads its pattern."""
    hostile = Path(tempfile.mkdtemp(prefix="q,b c", dir="/tmp"))  # short: socket paths
    monkeypatch.setattr(tempfile, "tempdir", str(hostile))
    try:
        seen: list[Path] = []
        obs = Runner(between=seen.append).run(vector(), oldest)
        assert seen and seen[0].parent == hostile
        assert (obs.result, obs.migration, obs.peer_migration) == ("accept", "completed",
                                                                   "completed"), obs.summary()
        assert obs.guest is not None and obs.guest["run_state"] == "paused -> paused"
    finally:
        shutil.rmtree(hostile, ignore_errors=True)
