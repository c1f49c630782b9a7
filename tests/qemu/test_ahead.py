"""Waiting cases run ahead of their turn (``qmpcompat.vectors.ahead``), on real
QEMU builds: each case is run once, by whichever process claims it first, and
its test takes the observation made for it (marked as run ahead); a case
whose turn comes before anyone claimed it is run by its test; a claim that
never yields an observation does not hold a test for ever."""

from __future__ import annotations

import time
from pathlib import Path
from typing import NoReturn

import pytest

from qmpcompat.provision import QemuBuild
from qmpcompat.vectors import ahead
from qmpcompat.vectors.ahead import Ahead
from qmpcompat.vectors.load import load

BY_ID = {v.id: v for v in load().vectors}
WAITING = BY_ID["M-0216"]  # return path on, a silent socket, cancelled after 1 s


def test_two_processes_run_each_waiting_case_once(tmp_path: Path, builds: list[QemuBuild]) -> None:
    cases = [(WAITING, builds[0]), (WAITING, builds[-1])]
    first = Ahead(tmp_path, cases, 10.0, False).start(offset=0)
    second = Ahead(tmp_path, cases, 10.0, False).start(offset=1)
    try:
        taken = [first.take(vec, build) for vec, build in cases]
    finally:
        first.close()
        second.close()
    assert first.ran + second.ran == len(cases)
    for obs, (_vec, build) in zip(taken, cases, strict=True):
        assert obs is not None, build.label
        assert (obs.result, obs.migration, obs.ahead, obs.qemu) == (
            "accept", "cancelled", True, "fresh"), (build.label, obs.summary())
    assert not list(tmp_path.glob("*.part"))


def test_a_case_whose_turn_comes_first_is_run_by_its_test(tmp_path: Path, newest: QemuBuild) -> None:
    """No QEMU starts here: the test claims the case, so no thread runs it."""
    waiting = Ahead(tmp_path, [(WAITING, newest)], 10.0, False)
    assert waiting.take(WAITING, newest) is None  # claimed now: the caller runs it
    waiting.start()
    waiting.close()
    assert waiting.ran == 0
    assert waiting.take(BY_ID["MI-0002"], newest) is None  # not a waiting case of the run


def test_a_claim_that_never_yields_does_not_hold_the_test(tmp_path: Path, newest: QemuBuild,
                                                          monkeypatch: pytest.MonkeyPatch) -> None:
    """A worker that died after claiming a case: its test runs the case itself."""
    monkeypatch.setattr(ahead, "TAKE_TIMEOUT", 0.2)
    elsewhere = Ahead(tmp_path, [(WAITING, newest)], 10.0, False)
    assert elsewhere.take(WAITING, newest) is None  # claimed, never written
    here = Ahead(tmp_path, [(WAITING, newest)], 10.0, False)
    assert here.take(WAITING, newest) is None


def test_a_claim_that_gives_no_observation_is_run_by_its_test(
        tmp_path: Path, newest: QemuBuild, monkeypatch: pytest.MonkeyPatch) -> None:
    """A thread whose run fails (here: the runner raises) says so: the test does
    not wait out ``TAKE_TIMEOUT`` for it, it runs the case itself. No QEMU starts."""

    class Broken(ahead.Runner):
        def run(self, *args: object, **kwargs: object) -> NoReturn:
            raise OSError("no space left on device")

    monkeypatch.setattr(ahead, "Runner", Broken)
    monkeypatch.setattr(ahead, "TAKE_TIMEOUT", 600.0)
    waiting = Ahead(tmp_path, [(WAITING, newest)], 10.0, False).start()
    start = time.monotonic()
    assert waiting.take(WAITING, newest) is None
    assert time.monotonic() - start < 60, "waited for the observation that never came"
    waiting.close()
    assert waiting.ran == 0
