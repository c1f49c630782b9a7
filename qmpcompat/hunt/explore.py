"""The exploration loop of one worker: Hypothesis batches of schema-valid
argument trees, each run on a fresh QEMU, until the time budget is spent.

A case fails when QEMU does not answer, dies, stops answering ``query-status``
afterwards, or an accepted ``migrate`` does not reach a final state: the
observations the vector runner calls crash, hang or error, except an incoming
migration that exits as told (``incoming_exit``). Hypothesis shrinks a failure,
``reduce`` finishes the job, and the minimal tree is reproduced on a fresh QEMU.

Deterministic with a seed: batch ``n`` of worker ``w`` uses a seed derived from
(seed, w, n), so the same seed replays the same trees in the same order (how
many run depends on the budget).
"""

from __future__ import annotations

import hashlib
import json
import re
import shutil
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from hypothesis import HealthCheck, Phase, Verbosity, given, reject, settings
from hypothesis import seed as fix_seed
from hypothesis.configuration import set_hypothesis_home_dir, storage_directory
from hypothesis.errors import Flaky

from qmpcompat.derive.shapes import TypeWalker
from qmpcompat.harness.process import private_dir
from qmpcompat.hunt.floor import start_once
from qmpcompat.hunt.reduce import reduce_tree
from qmpcompat.hunt.strategies import TreeStrategies
from qmpcompat.provision import QemuBuild
from qmpcompat.safety import Policy, command_problems
from qmpcompat.schema.query import SchemaIndex
from qmpcompat.vectors.match import NEVER_OK
from qmpcompat.vectors.model import Expectation, Vector
from qmpcompat.vectors.run import Observation, Runner
from qmpcompat.vectors.versions import VersionRange

BATCH = 40
SLOW_CASE = 1.0  # seconds: a case QEMU itself takes long over (e.g. a vsock connect timing out)
SHRINK_BUDGET = 90.0  # seconds a worker may spend shrinking one failure past its budget
_SIGNAL = re.compile(r"killed by signal (\d+)")
# What QEMU prints when loading an incoming migration fails (the last is all a
# stream read from QEMU's own stderr leaves in the tail).
INCOMING_FAILED = ("load of migration failed", "Not a migration stream")


def batch_seed(seed: int, worker: int, batch: int) -> int:
    """The seed of one batch: a stable function of the run's seed, worker and batch."""
    digest = hashlib.sha256(f"{seed}/{worker}/{batch}".encode()).digest()
    return int.from_bytes(digest[:8], "big")


def case_vector(command: str, arguments: dict[str, Any]) -> Vector:
    """A hunt case as a vector the runner can run (its expectation is never judged)."""
    return Vector(id="HUNT", description="hunt case", command=command, arguments=arguments,
                  flags=("found-by",), expect=(Expectation(VersionRange.parse("*"), "accept"),),
                  file="hunt", incoming="defer" if command == "migrate-incoming" else None)


def incoming_exit(command: str, arguments: dict[str, Any], obs: Observation) -> bool:
    """True when QEMU exited because an incoming migration failed and it was told to:
    ``exit-on-error`` is true by default (7.2 has no such argument and always exits).
    That is QEMU's documented behaviour, not a finding."""
    return (command == "migrate-incoming" and obs.result == "crash"
            and arguments.get("exit-on-error", True) is not False
            and "exited with status 1" in obs.detail
            and any(why in obs.detail for why in INCOMING_FAILED))


def is_failure(command: str, arguments: dict[str, Any], obs: Observation) -> bool:
    """Whether an observation breaks the hunt's properties: QEMU answered, stayed
    alive (or exited as told, see ``incoming_exit``), still answered query-status,
    and an accepted migrate reached a final state."""
    return obs.result in NEVER_OK and not incoming_exit(command, arguments, obs)


@dataclass
class Finding:
    """A failing argument tree, minimized and run again on a fresh QEMU."""

    command: str
    arguments: dict[str, Any]  # minimal, with the runner's placeholders
    qemu: str
    qemu_version: str
    binary: str
    observed: dict[str, Any]  # the minimal tree's failing observation
    reproduced: dict[str, Any]  # the same tree on a fresh QEMU
    original: dict[str, Any]  # the tree as first generated
    seed: int
    worker: int
    batch: int
    flaky: bool = False

    @property
    def key(self) -> str:
        """Findings with the same key are the same finding."""
        return json.dumps([self.command, self.qemu, self.observed.get("result"), self.arguments],
                          sort_keys=True)

    @property
    def signature(self) -> tuple[str, str, int | None]:
        """What kind of failure it is: command, crash/hang/error, and the signal."""
        return failure_signature(self.command, self.observed)


def failure_signature(command: str, observed: dict[str, Any]) -> tuple[str, str, int | None]:
    """The kind of a failing observation: command, crash/hang/error, and the signal."""
    found = _SIGNAL.search(str(observed.get("detail", "")))
    return command, str(observed.get("result")), int(found.group(1)) if found else None


