"""What a run selected and has seen (``RunState``), how the controller makes it,
and how it travels to the xdist workers.

The controller selects the binaries, reads each one's schema, loads the vector
set and lints it once (or takes an earlier run's lint of the same set and
code, ``qmpcompat.vectors.lintmemo``); every worker receives all of it (``workerinput``), so no
worker selects, introspects, loads or lints again and every worker tests
exactly what the controller chose.
"""

from __future__ import annotations

import contextlib
import json
import pickle
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, NotRequired, TypedDict

import pytest

from qmpcompat.errors import QmpCompatError, VectorError
from qmpcompat.escape import terminal
from qmpcompat.provision import cache_dir
from qmpcompat.provision.build import QemuBuild
from qmpcompat.provision.indexes import SuiteIndex
from qmpcompat.provision.source_build import named_sources
from qmpcompat.pytest_plugin.shard import plan_of, spec_of
from qmpcompat.resultdoc import BinaryJSON, CaseJSON, ConsumerJSON, GateFindingJSON, IndexJSON, PairJSON
from qmpcompat.runconfig import flag, selection_config, text, value
from qmpcompat.schema.sources.live import adopt, introspect, known
from qmpcompat.selection import Problem, Selection, candidates, named_binaries, select
from qmpcompat.shard.run import Shard
from qmpcompat.types import JSONObject
from qmpcompat.vectors.lint import Problem as LintProblem
from qmpcompat.vectors.lint import lint
from qmpcompat.vectors.lintmemo import remembered
from qmpcompat.vectors.load import VectorSet, load
from qmpcompat.vectors.model import Vector
from qmpcompat.vectors.paircheck import PairCase, pair_cases
from qmpcompat.vectors.pairs import PairVector
from qmpcompat.vectors.profilecheck import ProfileCase, profile_cases
from qmpcompat.vectors.profiles import Profile
from qmpcompat.vectors.verdict import VerdictRules


@dataclass
class RunState:
    """What the run selected and what it has seen; kept in ``config.stash``."""

    builds: list[QemuBuild]
    problems: list[Problem]
    indexes: list[SuiteIndex]
    vectors: VectorSet
    reports: Path
    strict: bool
    allow_exec: bool
    timeout: float = 10.0
    fail_on: str = "breaking"
    fail_on_known: frozenset[str] = frozenset()
    persistent: bool = True  # persistent mode (not --qmpcompat-fresh)
    fork_server: bool = False  # ... with its QEMUs forked (--qmpcompat-fork-server)
    started: float = field(default_factory=time.time)
    lint: list[LintProblem] = field(default_factory=list)
    records: list[CaseJSON] = field(default_factory=list)
    pair_records: list[PairJSON] = field(default_factory=list)
    consumer_records: list[ConsumerJSON] = field(default_factory=list)
    schema_gate: list[GateFindingJSON] = field(default_factory=list)
    runners: list[JSONObject] = field(default_factory=list)  # each worker's persistent-mode counts
    shard: Shard | None = None  # --qmpcompat-shard: this shard and the whole run's plan
    warnings: list[str] = field(default_factory=list)  # the selection's (selection.Selection)
    ahead_dir: str = ""  # where every process shares its waiting cases (pytest_plugin.ahead)

    def lint_of(self, vec: Vector | PairVector | Profile) -> list[str]:
        """The lint problems of one vector, pair vector or consumer profile (they keep
        it from running)."""
        return [p.message for p in self.lint if p.vector_id == vec.id and p.file == vec.file]

    @property
    def pair_cases(self) -> list[PairCase]:
        """Every cross-version cell of the run, in the same order on every worker."""
        return pair_cases(self.vectors.pairs, self.builds)

    @property
    def consumer_cases(self) -> list[ProfileCase]:
        """Every consumer-profile cell of the run (each profile from each build to each
        build, itself too), in the same order on every worker."""
        return profile_cases(self.vectors.profiles, self.builds)

    def build(self, label: str) -> QemuBuild | None:
        """The selected build with this run label, if any."""
        return next((b for b in self.builds if b.label == label), None)

    @property
    def rules(self) -> VerdictRules:
        """The release-gate rules every case's verdict passes through."""
        return VerdictRules(self.strict, self.fail_on_known)


STATE = pytest.StashKey[RunState]()
SHIPPED = "qmpcompat_run"  # the workerinput key the controller's selection travels in


def _progress(text: str) -> None:
    print(terminal(f"qmpcompat: {text}"), file=sys.stderr, flush=True)


def _selection(config: pytest.Config) -> dict[str, Any]:
    """The arguments ``select`` and ``candidates`` both take, from the options
    (``qmpcompat.runconfig``: the commands read the same ones)."""
    sc = selection_config(config)
    return {"binaries": named_binaries(sc.qemu), "suites": [] if sc.no_provision else sc.suites,
            "progress": None if flag(config, "quiet") else _progress, "strict": sc.strict,
            "sources": named_sources(sc.sources), "targets": sc.targets, "profile": sc.profile}


