"""A migration that waits for the client by design is not a hang: paused before
the switchover (capability pause-before-switchover), in a paused postcopy
(migrate-pause) or in COLO (capability x-colo), on real QEMU builds, fresh and in
persistent mode."""

from __future__ import annotations

import shutil
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from qmpcompat.harness import Qemu, QemuOptions
from qmpcompat.harness.process import private_dir
from qmpcompat.hunt.cases import is_failure
from qmpcompat.provision import QemuBuild
from qmpcompat.safety import Policy
from qmpcompat.vectors.persistent import PersistentRunner
from qmpcompat.vectors.run import migration_state
from qmpcompat.vectors.transcript import run_fresh


def step(command: str, arguments: dict[str, Any]) -> dict[str, Any]:
    return {"execute": command, "arguments": arguments}


def caps(*names: str) -> dict[str, Any]:
    return {"capabilities": [{"capability": n, "state": True} for n in names]}


PAUSED = [step("migrate-set-capabilities", caps("pause-before-switchover")),
          step("migrate", {"uri": "exec:cat > {tmpdir}/h.out"})]


def test_pause_before_switchover_is_a_waiting_state_not_a_hang(builds: list[QemuBuild]) -> None:
    for build in builds:
        start = time.monotonic()
        obs = run_fresh(PAUSED, build, False)
        assert obs.result == "accept" and obs.migration == "pre-switchover", (
            build.label, obs.summary())
        assert time.monotonic() - start < 20, "waited for the migration timeout"
        assert not is_failure(PAUSED, obs)


COLO = [step("migrate-set-capabilities", caps("x-colo")),
        step("migrate", {"uri": "exec:cat > {tmpdir}/h.out"})]


def test_colo_is_a_waiting_state_not_a_hang(builds: list[QemuBuild]) -> None:
    """With x-colo the source stays in colo after its first checkpoint, waiting for
    a secondary or a failover (observed on 7.2.22 and 10.0.13; 10.0.2 completes,
    11.1 wants return-path first and completes): a case ends there at once."""
    seen = []
    for build in builds:
        start = time.monotonic()
        obs = run_fresh(COLO, build, False)
        assert obs.result == "accept" and obs.migration in ("colo", "completed"), (
            build.label, obs.summary())
        assert time.monotonic() - start < 20, "waited for the migration timeout"
        assert not is_failure(COLO, obs)
        seen.append(obs.migration)
    assert "colo" in seen, "no build of the default set went into colo"


def test_migrate_continue_ends_a_paused_migration(newest: QemuBuild, case_dir: Path) -> None:
    """The wait before the switchover is the client's: migrate-continue ends it."""
    with Qemu(newest, QemuOptions(), "src", Policy.for_case(case_dir)).start(case_dir) as q:
        q.cmd("migrate-set-capabilities", caps("pause-before-switchover"))
        q.cmd("migrate", {"uri": f"exec:cat > {case_dir}/h.out"})
        assert migration_state(q, 20)[0] == "pre-switchover"
        q.cmd("migrate-continue", {"state": "pre-switchover"})
        left_the_wait(q, 20)
        assert migration_state(q, 20)[0] == "completed"


def left_the_wait(q: Qemu, timeout: float) -> None:
    """Return once query-migrate no longer shows pre-switchover: right after
    migrate-continue the status may still be the one it was waiting in."""
    deadline = time.monotonic() + timeout
    while status(q) == "pre-switchover":
        assert time.monotonic() < deadline, "migrate-continue did not end the wait"
        time.sleep(0.02)


def status(q: Qemu) -> object:
    reply = q.cmd("query-migrate")
    return reply.get("status") if isinstance(reply, dict) else None


def test_a_paused_migration_retires_a_persistent_qemu(newest: QemuBuild) -> None:
    with PersistentRunner() as runner:
        assert runner.run_transcript([step("migrate", {"uri": "bogus:"})], newest,
                                     False).result == "reject"
        obs = runner.run_transcript(PAUSED, newest, False)
        assert obs.result == "accept" and obs.migration == "pre-switchover", obs.summary()
        assert runner.stats.retired == {"accepted": 1}


@pytest.fixture
def case_dir() -> Iterator[Path]:
    tmp = private_dir("qmpv-")
    yield tmp
    shutil.rmtree(tmp, ignore_errors=True)


def test_a_paused_postcopy_is_a_waiting_state_not_a_hang(newest: QemuBuild,
                                                        case_dir: Path) -> None:
    """A real postcopy migration between two QEMUs, slowed down so that it is still
    running when migrate-pause arrives: both sides wait in postcopy-paused, and
    following the migration says so at once instead of timing out."""
    policy = Policy.for_case(case_dir)
    sock = f"unix:{case_dir}/m.sock"
    memory = QemuOptions(machine="pc", memory="64M")
    with Qemu(newest, QemuOptions(**{**vars(memory), "incoming_defer": True}), "dst",
              policy).start(case_dir) as dst, \
            Qemu(newest, QemuOptions(**{**vars(memory), "extra_args": ["-S"]}), "src",
                 policy).start(case_dir) as src:
        dst.cmd("migrate-set-capabilities", caps("postcopy-ram"))
        dst.cmd("migrate-incoming", {"uri": sock})
        src.cmd("migrate-set-capabilities", caps("postcopy-ram"))
        src.cmd("migrate-set-parameters", {"max-bandwidth": 1 << 20,
                                           "max-postcopy-bandwidth": 1 << 20})
        src.cmd("migrate", {"uri": sock})
        src.cmd("migrate-start-postcopy")
        src.wait_migration(("postcopy-active",), timeout=20)
        src.cmd("migrate-pause")
        start = time.monotonic()
        assert migration_state(src, 20)[0] == "postcopy-paused"
        assert migration_state(dst, 20)[0] == "postcopy-paused"
        assert time.monotonic() - start < 10
