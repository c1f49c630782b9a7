"""The exploration loop of one worker: first its share of the systematic pass
(``qmpcompat.hunt.systematic``: every edge value at every place, one place at a
time, and short state sequences), then Hypothesis batches of schema-valid
cases (one command, or a short transcript from the state model every
``state_every``-th batch), run in persistent mode (``qmpcompat.vectors.persistent``:
a QEMU serves case after case while they leave it unchanged) or each on a fresh
QEMU, until the time budget is spent or a number of cases has run, whichever
comes first.

What fails is said in ``qmpcompat.hunt.cases``. Hypothesis shrinks a failure,
``reduce`` finishes the job, and the minimal transcript is reproduced alone on
a fresh QEMU.

Deterministic with a seed: batch ``n`` of worker ``w`` uses a seed derived from
(seed, w, n), so the same seed replays the same cases in the same order (how
many run depends on the budget; with a case bound and no time budget, exactly
the same cases run, whatever the machine's load).
"""

from __future__ import annotations

import hashlib
import json
import math
import shutil
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from functools import partial

from hypothesis import HealthCheck, Phase, Verbosity, given, reject, settings
from hypothesis import seed as fix_seed
from hypothesis.configuration import set_hypothesis_home_dir, storage_directory
from hypothesis.errors import Flaky
from hypothesis.strategies import SearchStrategy

from qmpcompat.derive.shapes import TypeWalker
from qmpcompat.errors import QmpCompatError
from qmpcompat.harness.process import private_dir
from qmpcompat.hunt.cases import (
    Finding,
    bug_key,
    case_vector,
    enum_defaults,
    incoming_exit,
    is_failure,
    pairs,
    shapes,
    slow_shapes,
)
from qmpcompat.hunt.floor import start_once
from qmpcompat.hunt.reduce import reduce_tree
from qmpcompat.hunt.state import STEP_COMMANDS, StateModel
from qmpcompat.hunt.strategies import TreeStrategies
from qmpcompat.hunt.systematic import plan
from qmpcompat.provision import QemuBuild
from qmpcompat.safety import Policy
from qmpcompat.schema.model.query import Entry, SchemaIndex
from qmpcompat.vectors.persistent import Confirm, PersistentRunner
from qmpcompat.vectors.run import Observation, Runner
from qmpcompat.vectors.transcript import Step, main_step, run_fresh, steps_problems

BATCH = 40
STATE_EVERY = 3  # every third round of batches draws transcripts from the state model
SLOW_CASE = 1.0  # seconds: a case QEMU itself takes long over (e.g. a vsock connect timing out)
MAX_PASSED = 200_000  # passing cases remembered per worker, to skip repeats
SHRINK_BUDGET = 90.0  # seconds a worker may spend shrinking one failure past its budget


def batch_seed(seed: int, worker: int, batch: int) -> int:
    """The seed of one batch: a stable function of the run's seed, worker and batch."""
    digest = hashlib.sha256(f"{seed}/{worker}/{batch}".encode()).digest()
    return int.from_bytes(digest[:8], "big")


@dataclass
class WorkerStats:
    cases: int = 0
    batches: int = 0
    seconds: float = 0.0
    case_seconds: float = 0.0  # time inside the runner (QEMU start to teardown)
    results: dict[str, int] = field(default_factory=dict)
    floor_samples: list[float] = field(default_factory=list)  # bare QEMU starts, interleaved
    case_times: list[float] = field(default_factory=list)  # each case, QEMU start to teardown
    qemu_starts: int = 0  # QEMUs started for cases (spares included; floor samples not)
    reused: int = 0  # cases served by a QEMU that had served an earlier case
    retired: dict[str, int] = field(default_factory=dict)  # why a persistent QEMU was given up
    rerun: int = 0  # failures on a reused QEMU, run again alone on a fresh one
    forked: int = 0  # QEMUs for cases forked from a fork server (not exec'd)
    exec_reason: str = ""  # why persistent mode exec'd QEMUs instead ('' if it did not)
    systematic: int = 0  # cases of the systematic pass




def distinct(findings: Sequence[Finding], explorer: Explorer) -> list[Finding]:
    """The findings no simpler one explains (same bug key, and the simpler
    one's decisive choices all made), simplest (fewest decisive choices) first;
    of equal ones, the one found first (fewest seconds into its worker's hunt)."""
    out: list[Finding] = []
    for f in sorted(findings, key=lambda f: (len(explorer.decisive(f.steps)), len(f.steps),
                                             len(json.dumps(f.steps)), f.key,
                                             f.found_after_seconds)):
        if not any(g.bug_key == f.bug_key and explorer.decisive(g.steps) <= pairs(f.steps)
                   and {s["execute"] for s in g.steps} <= {s["execute"] for s in f.steps}
                   for g in out):
            out.append(f)
    return out


