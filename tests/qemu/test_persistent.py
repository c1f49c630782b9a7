"""Persistent mode on real binaries: a QEMU serves rejected cases one after
another, an accepted case or a crash retires it, a crash on a reused QEMU is
confirmed alone on a fresh one, an empty case dir is handed to the next case,
a build whose settings cannot be read still serves, a sample of derived cases
and of golden vectors gives the same outcomes fresh and persistent, a reused
QEMU that did otherwise than a fresh one is reported (and fails strict mode),
and the pools of only a few builds stay open."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest

from qmpcompat.derive.run import derive_for, run_case
from qmpcompat.harness import QemuOptions
from qmpcompat.harness.pool import QemuPool
from qmpcompat.provision import QemuBuild
from qmpcompat.provision.build import build_from_path
from qmpcompat.report.runmodes import unsteady_rows
from qmpcompat.schema.sources.live import SchemaCache
from qmpcompat.types import Outcome
from qmpcompat.vectors.check import unmet
from qmpcompat.vectors.load import load
from qmpcompat.vectors.match import Verdict, judge
from qmpcompat.vectors.model import Expectation, Vector
from qmpcompat.vectors.persistent import PersistentRunner, persistable
from qmpcompat.vectors.run import Observation, Runner
from qmpcompat.vectors.transcript import run_fresh
from qmpcompat.vectors.verdict import NO_RULES, VerdictRules
from qmpcompat.vectors.versions import VersionRange

SCHEMAS = SchemaCache()
EMPTY_EXEC = {"channels": [{"channel-type": "main", "addr": {"transport": "exec", "args": []}}]}


def case(command: str, arguments: dict[str, Any], **extra: Any) -> Vector:
    return Vector(id="P", description="persistent", command=command, arguments=arguments,
                  flags=(), expect=(Expectation(VersionRange.parse("*"), "accept"),), file="t",
                  incoming="defer" if command == "migrate-incoming" else None, **extra)


def test_rejected_cases_share_one_qemu(newest: QemuBuild) -> None:
    with PersistentRunner(spares=0) as runner:
        for _ in range(5):
            obs = runner.run(case("migrate", {"uri": "bogus:x"}), newest)
            assert obs.result == "reject", obs.summary()
        assert runner.stats.cases == 5 and runner.stats.reused == 4
        assert runner.started == 1 and not runner.stats.retired


def test_a_build_that_does_not_start_runs_fresh_and_says_so(newest: QemuBuild,
                                                           tmp_path: Path) -> None:
    """No live QEMU to be had (a build that exits at start): each case runs on a
    fresh QEMU, which reports the failure, and the stats count every one."""
    script = tmp_path / "qemu-system-x86_64"
    real = " ".join(f"'{a}'" for a in newest.command())
    script.write_text(f'#!/bin/sh\ncase "$*" in *-qmp*) exit 3;; esac\nexec {real} "$@"\n')
    script.chmod(0o755)
    broken = build_from_path(str(script))
    with PersistentRunner(spares=0) as runner:
        for _ in range(2):
            obs = runner.run(case("migrate", {"uri": "bogus:x"}), broken)
            assert obs.result == "crash" and "status 3" in obs.detail, obs.summary()
        assert runner.stats.retired == {"no live QEMU": 2} and runner.stats.cases == 0


def test_accepted_case_retires_its_qemu(newest: QemuBuild) -> None:
    with PersistentRunner(spares=1) as runner:
        accept = runner.run(case("migrate", {"uri": "exec:cat > {tmpdir}/out"}), newest)
        assert accept.result == "accept" and accept.migration == "completed", accept.summary()
        reject = runner.run(case("migrate", {"uri": "bogus:x"}), newest)
        assert reject.result == "reject"
        assert runner.stats.retired == {"accepted": 1} and runner.stats.reused == 0
        assert runner.started == 3  # the first, its spare (now serving), the next spare


def test_an_empty_case_dir_is_reused_and_a_used_one_removed(newest: QemuBuild) -> None:
    """Two rejected cases in a row on one QEMU get the same empty case dir; a case
    that left a file in it (a ``dump-guest-memory`` that creates its file before it
    finds no guest memory) does not hand it on: the dir is removed and the next
    case gets a new one, on the same QEMU; nothing is left after close. (QEMU names
    the dir in its rejection of ``bogus:{tmpdir}``.)"""

    def case_dir(obs: Observation) -> Path:
        desc = str(obs.desc)
        assert obs.result == "reject" and "bogus:" in desc, obs.summary()
        return Path(desc.split("bogus:", 1)[1])

    naming = case("migrate", {"uri": "bogus:{tmpdir}"})
    dumping = [step("dump-guest-memory", {"paging": False, "protocol": "file:{tmpdir}/dump"}),
               step("migrate", {"uri": "bogus:{tmpdir}"})]
    with PersistentRunner(spares=0) as runner:
        first = case_dir(runner.run(naming, newest))
        assert first.is_dir() and not any(first.iterdir())  # kept for the next case
        assert case_dir(runner.run(naming, newest)) == first
        dumped = runner.run_transcript(dumping, newest, incoming=False)
        assert [("error" in r) for r in dumped.replies or ()] == [True, True]
        assert case_dir(dumped) == first
        assert not first.exists(), "a dir that held the dump was handed on (or no dump made)"
        last = case_dir(runner.run(naming, newest))
        assert last != first and last.is_dir() and not any(last.iterdir())
        assert runner.started == 1 and not runner.stats.retired and runner.stats.reused == 3
    assert not last.exists()


def test_crash_on_a_reused_qemu_is_confirmed_on_a_fresh_one(newest: QemuBuild) -> None:
    if newest.version < (10, 0):
        pytest.skip("channels need QEMU 10.0")
    with PersistentRunner(spares=0) as runner:
        assert runner.run(case("migrate", {"uri": "bogus:x"}), newest).result == "reject"
        crash = runner.run(case("migrate", EMPTY_EXEC), newest)
        assert crash.result == "crash" and "signal 11" in crash.detail, crash.summary()
        assert runner.stats.rerun == 1 and runner.stats.rerun_differs == 0
        assert runner.stats.retired == {"crash": 1}
        assert runner.run(case("migrate", {"uri": "bogus:x"}), newest).result == "reject"


def step(command: str, arguments: dict[str, Any] | None = None) -> dict[str, Any]:
    return {"execute": command, "arguments": arguments or {}}


READ_SETTINGS = [step("migrate", {"uri": "bogus:x"}), step("query-migrate-capabilities"),
                 step("query-migrate-parameters")]


def test_settings_a_transcript_made_are_set_back(newest: QemuBuild) -> None:
    """Capabilities and parameters set before a rejected migrate (and a cancel with
    nothing to cancel) are set back: the QEMU serves on, and the next transcript
    reads the same settings on it as on a fresh QEMU."""
    setting = [step("migrate-set-capabilities",
                    {"capabilities": [{"capability": "events", "state": True}]}),
               step("migrate-set-parameters", {"max-bandwidth": 12345, "downtime-limit": 77}),
               step("migrate", {"uri": "bogus:x"}), step("migrate_cancel")]
    with PersistentRunner(spares=0) as runner:
        obs = runner.run_transcript(setting, newest, incoming=False)
        assert obs.result == "reject", obs.summary()
        assert [("return" in r) for r in obs.replies or ()] == [True, True, False, True]
        after = runner.run_transcript(READ_SETTINGS, newest, incoming=False)
        assert runner.stats.restored == 1 and not runner.stats.retired
        assert runner.started == 1 and runner.stats.reused == 1
    fresh = run_fresh(READ_SETTINGS, newest, incoming=False)
    assert after.replies == fresh.replies
    params = [r["return"] for r in after.replies or () if r["execute"] == "query-migrate-parameters"]
    assert params[0]["max-bandwidth"] != 12345  # type: ignore[index, call-overload]


def test_a_build_that_refuses_the_settings_queries_still_serves(newest: QemuBuild) -> None:
    """A build too old to answer a settings query (QEMU before 2.4 has no
    ``query-migrate-parameters``; here the runner reads with a query no build has,
    which the real QEMU refuses): single commands, and transcripts that only read
    or cancel idly, still share its QEMU; a transcript that set a capability
    retires it ("settings unknown"), and the next case reads fresh settings."""
    reading = [step("migrate", {"uri": "bogus:x"}), step("query-migrate-capabilities"),
               step("migrate_cancel")]
    setting = [step("migrate-set-capabilities",
                    {"capabilities": [{"capability": "events", "state": True}]}),
               step("migrate", {"uri": "bogus:x"})]
    with PersistentRunner(spares=0) as runner:
        runner.settings_queries = ("query-migrate-capabilities", "query-migrate-parameterz")
        for _ in range(3):
            assert runner.run(case("migrate", {"uri": "bogus:x"}), newest).result == "reject"
        obs = runner.run_transcript(reading, newest, incoming=False)
        assert [("return" in r) for r in obs.replies or ()] == [False, True, True], obs.summary()
        assert runner.started == 1 and runner.stats.reused == 3 and not runner.stats.retired
        obs = runner.run_transcript(setting, newest, incoming=False)
        assert [("return" in r) for r in obs.replies or ()] == [True, False], obs.summary()
        assert runner.stats.retired == {"settings unknown": 1} and runner.stats.restored == 0
        after = runner.run_transcript(READ_SETTINGS, newest, incoming=False)
        assert runner.started == 2 and runner.stats.cases == 6
    assert after.replies == run_fresh(READ_SETTINGS, newest, incoming=False).replies


def test_an_accepted_step_that_cannot_be_set_back_retires(newest: QemuBuild) -> None:
    with PersistentRunner(spares=0) as runner:
        obs = runner.run_transcript([step("migrate-set-parameters", {"max-bandwidth": 1}),
                                     step("migrate", {"uri": "exec:cat > {tmpdir}/out"})],
                                    newest, incoming=False)
        assert obs.result == "accept", obs.summary()
        assert runner.stats.retired == {"accepted": 1} and runner.stats.restored == 0


def test_a_failure_the_caller_need_not_confirm_is_not_run_again(newest: QemuBuild) -> None:
    """A crash on a reused QEMU is run again on a fresh one only when ``confirm``
    says so (the hunt passes over crashes an earlier finding explains)."""
    if newest.version < (10, 0):
        pytest.skip("channels need QEMU 10.0")
    for wanted in (False, True):
        asked: list[str] = []

        def confirm(obs: Observation, wanted: bool = wanted, asked: list[str] = asked) -> bool:
            asked.append(obs.result)
            return wanted

        with PersistentRunner(spares=0) as runner:
            assert runner.run(case("migrate", {"uri": "bogus:x"}), newest).result == "reject"
            crash = runner.run(case("migrate", EMPTY_EXEC), newest, confirm=confirm)
            assert crash.result == "crash" and asked == ["crash"], crash.summary()
            assert runner.stats.rerun == int(wanted) and runner.stats.retired == {"crash": 1}


def test_what_cannot_be_persistent_runs_fresh(newest: QemuBuild) -> None:
    with_params = case("migrate", {"uri": "bogus:x"}, parameters={"max-bandwidth": 1})
    assert not persistable(with_params) and persistable(case("migrate", {"uri": "bogus:x"}))
    with PersistentRunner() as runner:
        assert runner.run(with_params, newest).result == "reject"
        assert runner.stats.fresh == 1 and runner.stats.cases == 0


def test_pool_hands_out_started_qemus_and_kills_its_spares(newest: QemuBuild) -> None:
    pool = QemuPool(newest, QemuOptions(), spares=2)
    first = pool.take()
    try:
        assert first.cmd("query-status")["status"]
        spares = list(pool._launched)
        assert len(spares) == 2 and all(s.alive for s in spares)
    finally:
        first.close()
        pool.close()
    assert not any(s.alive for s in spares) and not pool._launched


def test_derived_sample_same_outcomes_fresh_and_persistent(builds: list[QemuBuild]) -> None:
    """Every 7th derived case of both commands on the oldest and newest build:
    the same outcome and the same observation (result, error class, text)."""
    fresh = Runner()
    compared = 0
    with PersistentRunner() as persistent:
        for build in (builds[0], builds[-1]):
            for derived in derive_for(SCHEMAS.entries(build))[::7]:
                a = run_case(derived, build, fresh)
                b = run_case(derived, build, persistent)
                assert (a.verdict.outcome, a.observation.result, a.observation.error_class,
                        a.observation.desc) == (b.verdict.outcome, b.observation.result,
                                                b.observation.error_class, b.observation.desc), \
                    (derived.id, build.label, a.observation.summary(), b.observation.summary())
                compared += 1
        assert persistent.stats.reused > compared // 2
    assert compared >= 20


def test_vector_sample_same_outcomes_fresh_and_persistent(builds: list[QemuBuild]) -> None:
    """Every other golden vector that persistent mode serves on a reused QEMU, on
    the oldest and the newest build, run fresh and persistent in turn: the same
    verdict and the same observation (whatever differs by design left out); the
    persistent runs were mostly on a reused QEMU, and each says so."""
    vectors = [v for v in load().vectors if persistable(v)][::2]
    fresh = Runner()
    compared = 0
    with PersistentRunner() as persistent:
        for build in (builds[0], builds[-1]):
            for vec in vectors:
                if unmet(vec, build, SCHEMAS):
                    continue
                a, b = fresh.run(vec, build), persistent.run(vec, build)
                assert a.qemu == "fresh" and b.qemu in ("fresh", "forked", "reused")
                assert _steady(a) == _steady(b), (vec.id, build.label, a.summary(), b.summary())
                assert judge(vec, build.version, a, []).outcome == \
                    judge(vec, build.version, b, []).outcome, (vec.id, build.label)
                compared += 1
        assert persistent.stats.reused > compared // 2
    assert compared >= 60


def _steady(obs: Observation) -> str:
    """The observation without what differs between two runs by design: the time,
    the kind of QEMU, a guest's digests, the case's own port and dir."""
    text = json.dumps({k: v for k, v in obs.to_json().items()
                       if k not in ("seconds", "qemu", "rerun", "guest")}, sort_keys=True)
    return re.sub(r"/tmp/qmpv-[^/'\" ]+", "TMPDIR", re.sub(r"(127\.0\.0\.1|localhost|::1\]?):\d+",
                                                          r"\1:PORT", text))


def test_a_reused_qemu_that_does_otherwise_is_reported_and_fails_strict(newest: QemuBuild) -> None:
    """A live QEMU killed between two cases: the next case crashes on the reused
    QEMU, is run again on a fresh one, which rejects; the observation is the fresh
    one's, says what the reused QEMU did, and strict mode fails the case."""
    bogus = case("migrate", {"uri": "bogus:x"})
    with PersistentRunner(spares=0) as runner:
        first = runner.run(bogus, newest)
        assert first.result == "reject" and first.qemu == "forked" and first.rerun is None
        live = next(iter(runner._live.values())).qemu
        assert live.child is not None
        live.child.signal_kill()
        live.child.wait(10)
        obs = runner.run(bogus, newest)
    assert obs.result == "reject" and obs.qemu == "fresh", obs.summary()
    assert obs.rerun is not None and obs.rerun["qemu"] == "reused" and obs.rerun["result"] != "reject"
    assert obs.disagrees and runner.stats.rerun_differs == 1
    verdict = Verdict(Outcome.PASSED, "did what the vector says")
    assert NO_RULES.apply(verdict, obs, None).outcome == "passed"
    strict = VerdictRules(strict=True).apply(verdict, obs, None)
    assert strict.outcome == "failed" and "depended on the QEMU it ran on" in strict.message
    assert VerdictRules(strict=True).apply(verdict, first, None).outcome == "passed"
    assert unsteady_rows([{"vector": "P", "qemu": newest.label, "outcome": "failed",
                           "observed": obs.to_json()}])[0]["reused"] == obs.rerun["result"]


def test_pools_beyond_the_cap_are_closed(builds: list[QemuBuild]) -> None:
    """With at most two pools, a third build closes the least recently used one
    (its QEMUs killed); each case still gets its answer."""
    three = builds[:3]
    with PersistentRunner(spares=1, max_pools=2) as runner:
        for build in [*three, three[0]]:
            assert runner.run(case("migrate", {"uri": "bogus:x"}), build).result == "reject"
            assert len(runner._pools) <= 2
        assert runner.stats.closed == 2
        assert set(runner._pools) == {(three[2].binary, False), (three[0].binary, False)}
    assert not runner._pools and not runner._live