def shape_key(command: str, arguments: dict[str, Any]) -> tuple[str, ...]:
    """The transports a tree asks for: the uri's scheme and each channel's
    transport and socket type. Trees of one shape take about as long to run."""
    parts = [command]
    uri = arguments.get("uri")
    if isinstance(uri, str):
        parts.append("uri:" + uri.partition(":")[0])
    channels = arguments.get("channels")
    for channel in channels if isinstance(channels, list) else ():
        addr = channel.get("addr") if isinstance(channel, dict) else None
        if isinstance(addr, dict):
            parts.append(f"{addr.get('transport')}/{addr.get('type', '')}")
    return tuple(sorted(set(parts)))


def enum_defaults(walker: TypeWalker, command: str) -> dict[str, str]:
    """Each enum-typed member name in ``command``'s arguments and its first value
    (where Hypothesis shrinks to)."""
    out: dict[str, str] = {}
    todo, seen = [walker.arg_type(command)], set()
    while todo:
        name = todo.pop()
        if name in seen:
            continue
        seen.add(name)
        entry = walker.entry(name)
        meta = entry["meta-type"]
        if meta == "array":
            todo.append(str(entry["element-type"]))
        elif meta == "alternate":
            todo += [str(b["type"]) for b in entry.get("members") or ()]
        elif meta == "object":
            for shape in walker.shapes(name):
                for m in shape.members:
                    if walker.meta(m.type) == "enum":
                        out.setdefault(m.name, walker.enum_values(m.type)[0])
                    todo.append(m.type)
    return out


def _pairs(tree: Any) -> set[tuple[str, str]]:
    """Every (member, string value) pair in an argument tree."""
    if isinstance(tree, dict):
        return {(k, v) for k, v in tree.items() if isinstance(v, str)} | {
            p for v in tree.values() for p in _pairs(v)}
    if isinstance(tree, list):
        return {p for v in tree for p in _pairs(v)}
    return set()


@dataclass
class WorkerStats:
    cases: int = 0
    batches: int = 0
    seconds: float = 0.0
    case_seconds: float = 0.0  # time inside the runner (QEMU start to teardown)
    results: dict[str, int] = field(default_factory=dict)
    floor_samples: list[float] = field(default_factory=list)  # bare QEMU starts, interleaved
    case_times: list[float] = field(default_factory=list)  # each case, QEMU start to teardown


def distinct(findings: Sequence[Finding], explorer: Explorer) -> list[Finding]:
    """The findings no simpler one explains (same failure kind, and the simpler
    one's decisive choices all made), simplest (fewest decisive choices) first."""
    out: list[Finding] = []
    for f in sorted(findings, key=lambda f: (len(explorer.decisive(f.command, f.arguments)),
                                             len(json.dumps(f.arguments)), f.key)):
        if not any(g.signature == f.signature and g.command == f.command
                   and explorer.decisive(g.command, g.arguments) <= _pairs(f.arguments)
                   for g in out):
            out.append(f)
    return out


class _Failed(Exception):
    def __init__(self, obs: Observation) -> None:
        super().__init__(obs.summary())
        self.obs = obs


