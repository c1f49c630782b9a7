"""Persistent mode: one QEMU serves many cases while they leave it unchanged.

A fuzzer's persistent mode, for QMP cases. A case of one command on a bare
QEMU (no peer, no fds, no capabilities or parameters set first, ``-M none``)
runs on a live QEMU of its build and options. After the command, a cheap state
probe (``query-status`` and ``query-migrate``, which also checks QEMU still
answers) is compared with what the same QEMU said when it was fresh:

- the command was rejected and the probe is unchanged: the QEMU serves the
  next case (QEMU's input checks run before any command code, and a rejected
  ``migrate``/``migrate-incoming`` keeps no state);
- a transcript whose main command was rejected, and whose only accepted steps
  set capabilities or parameters (``migrate-set-capabilities``,
  ``migrate-set-parameters``), only read (``query-*``), or cancel a
  migration that never started (``migrate_cancel`` with every ``migrate`` and
  ``migrate-incoming`` of the transcript rejected: QEMU's cancel acts only on a
  running migration, and the probe checks the status did not move): what they set is
  set back to what the fresh QEMU reported, and the QEMU serves on when
  ``query-migrate-capabilities`` and ``query-migrate-parameters`` then answer
  exactly as they did when it was fresh, and the probe is unchanged (on a build
  that refuses either query, a very old one, the settings are unknown: a
  transcript that set one retires the QEMU, "settings unknown", and every other
  case is served as above);
- the command was accepted (a migration is followed to its end as on a fresh
  QEMU), the probe changed, or QEMU died or hung: the QEMU is retired (killed at
  once, its teardown finished in the background) and the next case gets a fresh
  one, from a pool that starts a spare ahead (forked from a fork server,
  ``qmpcompat.harness.forkserver``, unless ``fork`` is off or there can be none);
- a crash, hang or set-up error on a QEMU that had served earlier cases is run
  again alone on a fresh QEMU, and that run is the observation: a finding never
  depends on what ran before it (a caller may pass over failures it has no use
  for confirming: the hunt, those an earlier finding already explains).

Every case gets its own fresh ``{tmpdir}`` and ``{port}``, as on a fresh QEMU
(a case that left its dir empty hands the same empty dir to the next case on
that QEMU, which is as fresh, and saves making and removing one per case).
Any other vector runs on a fresh QEMU through the ordinary ``Runner``.
"""

from __future__ import annotations

import os
import shutil
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path

from qmpcompat.errors import QemuDied, QemuError, QemuHung, UnsafeInput
from qmpcompat.harness import CommandFailed, Qemu, QemuOptions
from qmpcompat.harness.pool import QemuPool
from qmpcompat.harness.process import private_dir
from qmpcompat.provision import QemuBuild
from qmpcompat.safety import Policy, fill
from qmpcompat.types import JSON, JSONObject, RunMode, json_list, json_object
from qmpcompat.vectors.match import NEVER_OK
from qmpcompat.vectors.model import Vector
from qmpcompat.vectors.run import (
    MIGRATION_TIMEOUT,
    Observation,
    Runner,
    free_port,
    migration_state,
    observe,
)
from qmpcompat.vectors.safety import check_vector
from qmpcompat.vectors.transcript import Step, fill_steps, play, run_fresh, steps_problems

Probe = tuple[object, object]
Confirm = Callable[[Observation], bool]  # whether a failure on a reused QEMU is run again
Settings = tuple[JSONObject, JSONObject]  # capability -> state, parameter -> value

# Steps that, accepted, leave nothing behind once what they set is set back;
# and a cancel, which with no migration started has nothing to cancel.
RESTORABLE = frozenset({"migrate-set-capabilities", "migrate-set-parameters"})
IDLE_CANCEL = frozenset({"migrate_cancel"})
# What reads the settings: every capability's state, then every parameter's value.
SETTINGS_QUERIES = ("query-migrate-capabilities", "query-migrate-parameters")


def leaves_state(command: str) -> bool:
    """Whether ``command``, accepted in a transcript whose migrations were all
    rejected, may leave state that cannot be set back: anything but the
    restorable settings, the idle cancel and the ``query-*`` commands (which only
    read, as the safety gate holds them to)."""
    return not (command in RESTORABLE or command in IDLE_CANCEL or command.startswith("query-"))


def persistable(vec: Vector) -> bool:
    """Whether a vector can run on a QEMU that served other cases: one command on
    a bare ``-M none`` QEMU, nothing set up before it, no other side."""
    return (vec.peer is None and not vec.fds and not vec.capabilities and not vec.parameters
            and vec.machine == "none")