def _select(config: pytest.Config, vectors: VectorSet) -> tuple[Selection, Shard | None]:
    """The run's builds; of a shard (--qmpcompat-shard), only those its part of
    the plan needs, the plan made before any build is provisioned."""
    args = _selection(config)
    spec = spec_of(config)
    shard = None if spec is None else plan_of(config, spec, candidates(**args), vectors)
    if shard is not None and args["progress"]:
        args["progress"](shard.describe())
    sel = select(**args, start_timeout=selection_config(config).timeout,
                 want=shard.wants if shard else None, recheck=flag(config, "fresh"))
    return sel, shard


class _Judging(TypedDict):
    """The RunState fields the controller and every worker read from the options."""

    reports: Path
    strict: bool
    allow_exec: bool
    timeout: float
    fail_on: str
    fail_on_known: frozenset[str]


def _judging(config: pytest.Config) -> _Judging:
    return {"reports": Path(text(config, "reports") or "reports"), "strict": flag(config, "strict"),
            "allow_exec": flag(config, "allow-exec"),
            "timeout": selection_config(config).timeout, "fail_on": text(config, "fail-on") or "breaking",
            "fail_on_known": value(config, "fail-on-known") or frozenset()}  # type: ignore[typeddict-item]


def make_state(config: pytest.Config) -> RunState:
    """The controller's run: select binaries, load and lint the vector set."""
    vdir = text(config, "vectors")
    try:
        vectors = load(Path(vdir) if vdir else None)
    except VectorError as exc:
        raise pytest.UsageError(f"--qmpcompat-vectors: {exc}") from exc
    judging = _judging(config)
    # The lint (Python's work) runs while the selection's self-checks wait for their QEMUs;
    # a set and a qmpcompat unchanged since an earlier run's lint take its problems.
    with ThreadPoolExecutor(1) as pool:
        linting = pool.submit(remembered, vectors.root, f"allow_exec={judging['allow_exec']}",
                              cache_dir() / "lint",
                              lambda: lint(vectors.root, allow_exec=judging["allow_exec"],
                                           loaded=vectors))
        sel, shard = _select(config, vectors)
    st = RunState(
        builds=sel.builds, problems=sel.problems, indexes=sel.indexes,
        vectors=vectors, warnings=sel.warnings, **judging,
        persistent=not flag(config, "fresh"), fork_server=flag(config, "fork-server"),
        shard=shard)
    try:
        st.lint = linting.result()
    except VectorError as exc:
        raise pytest.UsageError(f"--qmpcompat-vectors: {exc}") from exc
    for build in st.builds:  # read once here, handed to every worker (``ship``)
        with contextlib.suppress(QmpCompatError):
            introspect(build)
    return st


class Shipped(TypedDict):
    """What a worker receives of the run (execnet carries plain types and bytes)."""

    builds: list[BinaryJSON]
    problems: list[list[str]]
    indexes: NotRequired[list[IndexJSON]]
    loaded: bytes  # the pickled vector set and its lint problems
    schemas: str  # each build's query-qmp-schema, by binary (JSON)
    started: float
    shard: NotRequired[JSONObject]  # this shard and the run's plan
    ahead_dir: NotRequired[str]


def ship(st: RunState) -> Shipped:
    """The run as a worker receives it (execnet carries plain types and bytes)."""
    out: Shipped = {"builds": [b.to_json() for b in st.builds],
                    "problems": [[p.name, str(p.error)] for p in st.problems],
                    "indexes": [i.to_json() for i in st.indexes],
                    "loaded": pickle.dumps((st.vectors, st.lint)),
                    "schemas": json.dumps(known(st.builds), separators=(",", ":")),
                    "started": st.started, "ahead_dir": st.ahead_dir}
    if st.shard is not None:
        out["shard"] = st.shard.to_json()
    return out


def unship(config: pytest.Config, data: Shipped) -> RunState:
    """The controller's run, on a worker."""
    vectors, lint_problems = pickle.loads(data["loaded"])
    adopt(json.loads(data["schemas"]))
    return RunState(
        builds=[QemuBuild.from_json(b) for b in data["builds"]],
        problems=[Problem(name, QmpCompatError(text)) for name, text in data["problems"]],
        indexes=[SuiteIndex.from_json(i) for i in data.get("indexes", [])],
        vectors=vectors, lint=lint_problems, **_judging(config), started=data["started"],
        shard=Shard.from_json(data["shard"]) if "shard" in data else None,
        ahead_dir=data.get("ahead_dir", ""))
