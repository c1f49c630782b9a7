"""A consumer profile's real guest on real builds: the arrival check leaves a
running guest held for the consumer's own ``cont`` (the consumer's command is
what resumes it, and the guest must run on after it), and continues it itself
only when the profile has no ``cont`` of the destination."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import replace

import pytest

from qmpcompat.harness import Qemu
from qmpcompat.harness.qemu import Reply
from qmpcompat.provision import QemuBuild
from qmpcompat.schema.sources.live import SchemaCache
from qmpcompat.types import JSON
from qmpcompat.vectors.load import load
from qmpcompat.vectors.profilerun import run_profile
from qmpcompat.vectors.profiles import Profile

PROFILE = "CP-0002"  # libvirt 11.3.0, a running guest, 'dst-cont' continues the destination


def _profile() -> Profile:
    profile = next(p for p in load().profiles if p.id == PROFILE)
    assert profile.guest.state == "running"
    assert [s.id for s in profile.steps if s.side == "destination" and s.execute == "cont"]
    return profile


@pytest.fixture
def sent(monkeypatch: pytest.MonkeyPatch) -> list[tuple[str, str, str]]:
    """Every command the destination QEMU got, in order: (its status before the
    command, the command, who sent it: the consumer's step or the harness)."""
    log: list[tuple[str, str, str]] = []
    execute = Qemu.execute

    def spy(self: Qemu, command: str, arguments: Mapping[str, JSON] | None = None,
            timeout: float | None = None) -> Reply:
        if self.name == "destination" and command == "cont":
            state = execute(self, "query-status").result
            assert isinstance(state, dict)
            log.append((str(state["status"]), command, "harness" if arguments is None else "consumer"))
        return execute(self, command, arguments, timeout)

    monkeypatch.setattr(Qemu, "execute", spy)
    return log


def test_the_consumers_cont_resumes_the_guest(newest: QemuBuild,
                                              sent: list[tuple[str, str, str]]) -> None:
    obs = run_profile(_profile(), newest, newest, SchemaCache())
    assert obs.result == "accept" and obs.migration == "completed", obs.summary()
    assert sent == [("paused", "cont", "consumer")]  # the destination was held until then
    assert obs.guest is not None and obs.guest["run_state"] == "running -> running"


def test_without_a_consumer_cont_the_harness_resumes_it(newest: QemuBuild,
                                                       sent: list[tuple[str, str, str]]) -> None:
    profile = _profile()
    steps = tuple(s for s in profile.steps if not (s.side == "destination" and s.execute == "cont"))
    obs = run_profile(replace(profile, steps=steps), newest, newest, SchemaCache())
    assert obs.result == "accept" and obs.migration == "completed", obs.summary()
    assert sent == [("paused", "cont", "harness")]
    assert obs.guest is not None and obs.guest["run_state"] == "running -> running"
