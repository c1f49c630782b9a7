"""The run's waiting cases, started ahead of their turn in every process of the
run (``qmpcompat.vectors.ahead``).

The controller makes the directory the processes share (``RunState.ahead_dir``,
shipped to the workers) and removes it at the end. Each process, once it has
collected, finds the waiting vector cases among its items (the same on every
worker: after ``-k``, ``-m``, deselection and sharding), and starts them on
background threads, each worker from another place in the list; the runner
fixture then takes their observations when their turn comes.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from qmpcompat.harness.process import private_dir
from qmpcompat.provision.build import QemuBuild
from qmpcompat.pytest_plugin.state import STATE, RunState
from qmpcompat.schema.sources.live import SchemaCache
from qmpcompat.vectors.ahead import Ahead, waits
from qmpcompat.vectors.check import runs
from qmpcompat.vectors.model import Vector

AHEAD = pytest.StashKey[Ahead]()


def make_dir() -> str:
    """The directory every process of a run shares its waiting cases through."""
    return str(private_dir("qmpc-"))


def remove_dir(st: RunState) -> None:
    if st.ahead_dir:
        shutil.rmtree(st.ahead_dir, ignore_errors=True)


def _waiting(st: RunState, items: list[pytest.Item]) -> list[tuple[Vector, QemuBuild]]:
    """The vector cases among ``items`` that wait, and that ``check`` will run."""
    schemas = SchemaCache()
    out: list[tuple[Vector, QemuBuild]] = []
    for item in items:
        callspec = getattr(item, "callspec", None)
        params = callspec.params if callspec is not None else {}
        vec, build = params.get("vector"), params.get("qemu_build")
        if isinstance(vec, Vector) and isinstance(build, QemuBuild) and waits(vec) and runs(
                vec, build, schemas, st.allow_exec, st.lint_of(vec)):
            out.append((vec, build))
    return out


def start(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Start this process's share of the run's waiting cases (none without a
    shared directory, when the run has none, or when it only collects)."""
    st = config.stash.get(STATE, None)
    if st is None or not st.ahead_dir or config.option.collectonly:
        return
    cases = _waiting(st, items)
    if not cases:
        return
    worker = getattr(config, "workerinput", {})
    index = int(str(worker.get("workerid", "gw0")).removeprefix("gw") or 0)
    count = int(worker.get("workercount", 1))
    ahead = Ahead(Path(st.ahead_dir), cases, st.timeout, st.allow_exec)
    config.stash[AHEAD] = ahead.start(offset=index * len(cases) // max(count, 1))


def of(config: pytest.Config) -> Ahead | None:
    """This process's waiting cases, once started."""
    return config.stash.get(AHEAD, None)


def stop(config: pytest.Config) -> None:
    """Start no more waiting cases; wait for those running."""
    ahead = config.stash.get(AHEAD, None)
    if ahead is not None:
        ahead.close()
