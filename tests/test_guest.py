"""The real test guest: its image, its pattern, and the checks that a migrated
guest arrived intact (including a migration damaged on purpose, which the
checks must catch)."""

from __future__ import annotations

import shutil
import subprocess
import tempfile
from pathlib import Path
from typing import Any

import pytest

from qmpcompat.guest import GuestSpec, GuestSpecError, options, parse_guest, settle_source
from qmpcompat.guest.image import IMAGE, MARKER, PATTERN_START, Layout, build_image, pattern
from qmpcompat.guest.live import write_kernel
from qmpcompat.harness import Qemu
from qmpcompat.harness.process import private_dir
from qmpcompat.provision import QemuBuild
from qmpcompat.vectors.match import judge
from qmpcompat.vectors.model import Vector, parse_vector
from qmpcompat.vectors.run import Runner

SOURCE = Path(__file__).resolve().parents[1] / "qmpcompat" / "data" / "guest.S"
SINK = {"uri": "exec:cat > {tmpdir}/stream"}
READ_BACK = {"uri": "exec:cat {tmpdir}/stream"}


def vector(guest: dict[str, Any] | None = None, **raw: Any) -> Vector:
    base: dict[str, Any] = {"id": "T-0001", "description": "test vector", "flags": ["uri"],
                            "arguments": SINK, "peer": {"when": "after", "arguments": READ_BACK},
                            "requires": {"guest": guest or {}},
                            "expect": [{"result": "accept", "migration": "completed"}]}
    return parse_vector({**base, **raw}, "test.yaml", "migrate")


@pytest.mark.skipif(not (shutil.which("as") and shutil.which("ld")), reason="binutils not installed")
def test_image_is_what_the_source_assembles_to(tmp_path: Path) -> None:
    subprocess.run(["as", "--32", "-o", tmp_path / "g.o", SOURCE], check=True)
    subprocess.run(["ld", "-m", "elf_i386", "-Ttext=0x100000", "--oformat", "binary", "-o",
                    tmp_path / "g.bin", tmp_path / "g.o"], check=True)
    assert (tmp_path / "g.bin").read_bytes() == IMAGE


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
        build_image(Layout(64 << 20, 0))


def test_guest_writes_the_pattern_the_harness_expects(oldest: QemuBuild) -> None:
    """Boot the guest on a real build: its memory holds the marker, then the
    sequence ``pattern`` computes from the seed (but for the word a running
    guest keeps incrementing)."""
    spec = GuestSpec(devices=())
    layout = Layout(spec.memory, 0xC0FFEE)
    tmp = private_dir("qmpv-")
    try:
        kernel = write_kernel(tmp, layout)
        with Qemu(oldest, options(spec, oldest.version, kernel, source=True, incoming=False,
                                  timeout=10), "src").start(tmp) as q:
            assert settle_source(q, spec, tmp) == "paused"
            q.cmd("pmemsave", {"val": PATTERN_START, "size": 4096, "filename": str(tmp / "p")})
        got = (tmp / "p").read_bytes()
        assert got[:16] == MARKER
        assert got[20:] == pattern(layout.seed, 1024)[20:]  # the word at 16 is the one dirtied
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
    assert obs.guest["run_state"] == f"{state} -> {state}"
    assert obs.guest["ram_transferred"] >= (64 - 2) << 20
    assert judge(vec, newest.version, obs, []).outcome == "passed"


def _damage(tmp: Path) -> None:
    """Change the guest's marker inside the migration stream: the stream stays
    well-formed, so only the memory check can tell."""
    stream = tmp / "stream"
    data = bytearray(stream.read_bytes())
    assert data.count(MARKER) == 2  # in the kernel's page, then at the start of the pattern
    at = data.rfind(MARKER)
    data[at + len(MARKER) - 2:at + len(MARKER)] = b"??"
    stream.write_bytes(data)


def test_damaged_migration_is_caught(newest: QemuBuild) -> None:
    vec = vector()
    obs = Runner(between=_damage).run(vec, newest)
    assert obs.result == "corrupt", obs.summary()
    assert (obs.migration, obs.peer_migration) == ("completed", "completed")
    assert "guest memory differs after migration" in obs.detail
    assert f"first difference at guest address {PATTERN_START + len(MARKER) - 2:#x}" in obs.detail
    verdict = judge(vec, newest.version, obs, [])
    assert verdict.outcome == "failed" and verdict.message.startswith("migration completed, guest damaged:")


def test_kernel_path_with_comma_and_space(oldest: QemuBuild,
                                          monkeypatch: pytest.MonkeyPatch) -> None:
    """The kernel reaches QEMU as one argv element that QEMU does not parse as an
    option list: a case dir with ',' and ' ' in its name still boots the guest."""
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