def probe(q: Qemu) -> Probe:
    """The state a rejected command must leave unchanged: the run state and the
    migration status, asked in one round trip (QemuDied / QemuHung if QEMU no
    longer answers)."""
    status, migration = q.commands([("query-status", None), ("query-migrate", None)])
    return json_object(status).get("status"), json_object(migration).get("status")


def settings(q: Qemu, queries: tuple[str, str] = SETTINGS_QUERIES) -> Settings:
    """Every migration capability's state and every parameter's value, asked in one
    round trip with ``queries`` (CommandFailed when QEMU refuses either)."""
    caps, params = q.commands([(queries[0], None), (queries[1], None)])
    states = {}
    for entry in json_list(caps):
        cap = json_object(entry)
        states[str(cap.get("capability"))] = cap.get("state")
    return states, json_object(params)


def restore(q: Qemu, base: Settings, queries: tuple[str, str] = SETTINGS_QUERIES) -> bool:
    """Set back every capability and parameter whose value differs from ``base``
    (capabilities first, then parameters, in one round trip); whether QEMU then
    reports exactly ``base`` (read with ``queries``). CommandFailed when QEMU
    refuses to set one back."""
    caps, params = settings(q, queries)
    if caps.keys() != base[0].keys() or params.keys() != base[1].keys():
        return False  # a parameter that appeared or went: nothing to set it back with
    back_caps: list[JSON] = [{"capability": k, "state": base[0][k]}
                             for k in caps if caps[k] != base[0][k]]
    back_params = {k: base[1][k] for k in params if params[k] != base[1][k]}
    steps: list[tuple[str, JSONObject | None]] = []
    if back_caps:
        steps.append(("migrate-set-capabilities", {"capabilities": back_caps}))
    if back_params:
        steps.append(("migrate-set-parameters", back_params))
    if not steps:
        return True
    q.commands(steps)
    return settings(q, queries) == base


def _empty(path: Path) -> bool:
    with os.scandir(path) as entries:
        return next(entries, None) is None


@dataclass
class PersistentStats:
    """How the cases were served."""

    cases: int = 0  # cases run in persistent mode
    reused: int = 0  # ... on a QEMU that had served an earlier case
    fresh: int = 0  # vectors that cannot be persistent, run by the ordinary runner
    # why a QEMU was given up: accepted, state changed, settings unknown, crash, hang,
    # error; and no live QEMU (none could be started: the case ran fresh)
    retired: dict[str, int] = field(default_factory=dict)
    rerun: int = 0  # failures on a reused QEMU run again alone on a fresh one
    rerun_differs: int = 0  # ... where the fresh run did not fail the same way
    restored: int = 0  # transcripts whose capabilities and parameters were set back
    forked: int = 0  # QEMUs the pools forked from a fork server (the rest were exec'd)
    exec_reason: str = ""  # why a pool exec'd its QEMUs ('' when every pool forked them)
    # per build label: why its pools exec'd their QEMUs ("the fork server is off", or
    # why none could serve it); a build whose pools forked them is not named
    exec_reasons: dict[str, str] = field(default_factory=dict)
    closed: int = 0  # pools closed to make room for another build's

    def retire(self, why: str) -> None:
        self.retired[why] = self.retired.get(why, 0) + 1

    def count_pool(self, pool: QemuPool) -> None:
        """Add what a pool did to the stats (when it is closed, or at the end)."""
        self.forked += pool.forked
        if pool.exec_reason:
            self.exec_reasons.setdefault(pool.build.label, pool.exec_reason)
        self.exec_reason = "; ".join(sorted(set(self.exec_reasons.values())))

    def for_reports(self) -> JSONObject:
        """What the reports take of these stats (a worker sends it to the
        controller): per build, why its QEMUs were exec'd (results.json's
        ``run.fork_unavailable``). The rest the records say case by case."""
        return {"exec_reasons": dict(self.exec_reasons)}


@dataclass
class _Live:
    qemu: Qemu
    baseline: Probe
    settings: Settings | None  # what the QEMU reported when fresh (None: it refused)
    served: int = 0
    spare_dir: Path | None = None  # an empty case dir the next case may use

    def drop_dir(self) -> None:
        if self.spare_dir is not None:
            shutil.rmtree(self.spare_dir, ignore_errors=True)
            self.spare_dir = None