class Explorer:
    """Runs the hunt for one worker on one build."""

    def __init__(self, build: QemuBuild, entries: list[dict[str, Any]], commands: Sequence[str],
                 runner: Runner | None = None, floor_every: int = 0) -> None:
        self.build = build
        self.floor_every = floor_every
        self.commands = [c for c in commands if c in SchemaIndex(entries)]
        self.strategies = TreeStrategies(TypeWalker(SchemaIndex(entries)))
        self.runner = runner or Runner()
        self.stats = WorkerStats()
        walker = TypeWalker(SchemaIndex(entries))
        self.enum_defaults = {c: enum_defaults(walker, c) for c in self.commands}
        self.known: list[tuple[tuple[str, str, int | None], set[tuple[str, str]]]] = []
        self.slow: set[tuple[str, ...]] = set()  # shapes seen to take over SLOW_CASE seconds

    def decisive(self, command: str, arguments: dict[str, Any]) -> set[tuple[str, str]]:
        """The enum choices of a tree that shrinking could not undo: members whose
        value is not their enum's first. A minimal tree's decisive choices are
        what its failure needs."""
        defaults = self.enum_defaults.get(command, {})
        return {(k, v) for k, v in _pairs(arguments) if k in defaults and defaults[k] != v}

    def is_known(self, command: str, arguments: dict[str, Any], obs: Observation) -> bool:
        """True when a finding of this worker already explains the failure: same
        command, result and signal, and the tree makes all its decisive choices."""
        signature = failure_signature(command, obs.to_json())
        pairs = _pairs(arguments)
        return any(sig == signature and choices <= pairs for sig, choices in self.known)

    def run_case(self, command: str, arguments: dict[str, Any]) -> Observation:
        """One tree on a fresh QEMU (the runner fills {tmpdir} and {port}); every
        ``floor_every``-th case also times one bare QEMU start for the floor."""
        obs = self.runner.run(case_vector(command, arguments), self.build)
        if obs.seconds > SLOW_CASE:
            self.slow.add(shape_key(command, arguments))
        self.stats.cases += 1
        self.stats.case_seconds += obs.seconds
        self.stats.case_times.append(obs.seconds)
        result = "incoming-exit" if incoming_exit(command, arguments, obs) else obs.result
        self.stats.results[result] = self.stats.results.get(result, 0) + 1
        if self.floor_every and self.stats.cases % self.floor_every == 0:
            self.stats.floor_samples.append(start_once(self.build))  # under the same load
        return obs

    def hunt(self, budget: float, seed: int, worker: int = 0,
             on_finding: Callable[[Finding], None] | None = None) -> list[Finding]:
        """Explore until ``budget`` seconds have passed; return the distinct findings."""
        start = time.monotonic()
        deadline = start + budget
        home, before = private_dir("qmph-"), storage_directory(intent_to_write=False).home_directory
        set_hypothesis_home_dir(home)  # no .hypothesis/ in the caller's directory
        found: dict[str, Finding] = {}
        batch = 0
        try:
            while time.monotonic() < deadline and self.commands:
                command = self.commands[batch % len(self.commands)]
                finding = self.batch(command, seed, worker, batch, deadline)
                if finding is not None and finding.key not in found:
                    found[finding.key] = finding
                    self.known.append((finding.signature,
                                       self.decisive(finding.command, finding.arguments)))
                    if on_finding is not None:
                        on_finding(finding)
                batch += 1
        finally:
            set_hypothesis_home_dir(before)
            shutil.rmtree(home, ignore_errors=True)
        self.stats.batches = batch
        self.stats.seconds = time.monotonic() - start
        return list(found.values())

    def batch(self, command: str, seed: int, worker: int, batch: int,
              deadline: float) -> Finding | None:
        """One Hypothesis run of up to BATCH trees; the minimized finding, if any."""
        failures: dict[str, Observation] = {}
        first: list[dict[str, Any]] = []
        trees: dict[str, dict[str, Any]] = {}
        shrink_until: list[float] = []

        @settings(max_examples=BATCH, database=None, deadline=None, derandomize=False,
                  suppress_health_check=list(HealthCheck), phases=(Phase.generate, Phase.shrink),
                  report_multiple_bugs=False, verbosity=Verbosity.quiet, print_blob=False)
        @given(self.strategies.arguments(command))
        def prop(arguments: dict[str, Any]) -> None:
            key = json.dumps(arguments, sort_keys=True)
            obs = failures.get(key)  # seen failing: no need to start QEMU again
            if obs is None:
                now = time.monotonic()
                if now > (shrink_until[0] if shrink_until else deadline):
                    return  # budget spent: the rest of the batch passes without running
                if command_problems(command, arguments, Policy.template()):
                    reject()  # the safety gate refuses it: draw another
                if shape_key(command, arguments) in self.slow:
                    # QEMU itself takes seconds over this shape (a vsock connect timing
                    # out, say): once is evidence enough; spend the budget elsewhere.
                    self.stats.results["slow-shape"] = self.stats.results.get("slow-shape", 0) + 1
                    reject()
                obs = self.run_case(command, arguments)
                if not is_failure(command, arguments, obs):
                    return
                if not first and self.is_known(command, arguments, obs):
                    self.stats.results["known"] = self.stats.results.get("known", 0) + 1
                    return  # an earlier finding explains it: keep exploring
                failures[key], trees[key] = obs, arguments
                if not first:
                    first.append(arguments)
                    shrink_until.append(max(deadline, now) + SHRINK_BUDGET)
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
        # The simplest failing tree seen (Hypothesis's shrinker produced it; its own
        # choice of what to report orders by draw sequence, not by tree size).
        key = min(trees, key=lambda k: (len(self.decisive(command, trees[k])), len(k), k))
        signature = failure_signature(command, failures[key].to_json())

        def still_fails(tree: dict[str, Any]) -> bool:
            if command_problems(command, tree, Policy.template()):
                return False
            obs = self.run_case(command, tree)
            if is_failure(command, tree, obs) and failure_signature(command, obs.to_json()) == signature:
                failures[json.dumps(tree, sort_keys=True)] = obs
                return True
            return False

        minimal = reduce_tree(trees[key], still_fails, self.enum_defaults[command],
                              shrink_until[0])
        observed = failures[json.dumps(minimal, sort_keys=True)]
        again = self.run_case(command, minimal)
        return Finding(command=command, arguments=minimal, qemu=self.build.label,
                       qemu_version=self.build.version_str, binary=self.build.binary,
                       observed=observed.to_json(), reproduced=again.to_json(),
                       original=first[0], seed=seed, worker=worker, batch=batch,
                       flaky=flaky or not is_failure(command, minimal, again))
