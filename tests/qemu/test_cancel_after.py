"""``requires.cancel-after`` and KD-0015, on real QEMU builds: a migration that
waits for a destination that never answers its return path ends when cancelled
over a socket (M-0216), but not over an exec command (M-0215, a recorded hang
that costs a few seconds, not the runner's 30); and the hunt's finding of that
hang is the recorded defect, so ``tox -e hunt`` does not fail on it."""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from qmpcompat.errors import VectorError
from qmpcompat.hunt.cases import signature
from qmpcompat.hunt.known import known_bugs, recorded
from qmpcompat.provision import QemuBuild
from qmpcompat.types import Outcome
from qmpcompat.vectors.load import load
from qmpcompat.vectors.match import judge
from qmpcompat.vectors.model import parse_vector
from qmpcompat.vectors.run import Observation, Runner
from qmpcompat.vectors.transcript import Step

VECTORS = load()
BY_ID = {v.id: v for v in VECTORS.vectors}
# The hunt's finding on 7.2.22, as its M-9xxx.json recorded it.
FOUND: list[Step] = [
    {"execute": "migrate-set-capabilities",
     "arguments": {"capabilities": [{"capability": "return-path", "state": True}]}},
    {"execute": "migrate", "arguments": {"uri": "exec:cat > {tmpdir}/h.out"}}]


def test_a_cancel_ends_a_migration_waiting_for_a_silent_socket(builds: list[QemuBuild]) -> None:
    vec = BY_ID["M-0216"]
    assert vec.cancel_after == 1
    for build in (builds[0], builds[-1]):
        obs = Runner().run(vec, build)
        assert (obs.result, obs.migration) == ("accept", "cancelled"), (build.label, obs.summary())
        assert obs.seconds < 2 * vec.cancel_after + 8


def test_the_exec_hang_is_recorded_and_cheap(builds: list[QemuBuild]) -> None:
    """On the oldest and the newest build the cancel leaves the migration in
    cancelling: a hang, KD-0015, found in about twice cancel-after."""
    vec = BY_ID["M-0215"]
    for build in (builds[0], builds[-1]):
        start = time.monotonic()
        obs = Runner().run(vec, build)
        assert obs.result == "hang" and "'cancelling'" in obs.detail, (build.label, obs.summary())
        assert time.monotonic() - start < 2 * vec.cancel_after + 8, "waited for the full timeout"
        verdict = judge(vec, build.version, obs, VECTORS.defects)
        assert (verdict.outcome, verdict.defect) == (Outcome.XFAILED, "KD-0015"), verdict


def test_the_hunts_finding_is_the_recorded_defect(oldest: QemuBuild) -> None:
    """known_bugs runs KD-0015's vector on the build; its signature is the one the
    hunt's transcript fails with (the hunt waits out its own timeout, whose words
    the signature masks)."""
    bugs = [b for b in known_bugs(VECTORS, [oldest], Runner()) if b.defect == "KD-0015"]
    assert len(bugs) == 1
    seen = Observation("hang", detail="the QEMU under test, following the migration: QEMU did "
                       "not answer within 30s to finish migrating (last status 'active'); it "
                       "was killed", replies=[{"execute": "migrate-set-capabilities", "return": {}},
                                              {"execute": "migrate", "return": {}}])
    sig = signature(FOUND, seen.to_json())
    assert sig == bugs[0].signature
    assert recorded(bugs, sig, [oldest.label]) == ["KD-0015"]
    assert recorded(bugs, sig.replace("migrate(uri)", "migrate(channels)"), [oldest.label]) == []


@pytest.mark.parametrize(("command", "value"), [
    ("migrate-incoming", 2), ("migrate", 0), ("migrate", 31), ("migrate", "2"), ("migrate", True)])
def test_cancel_after_is_checked(command: str, value: object, tmp_path: Path) -> None:
    raw = {"id": "M-0999", "description": "planted", "flags": ["uri"],
           "arguments": {"uri": "unix:{tmpdir}/s"}, "requires": {"cancel-after": value},
           "expect": [{"result": "accept", "migration": "cancelled", "inferred-from": "x"}]}
    with pytest.raises(VectorError, match="cancel-after must be a number of seconds"):
        parse_vector(raw, str(tmp_path / "v.yaml"), command)
