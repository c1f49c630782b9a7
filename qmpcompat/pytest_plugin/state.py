"""What a run selected and has seen (``RunState``), how the controller makes it,
and how it travels to the xdist workers.

The controller selects the binaries, loads the vector set and lints it once;
every worker receives all of it (``workerinput``), so no worker selects,
loads or lints again and every worker tests exactly what the controller chose.
"""

from __future__ import annotations

import pickle
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import NotRequired, TypedDict

import pytest

from qmpcompat.errors import QmpCompatError, VectorError
from qmpcompat.provision.build import QemuBuild
from qmpcompat.provision.indexes import SuiteIndex
from qmpcompat.provision.source_build import named_sources
from qmpcompat.selection import Problem, Selection, named_binaries, select
from qmpcompat.types import BinaryJSON, CaseJSON, GateFindingJSON, IndexJSON, PairJSON
from qmpcompat.vectors.lint import Problem as LintProblem
from qmpcompat.vectors.lint import lint
from qmpcompat.vectors.load import VectorSet, load
from qmpcompat.vectors.model import Vector
from qmpcompat.vectors.paircheck import PairCase, pair_cases
from qmpcompat.vectors.pairs import PairVector


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
    started: float = field(default_factory=time.time)
    lint: list[LintProblem] = field(default_factory=list)
    records: list[CaseJSON] = field(default_factory=list)
    pair_records: list[PairJSON] = field(default_factory=list)
    schema_gate: list[GateFindingJSON] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)  # the selection's (selection.Selection)

    def lint_of(self, vec: Vector | PairVector) -> list[str]:
        """The lint problems of one vector or pair vector (they keep it from running)."""
        return [p.message for p in self.lint if p.vector_id == vec.id and p.file == vec.file]

    @property
    def pair_cases(self) -> list[PairCase]:
        """Every cross-version cell of the run, in the same order on every worker."""
        return pair_cases(self.vectors.pairs, self.builds)

    def build(self, label: str) -> QemuBuild | None:
        """The selected build with this run label, if any."""
        return next((b for b in self.builds if b.label == label), None)


STATE = pytest.StashKey[RunState]()
SHIPPED = "qmpcompat_run"  # the workerinput key the controller's selection travels in


def _progress(text: str) -> None:
    print(f"qmpcompat: {text}", file=sys.stderr, flush=True)


def _select(config: pytest.Config) -> Selection:
    suites_opt = config.getoption("qmpcompat_suites")
    suites = None if suites_opt is None else [s for s in suites_opt.split(",") if s.strip()]
    if config.getoption("qmpcompat_no_provision"):
        suites = []
    return select(named_binaries(config.getoption("qmpcompat_qemu") or ()), suites,
                  progress=None if config.getoption("qmpcompat_quiet") else _progress,
                  start_timeout=config.getoption("qmpcompat_timeout"),
                  strict=config.getoption("qmpcompat_strict"),
                  sources=named_sources(config.getoption("qmpcompat_source") or ()),
                  targets=_targets(config),
                  profile=config.getoption("qmpcompat_source_profile"))


def _targets(config: pytest.Config) -> tuple[str, ...] | None:
    opt = config.getoption("qmpcompat_targets")
    return tuple(t.strip() for t in opt.split(",") if t.strip()) if opt else None


def known_kinds(text: str | None) -> frozenset[str]:
    """The --qmpcompat-fail-on-known value: a comma list of crash and hang."""
    kinds = frozenset(k.strip() for k in (text or "").split(",") if k.strip())
    if kinds - {"crash", "hang"}:
        raise pytest.UsageError(f"--qmpcompat-fail-on-known {text}: give crash, hang or crash,hang")
    return kinds


def make_state(config: pytest.Config) -> RunState:
    """The controller's run: select binaries, load and lint the vector set."""
    vdir = config.getoption("qmpcompat_vectors")
    try:
        vectors = load(Path(vdir) if vdir else None)
    except VectorError as exc:
        raise pytest.UsageError(f"--qmpcompat-vectors: {exc}") from exc
    sel = _select(config)
    st = RunState(
        builds=sel.builds, problems=sel.problems, indexes=sel.indexes,
        vectors=vectors, warnings=sel.warnings,
        reports=Path(config.getoption("qmpcompat_reports")),
        strict=config.getoption("qmpcompat_strict"),
        allow_exec=config.getoption("qmpcompat_allow_exec"),
        timeout=config.getoption("qmpcompat_timeout"),
        fail_on=config.getoption("qmpcompat_fail_on"),
        fail_on_known=known_kinds(config.getoption("qmpcompat_fail_on_known")))
    try:
        st.lint = lint(st.vectors.root, allow_exec=st.allow_exec, loaded=st.vectors)
    except VectorError as exc:
        raise pytest.UsageError(f"--qmpcompat-vectors: {exc}") from exc
    return st


class Shipped(TypedDict):
    """What a worker receives of the run (execnet carries plain types and bytes)."""

    builds: list[BinaryJSON]
    problems: list[list[str]]
    indexes: NotRequired[list[IndexJSON]]
    loaded: bytes  # the pickled vector set and its lint problems
    started: float


def ship(st: RunState) -> Shipped:
    """The run as a worker receives it (execnet carries plain types and bytes)."""
    return {"builds": [b.to_json() for b in st.builds],
            "problems": [[p.name, str(p.error)] for p in st.problems],
            "indexes": [i.to_json() for i in st.indexes],
            "loaded": pickle.dumps((st.vectors, st.lint)),
            "started": st.started}


def unship(config: pytest.Config, data: Shipped) -> RunState:
    """The controller's run, on a worker."""
    vectors, lint_problems = pickle.loads(data["loaded"])
    return RunState(
        builds=[QemuBuild.from_json(b) for b in data["builds"]],
        problems=[Problem(name, QmpCompatError(text)) for name, text in data["problems"]],
        indexes=[SuiteIndex.from_json(i) for i in data.get("indexes", [])],
        vectors=vectors, lint=lint_problems,
        reports=Path(config.getoption("qmpcompat_reports")),
        strict=config.getoption("qmpcompat_strict"),
        allow_exec=config.getoption("qmpcompat_allow_exec"),
        timeout=config.getoption("qmpcompat_timeout"),
        fail_on=config.getoption("qmpcompat_fail_on"),
        fail_on_known=known_kinds(config.getoption("qmpcompat_fail_on_known")),
        started=data["started"])