class PersistentRunner(Runner):
    """Runs vectors like ``Runner``, reusing a QEMU while cases leave it unchanged.

    ``settings_queries`` are the commands a fresh QEMU's settings are read with
    (``SETTINGS_QUERIES``); a build that refuses one serves with its settings
    unknown."""

    def __init__(self, timeout: float = 10.0, spares: int = 1, keep_dirs: bool = False,
                 allow_exec: bool = False, fork: bool = True, max_pools: int | None = None) -> None:
        super().__init__(timeout, keep_dirs, allow_exec)
        self.spares, self.fork, self.max_pools = spares, fork, max_pools
        self.stats = PersistentStats()
        self.settings_queries = SETTINGS_QUERIES
        # in the order of their last use, the most recent last (a dict keeps it)
        self._pools: dict[tuple[str, bool], QemuPool] = {}
        self._live: dict[tuple[str, bool], _Live] = {}
        # What a fresh QEMU of each build and option set answers to the probe: the
        # first one's answer (every fresh one answers the same; a QEMU that did not
        # would be retired at its first probe, never kept by mistake).
        self._baseline: dict[tuple[str, bool], tuple[Probe, Settings | None]] = {}

    def close(self) -> None:
        """Kill every QEMU still held (live or spare); wait for every teardown."""
        for key in list(self._pools):
            self._close_pool(key)
        super().close()

    def _close_pool(self, key: tuple[str, bool]) -> None:
        """Kill the live QEMU and the spares of one build and option set, and count
        what its pool did."""
        live = self._live.pop(key, None)
        if live is not None:
            live.qemu.close()
            live.drop_dir()
        pool = self._pools.pop(key)
        pool.close()
        self.stats.count_pool(pool)

    @property
    def started(self) -> int:
        """QEMUs the pools launched (spares included), not counting fresh runs."""
        return sum(p.started for p in self._pools.values())

    def sync_stats(self) -> PersistentStats:
        """The stats, with how the open pools started their QEMUs counted in (a copy:
        the closed pools' counts are the runner's own)."""
        stats = replace(self.stats, retired=dict(self.stats.retired),
                        exec_reasons=dict(self.stats.exec_reasons))
        for pool in self._pools.values():
            stats.count_pool(pool)
        return stats

    def _take(self, build: QemuBuild, incoming: bool) -> _Live:
        key = (build.binary, incoming)
        live = self._live.get(key)
        if key in self._pools:
            self._pools[key] = self._pools.pop(key)  # the most recently used now
        if live is None:
            pool = self._pools.get(key)
            if pool is None:
                while self.max_pools is not None and len(self._pools) >= self.max_pools:
                    self._close_pool(next(iter(self._pools)))  # the least recently used
                    self.stats.closed += 1
                pool = self._pools[key] = QemuPool(
                    build, QemuOptions(incoming_defer=incoming, timeout=self.timeout), self.spares,
                    fork=self.fork)
            qemu = pool.take()
            try:
                if key not in self._baseline:
                    self._baseline[key] = probe(qemu), self._settings(qemu)
            except BaseException:
                qemu.close()
                raise
            live = self._live[key] = _Live(qemu, *self._baseline[key])
        return live

    def _settings(self, qemu: Qemu) -> Settings | None:
        """A fresh QEMU's settings; None when it refuses a settings query (a build
        too old to have it): a transcript that sets any then retires its QEMU."""
        try:
            return settings(qemu, self.settings_queries)
        except CommandFailed:
            return None

    def _retire(self, build: QemuBuild, incoming: bool, why: str) -> None:
        key = (build.binary, incoming)
        live = self._live.pop(key, None)
        if live is not None:
            self._pools[key].discard(live.qemu)  # torn down in the background
            live.drop_dir()
            self.stats.retire(why)

    def run(self, vec: Vector, build: QemuBuild, peer_build: QemuBuild | None = None,
            confirm: Confirm | None = None) -> Observation:
        """What ``Runner.run`` would observe; on a reused QEMU where possible (never
        for a cross-version cell, whose peer runs another build). ``confirm``: see
        ``_serve``."""
        if (not persistable(vec) or check_vector(vec, self.allow_exec)
                or (peer_build is not None and peer_build != build)):
            self.stats.fresh += 1
            return self.run_fresh(vec, build, peer_build)  # (which also reports a refusal)
        return self._serve(build, vec.incoming == "defer",
                           lambda live, tmp: self._one(vec, live, tmp),
                           lambda: self.run_fresh(vec, build), confirm)

    def run_transcript(self, steps: Sequence[Step], build: QemuBuild,
                       incoming: bool, confirm: Confirm | None = None) -> Observation:
        """What ``transcript.run_fresh`` would observe; on a reused QEMU where possible
        (it serves on while every step is rejected and the probe is unchanged).
        ``confirm``: see ``_serve``."""

        def on(live: _Live, tmp: str) -> tuple[Observation, str]:
            obs = play(live.qemu, fill_steps(steps, tmp))
            if obs.result in NEVER_OK:
                return obs, obs.result
            accepted = {str(r.get("execute")) for r in obs.replies or () if "return" in r}
            if any(leaves_state(c) for c in accepted):
                return obs, "accepted"
            try:
                if accepted & RESTORABLE:
                    if live.settings is None:
                        return obs, "settings unknown"  # nothing to set them back to
                    if not restore(live.qemu, live.settings, self.settings_queries):
                        return obs, "state changed"
                    self.stats.restored += 1
                return obs, "" if probe(live.qemu) == live.baseline else "state changed"
            except (QemuDied, QemuHung, QemuError, OSError):
                return obs, "error"

        if steps_problems(list(steps), Policy.template(self.allow_exec)):
            return run_fresh(steps, build, incoming, self.timeout, self.allow_exec)  # refused
        return self._serve(build, incoming, on,
                           lambda: run_fresh(steps, build, incoming, self.timeout,
                                             self.allow_exec), confirm)

    def _serve(self, build: QemuBuild, incoming: bool,
               on: Callable[[_Live, str], tuple[Observation, str]],
               fresh: Callable[[], Observation], confirm: Confirm | None) -> Observation:
        """Run one case with ``on`` (the live QEMU, the case's tmpdir: the observation
        and why to retire the QEMU, '' to keep it); a failure on a reused QEMU is
        replaced by ``fresh``, the same case alone on a fresh QEMU, unless
        ``confirm`` says it need not be (the hunt passes over a failure an earlier
        finding already explains: run again or not, it is no new finding)."""
        start = time.monotonic()
        try:
            live = self._take(build, incoming)
        except (QemuDied, QemuHung, QemuError, OSError):
            self.stats.retire("no live QEMU")  # counted: every such case runs fresh
            return fresh()  # the fresh run reports the start failure
        self.stats.cases += 1
        reused = live.served > 0
        self.stats.reused += reused
        live.served += 1
        mode = RunMode.REUSED if reused else \
            RunMode.FORKED if live.qemu.spawner is not None else RunMode.FRESH
        tmp, live.spare_dir = live.spare_dir, None
        if tmp is None:
            tmp = private_dir("qmpv-")
            live.qemu.policy = Policy.for_case(tmp, self.allow_exec)  # this case's own dir
        why = "error"
        try:
            obs, why = on(live, str(tmp))
        finally:
            self._after_case(build, incoming, why, tmp, live)
        obs.qemu = mode.value
        if reused and obs.result in NEVER_OK and (confirm is None or confirm(obs)):
            self.stats.rerun += 1
            again = fresh()
            again.rerun = {"qemu": mode.value, "result": obs.result, "detail": obs.detail}
            self.stats.rerun_differs += again.disagrees
            return again
        obs.seconds = round(time.monotonic() - start, 4)
        return obs

    def _after_case(self, build: QemuBuild, incoming: bool, why: str, tmp: Path,
                    live: _Live) -> None:
        """Keep the case dir for the next case when it is empty and the QEMU serves on,
        else remove it (unless dirs are kept); retire the QEMU when ``why`` says to."""
        try:
            if not why and not self.keep_dirs and _empty(tmp):
                live.spare_dir = tmp
            elif not self.keep_dirs:
                shutil.rmtree(tmp, ignore_errors=True)
        finally:
            if why:
                self._retire(build, incoming, why)

    def _one(self, vec: Vector, live: _Live, tmp: str) -> tuple[Observation, str]:
        """One vector's command on a live QEMU: the observation and why the QEMU
        must be retired ('' when it can serve the next case)."""
        q = live.qemu
        args = fill(vec.arguments, {"tmpdir": tmp, "port": str(free_port())})
        stage = f"running {vec.command}"
        try:
            reply = q.execute(vec.command, args)
            obs = observe(reply)
            if reply.ok and vec.command == "migrate":
                stage = "following the migration"
                obs.migration, obs.migration_error = migration_state(q, MIGRATION_TIMEOUT)
            stage = f"checking QEMU still answers after {vec.command}"
            state = probe(q)
        except (QemuDied, QemuHung) as exc:
            kind = "crash" if isinstance(exc, QemuDied) else "hang"
            return Observation(kind, detail=f"the QEMU under test, {stage}: {exc}"), kind
        except (QemuError, UnsafeInput, OSError) as exc:
            return Observation("error", detail=f"{stage}: {exc}"), "error"
        if reply.ok:
            return obs, "accepted"
        return obs, "" if state == live.baseline else "state changed"