class _Failed(Exception):
    def __init__(self, obs: Observation) -> None:
        super().__init__(obs.summary())
        self.obs = obs


class Explorer:
    """Runs the hunt for one worker on one build."""

    def __init__(self, build: QemuBuild, entries: list[Entry], commands: Sequence[str],
                 runner: Runner | None = None, floor_every: int = 0,
                 state_every: int = STATE_EVERY) -> None:
        self.build = build
        self.floor_every = floor_every
        self.state_every = state_every
        index = SchemaIndex(entries)
        self.commands = [c for c in commands if c in index]
        walker = TypeWalker(index)
        self.strategies = TreeStrategies(walker)
        self.model = StateModel(self.strategies)
        self.runner = runner or Runner()
        self.stats = WorkerStats()
        self.enum_defaults = enum_defaults(walker, [*self.commands, *STEP_COMMANDS])
        self.known: list[tuple[str, set[tuple[str, str]], set[str]]] = []
        self.slow: set[str] = set()  # step shapes seen to take over SLOW_CASE seconds
        self.passed: set[str] = set()  # cases this worker ran that did not fail
        self.max_cases: int | None = None  # the current hunt's case bound
        self.seed = 0  # ... its seed
        self.started_at = 0.0  # ... and when it started (monotonic)

    def decisive(self, steps: Sequence[Step]) -> set[tuple[str, str]]:
        """The enum choices of a transcript that shrinking could not undo: members
        whose value is not their enum's first. A minimal transcript's decisive
        choices are what its failure needs."""
        return {(k, v) for k, v in pairs(list(steps))
                if k in self.enum_defaults and self.enum_defaults[k] != v}

    def is_known(self, steps: Sequence[Step], obs: Observation) -> bool:
        """True when a finding of this worker already explains the failure: same
        bug (``cases.bug_key``), the transcript makes all its decisive choices and
        sends its commands."""
        kind = bug_key(steps, obs.to_json())
        have, commands = pairs(list(steps)), {s["execute"] for s in steps}
        return any(k == kind and choices <= have and sent <= commands
                   for k, choices, sent in self.known)

    def is_new(self, steps: Sequence[Step], obs: Observation) -> bool:
        """Whether a failure on a reused QEMU is worth running again on a fresh one:
        no finding of this worker explains it yet (``is_known``)."""
        return not self.is_known(steps, obs)

    def sync_stats(self) -> None:
        """Copy the persistent runner's counts into the worker's stats."""
        if isinstance(self.runner, PersistentRunner):
            p = self.runner.sync_stats()
            self.stats.qemu_starts = self.runner.started + self.stats.cases - p.cases + p.rerun
            self.stats.reused, self.stats.retired, self.stats.rerun = p.reused, p.retired, p.rerun
            self.stats.forked, self.stats.exec_reason = p.forked, p.exec_reason
        else:
            self.stats.qemu_starts = self.stats.cases

    def run_case(self, steps: list[Step], fresh: bool = False,
                 confirm: Confirm | None = None) -> Observation:
        """One case on the runner's QEMU (alone on a fresh one with ``fresh``; the
        runner fills {tmpdir} and {port}; in persistent mode ``confirm`` says which
        failures on a reused QEMU to run again on a fresh one, default all); every
        ``floor_every``-th case also times one bare QEMU start for the floor."""
        main = main_step(steps)
        incoming = main["execute"] == "migrate-incoming"
        if fresh:  # alone on a fresh QEMU, every reply kept for the report
            obs = run_fresh(steps, self.build, incoming, self.runner.timeout)
        elif len(steps) == 1:
            vec = case_vector(main["execute"], main["arguments"])
            obs = (self.runner.run(vec, self.build, confirm=confirm)
                   if isinstance(self.runner, PersistentRunner) else self.runner.run(vec, self.build))
        elif isinstance(self.runner, PersistentRunner):
            obs = self.runner.run_transcript(steps, self.build, incoming, confirm)
        else:
            obs = run_fresh(steps, self.build, incoming, self.runner.timeout)
        if obs.seconds > SLOW_CASE:
            self.slow |= slow_shapes(steps, obs)
        self.stats.cases += 1
        self.stats.case_seconds += obs.seconds
        self.stats.case_times.append(obs.seconds)
        result = ("incoming-exit" if incoming_exit(steps, obs) else
                  "environment" if obs.environment else obs.result)
        if len(steps) > 1:
            self.stats.results["transcripts"] = self.stats.results.get("transcripts", 0) + 1
        self.stats.results[result] = self.stats.results.get(result, 0) + 1
        if self.floor_every and self.stats.cases % self.floor_every == 0:
            self.stats.floor_samples.append(start_once(self.build))  # under the same load
        return obs

    def strategy(self, command: str, stateful: bool) -> SearchStrategy[list[Step]]:
        """The batch's strategy: single-command cases, or transcripts around it."""
        return self.model.transcripts(command) if stateful else self.model.single(command)

    def spent(self) -> bool:
        """Whether the case bound of the current hunt is reached."""
        return self.max_cases is not None and self.stats.cases >= self.max_cases

    def hunt(self, budget: float | None, seed: int, worker: int = 0,
             on_finding: Callable[[Finding], None] | None = None,
             max_cases: int | None = None, workers: int = 1,
             systematic: bool = True) -> list[Finding]:
        """Explore until ``budget`` seconds have passed or ``max_cases`` cases have run
        (whichever comes first; None: no such bound, but one of them is needed);
        return the distinct findings. Shrinking a failure found before the bound may
        run cases past it (for at most SHRINK_BUDGET seconds). With ``systematic``,
        the worker first runs its share of the systematic pass (one of ``workers``);
        then batches go round the commands, and every ``state_every``-th round
        draws transcripts from the state model (0: never)."""
        if budget is None and max_cases is None:
            raise QmpCompatError("a hunt needs a time budget or a number of cases")
        start = self.started_at = time.monotonic()
        deadline = start + budget if budget is not None else math.inf
        self.max_cases, self.seed = max_cases, seed
        home, before = private_dir("qmph-"), storage_directory(intent_to_write=False).home_directory
        set_hypothesis_home_dir(home)  # no .hypothesis/ in the caller's directory
        found: dict[str, Finding] = {}

        def keep(finding: Finding | None) -> None:
            if finding is not None and finding.key not in found:
                found[finding.key] = finding
                self.known.append((finding.bug_key, self.decisive(finding.steps),
                                   {s["execute"] for s in finding.steps}))
                if on_finding is not None:
                    on_finding(finding)

        batch = 0
        try:
            for finding in self.sweep(worker, workers, deadline) if systematic else ():
                keep(finding)
            while time.monotonic() < deadline and self.commands and not self.spent():
                command = self.commands[batch % len(self.commands)]
                rnd = batch // len(self.commands)
                stateful = bool(self.state_every) and rnd % self.state_every == self.state_every - 1
                keep(self.batch(command, stateful, seed, worker, batch, deadline))
                batch += 1
        finally:
            set_hypothesis_home_dir(before)
            shutil.rmtree(home, ignore_errors=True)
        self.stats.batches = batch
        self.stats.seconds = time.monotonic() - start
        self.sync_stats()
        return list(found.values())

    def batch(self, command: str, stateful: bool, seed: int, worker: int, batch: int,
              deadline: float) -> Finding | None:
        """One Hypothesis run of up to BATCH cases; the minimized finding, if any."""
        failures: dict[str, Observation] = {}
        first: list[list[Step]] = []
        cases: dict[str, list[Step]] = {}
        shrink_until: list[float] = []
        found_after: list[tuple[int, float]] = []

        @settings(max_examples=BATCH, database=None, deadline=None, derandomize=False,
                  suppress_health_check=list(HealthCheck), phases=(Phase.generate, Phase.shrink),
                  report_multiple_bugs=False, verbosity=Verbosity.quiet, print_blob=False)
        @given(self.strategy(command, stateful))
        def prop(steps: list[Step]) -> None:
            key = json.dumps(steps, sort_keys=True)
            obs = failures.get(key)  # seen failing: no need to start QEMU again
            if obs is None:
                now = time.monotonic()
                if not self._worth_running(key, steps, not first,
                                           shrink_until[0] if shrink_until else deadline):
                    return
                obs = self.run_case(steps, confirm=lambda o: bool(first) or self.is_new(steps, o))
                if not is_failure(steps, obs):
                    if len(self.passed) < MAX_PASSED:
                        self.passed.add(key)
                    return
                if not first and self.is_known(steps, obs):
                    self.stats.results["known"] = self.stats.results.get("known", 0) + 1
                    return  # an earlier finding explains it: keep exploring
                failures[key], cases[key] = obs, steps
                if not first:
                    first.append(steps)
                    found_after.append((self.stats.cases, round(now - self.started_at, 1)))
                    shrink_until.append((now if deadline == math.inf else max(deadline, now))
                                        + SHRINK_BUDGET)
            raise _Failed(obs)  # one place: Hypothesis tells failures apart by where they rise

        fix_seed(batch_seed(seed, worker, batch))(prop)
        flaky = False
        try:
            prop()
        except _Failed:
            pass
        except Flaky:
            flaky = True
        if not first:
            return None
        # The simplest failing case seen (Hypothesis's shrinker produced it; its own
        # choice of what to report orders by draw sequence, not by size).
        key = min(cases, key=lambda k: (len(self.decisive(cases[k])), len(cases[k]), len(k), k))
        return self.settle(cases[key], failures, first[0], (seed, worker, batch),
                           shrink_until[0], flaky, found_after[0])

    def _worth_running(self, key: str, steps: list[Step], exploring: bool, until: float) -> bool:
        """Whether a drawn case is run: not when the budget is spent (the rest of the
        batch passes without running), nor a case that ran before without failing
        while exploring (Hypothesis starts each batch near the simplest cases: QEMU
        answers the same); a case the safety gate refuses, or of a shape QEMU takes
        seconds over (a vsock connect timing out: once is evidence enough), is
        rejected, and Hypothesis draws another."""
        if time.monotonic() > until or (exploring and self.spent()):
            return False
        if key in self.passed and exploring:
            self.stats.results["repeat"] = self.stats.results.get("repeat", 0) + 1
            return False
        if steps_problems(steps, Policy.template()):
            reject()
        if shapes(steps) & self.slow:
            self.stats.results["slow-shape"] = self.stats.results.get("slow-shape", 0) + 1
            reject()
        return True

    def settle(self, steps: list[Step], failures: dict[str, Observation], original: list[Step],
               origin: tuple[int, int, int], until: float, flaky: bool,
               found_after: tuple[int, float]) -> Finding:
        """The finding a failing transcript is: reduced (``reduce_tree``, until the
        monotonic time ``until``) while it fails with the same bug, and run again
        alone on a fresh QEMU. ``failures`` holds the observations of failing
        transcripts by their JSON (``steps``'s among them); ``origin`` is (seed,
        worker, batch); ``found_after`` the worker's cases and seconds when the
        failure was first seen."""
        kind = bug_key(steps, failures[json.dumps(steps, sort_keys=True)].to_json())

        def still_fails(candidate: list[Step]) -> bool:
            # the main command may change (a step before the one QEMU failed on
            # dropped): the bug, which names the command it failed on, may not
            if steps_problems(candidate, Policy.template()):
                return False
            obs = self.run_case(candidate)
            if is_failure(candidate, obs) and bug_key(candidate, obs.to_json()) == kind:
                failures[json.dumps(candidate, sort_keys=True)] = obs
                return True
            return False

        minimal = reduce_tree(steps, still_fails, self.enum_defaults, until)
        observed = failures[json.dumps(minimal, sort_keys=True)]
        again = self.run_case(minimal, fresh=True)
        seed, worker, batch = origin
        return Finding(steps=minimal, qemu=self.build.label,
                       qemu_version=self.build.version_str, binary=self.build.binary,
                       observed=observed.to_json(), reproduced=again.to_json(),
                       original=original, seed=seed, worker=worker, batch=batch,
                       flaky=flaky or not is_failure(minimal, again),
                       found_after_cases=found_after[0], found_after_seconds=found_after[1])

    def sweep(self, worker: int, workers: int, deadline: float) -> Iterator[Finding]:
        """This worker's share of the systematic pass (``qmpcompat.hunt.systematic``:
        every ``workers``-th case from the ``worker``-th), until the deadline or the
        case bound; each new failure as a finding (batch -1)."""
        for steps in plan(self.strategies.walker, self.commands)[worker::workers]:
            if time.monotonic() >= deadline or self.spent():
                return
            if steps_problems(steps, Policy.template()):
                continue  # the safety gate refuses it: never sent
            if shapes(steps) & self.slow:
                self.stats.results["slow-shape"] = self.stats.results.get("slow-shape", 0) + 1
                continue
            obs = self.run_case(steps, confirm=partial(self.is_new, steps))
            self.stats.systematic += 1
            if not is_failure(steps, obs):
                if len(self.passed) < MAX_PASSED:
                    self.passed.add(json.dumps(steps, sort_keys=True))
                continue
            if self.is_known(steps, obs):
                self.stats.results["known"] = self.stats.results.get("known", 0) + 1
                continue
            now = time.monotonic()
            until = (now if deadline == math.inf else max(deadline, now)) + SHRINK_BUDGET
            yield self.settle(steps, {json.dumps(steps, sort_keys=True): obs}, steps,
                              (self.seed, worker, -1), until, False,
                              (self.stats.cases, round(now - self.started_at, 1)))
