"""The runner on real QEMU builds: socket-pair fds, peers that read back what a
migrate wrote, crash detection, and judging against known defects."""

from __future__ import annotations

from typing import Any

import pytest

from qmpcompat.errors import VectorError
from qmpcompat.provision import QemuBuild
from qmpcompat.vectors.match import judge
from qmpcompat.vectors.model import Vector, parse_defect, parse_vector
from qmpcompat.vectors.run import Runner
from qmpcompat.vectors.safety import check_vector

SOCK = "unix:{tmpdir}/mig.sock"


def vector(command: str = "migrate", **raw: Any) -> Vector:
    base: dict[str, Any] = {"id": "T-0001", "description": "test vector", "flags": ["uri"],
                            "arguments": {}, "expect": [{"result": "accept"}]}
    return parse_vector({**base, **raw}, "test.yaml", command)


PAIR = [{"name": "mig", "kind": "pair"}]


@pytest.mark.parametrize("command", ["migrate", "migrate-incoming"])
def test_socket_pair_fd_carries_a_migration(newest: QemuBuild, command: str) -> None:
    vec = vector(command, arguments={"uri": "fd:mig"}, requires={"fds": PAIR},
                 peer={"fds": PAIR})
    obs = Runner().run(vec, newest)
    assert (obs.result, obs.migration, obs.peer_migration) == (
        "accept", "completed", "completed"), obs.summary()


@pytest.mark.parametrize(("uri", "back"), [
    ("file:{tmpdir}/stream,offset=4096", None),
    ("exec:cat > {tmpdir}/stream", "exec:cat {tmpdir}/stream"),
])
def test_peer_after_a_migrate_reads_back_what_it_wrote(newest: QemuBuild, uri: str,
                                                       back: str | None) -> None:
    peer: dict[str, Any] = {"when": "after"}
    if back:
        peer["arguments"] = {"uri": back}
    obs = Runner().run(vector(arguments={"uri": uri}, peer=peer), newest)
    assert (obs.migration, obs.peer_migration) == ("completed", "completed"), obs.summary()


def test_a_peer_for_after_a_migrate_that_failed_is_not_asked(newest: QemuBuild) -> None:
    """The other side of a migrate that did not complete is launched ahead but never
    sent its command: the migrate's own failure is the observation."""
    vec = vector(arguments={"uri": "exec:exit 1"},
                 peer={"when": "after", "arguments": {"uri": "exec:cat {tmpdir}/stream"}})
    obs = Runner(allow_exec=True).run(vec, newest)
    assert (obs.result, obs.migration, obs.peer_migration) == ("accept", "failed", None), obs.summary()


def test_source_that_ran_before_is_a_precondition_not_a_side(newest: QemuBuild) -> None:
    """A migrate-incoming of a file at the wrong offset fails; the migrate that wrote
    the file before is set-up, so its status is not reported as the other side's."""
    chan = {"channel-type": "main", "addr": {"transport": "file",
                                             "filename": "{tmpdir}/stream", "offset": 4096}}
    written = {"channels": [{**chan, "addr": {**chan["addr"], "offset": 0}}]}
    vec = vector("migrate-incoming", arguments={"channels": [chan], "exit-on-error": False},
                 peer={"when": "before", "arguments": written})
    obs = Runner().run(vec, newest)
    assert obs.result == "accept" and obs.migration == "failed", obs.summary()
    assert obs.peer_migration is None
    assert "load of migration failed" in (obs.migration_error or "")


def test_crash_is_observed_and_a_known_defect_turns_it_into_xfail(newest: QemuBuild) -> None:
    chan = {"channel-type": "main", "addr": {"transport": "exec", "args": []}}
    vec = vector(arguments={"channels": [chan]},
                 expect=[{"result": "reject", "error-class": "GenericError",
                          "desc-pattern": ".+", "why": "any error text will do here"}])
    obs = Runner().run(vec, newest)
    assert obs.result == "crash" and "the QEMU under test" in obs.detail, obs.summary()
    assert judge(vec, newest.version, obs, []).outcome == "failed"
    defect = parse_defect({"id": "KD-9999", "vector": "T-0001", "versions": "*",
                           "summary": "crashes on an empty argv", "evidence": "seen in this test",
                           "observed": {"result": "crash"}}, "kd.yaml")
    assert judge(vec, newest.version, obs, [defect]).outcome == "xfailed"


def test_fixed_defect_fails_as_fixed(oldest: QemuBuild) -> None:
    vec = vector(arguments={"uri": "gopher:127.0.0.1:70"},
                 expect=[{"result": "reject", "error-class": "GenericError",
                          "desc-pattern": ".+", "why": "any error text will do here"}])
    obs = Runner().run(vec, oldest)
    defect = parse_defect({"id": "KD-9998", "vector": "T-0001", "versions": "*",
                           "summary": "pretend this used to be accepted",
                           "evidence": "made up for this test", "observed": {"result": "accept"}},
                          "kd.yaml")
    verdict = judge(vec, oldest.version, obs, [defect])
    assert verdict.outcome == "failed" and "may be fixed" in verdict.message


def test_pair_fds_need_no_path_and_listen_fds_need_one() -> None:
    assert check_vector(vector(requires={"fds": PAIR}, peer={"fds": PAIR})) == []
    with pytest.raises(VectorError, match="exactly name and kind"):
        vector(requires={"fds": [{"name": "mig", "kind": "pair", "path": "{tmpdir}/x"}]})
    with pytest.raises(VectorError, match="exactly name and kind"):
        vector(requires={"fds": [{"name": "mig", "kind": "listen"}]})
    with pytest.raises(VectorError, match="not one of"):
        vector(requires={"fds": [{"name": "mig", "kind": "dup", "path": "{tmpdir}/x"}]})
