"""Fixtures of qmpcompat's own tests: the real provisioned QEMU builds (for the
qemu and e2e tiers; the top-level conftest.py keeps them out of the unit tier),
and small stand-ins for broken binaries; how many xdist workers ``-n auto``
starts for them, and how many tests it hands each at a time; and, on a cold
cache, the builds' provisioning started while the unit tier runs. This
directory is on sys.path, so the tiers import the shared ``helpers`` package."""

from __future__ import annotations

import contextlib
import os
import sys
import threading
from collections.abc import Callable
from pathlib import Path

import pytest
from helpers.shared import Shared

from qmpcompat.errors import QmpCompatError
from qmpcompat.provision import QemuBuild, cache_dir
from qmpcompat.provision.build import MANIFEST
from qmpcompat.selection import select

WORKERS_PER_CPU = 2
MAX_WORKERS = 8  # past that, the longest tests set the pace and each worker only adds memory


def pytest_xdist_auto_num_workers(config: pytest.Config) -> int | None:
    """``-n auto`` for the own tests: ``WORKERS_PER_CPU`` workers per CPU this
    process may use, at most ``MAX_WORKERS``. The tests spend part of their time
    waiting rather than computing (whole runs in a subprocess, deliberate
    timeouts and budgets, downloads); with a worker per CPU the CPUs idle then
    (measured on 2 CPUs in one session: 237 s with 2 workers, 199 s with 3, 185 s
    with 4). PYTEST_XDIST_AUTO_NUM_WORKERS, when set, decides as xdist documents."""
    if os.environ.get("PYTEST_XDIST_AUTO_NUM_WORKERS"):
        return None
    return min(WORKERS_PER_CPU * len(os.sched_getaffinity(0)), MAX_WORKERS)


# Tests xdist hands a worker at a time (its --maxschedchunk), unless the command
# line says. Its default hands out long runs of consecutive tests: a worker then
# holds several of the whole runs (10-40 s each) queued behind one another while
# the others, their own queues done, wait at the end of the session.
SCHED_CHUNK = 4


def pytest_configure(config: pytest.Config) -> None:
    if getattr(config.option, "maxschedchunk", "absent") is None:
        config.option.maxschedchunk = SCHED_CHUNK


UNIT = Path(__file__).resolve().parent / "unit"
PROVISIONING = pytest.StashKey[threading.Thread]()


def _reaches_qemu(config: pytest.Config) -> bool:
    """Whether this run may reach a test that needs a build: not the unit tier
    alone (``-m unit``, or only paths under tests/unit/)."""
    if config.option.markexpr.strip() == "unit":
        return False
    paths = [Path(arg.split("::")[0]).resolve() for arg in config.args]
    return not paths or not all(p.is_relative_to(UNIT) for p in paths)


def _cold() -> bool:
    """Whether no Debian build is cached yet (a warm cache needs no head start)."""
    return not any((cache_dir() / "builds").glob(f"*/{MANIFEST}"))


def _provision() -> None:
    with contextlib.suppress(QmpCompatError, OSError):  # the builds fixture says what failed
        select()


def pytest_sessionstart(session: pytest.Session) -> None:
    """On a cold cache the default builds take about half a minute to provision:
    the controller (or a run without workers) starts that on a thread at once
    (on a warm one it asks nothing of the cache and starts no QEMU), so
    the unit tier runs meanwhile; the ``builds`` fixture then finds them cached,
    or waits on the cache's lock for them."""
    config = session.config
    if hasattr(config, "workerinput") or not _reaches_qemu(config) or not _cold():
        return
    thread = threading.Thread(target=_provision, name="qmpcompat-provision")
    thread.start()
    config.stash[PROVISIONING] = thread


def pytest_unconfigure(config: pytest.Config) -> None:
    thread = config.stash.get(PROVISIONING, None)
    if thread is not None:
        thread.join()  # nothing it started outlives the run


@pytest.fixture(scope="session")
def builds() -> list[QemuBuild]:
    """The default provisioned Debian set (downloaded on first use, cached after)."""
    sel = select(progress=lambda text: print(f"qmpcompat: {text}", file=sys.stderr))
    assert not sel.problems, [str(p) for p in sel.problems]
    return sel.builds


@pytest.fixture(scope="session")
def oldest(builds: list[QemuBuild]) -> QemuBuild:
    return builds[0]


@pytest.fixture(scope="session")
def newest(builds: list[QemuBuild]) -> QemuBuild:
    return builds[-1]


@pytest.fixture(scope="session")
def shared(pytestconfig: pytest.Config, tmp_path_factory: pytest.TempPathFactory) -> Shared:
    """Set-ups made once per session for every xdist worker (real runs several
    tests read): ``shared.once(name, make)``."""
    return Shared(pytestconfig, tmp_path_factory)


@pytest.fixture
def script(tmp_path: Path) -> Callable[[str, str], Path]:
    """Write an executable shell script (a stand-in for a broken QEMU)."""

    def make(name: str, body: str) -> Path:
        path = tmp_path / name
        path.write_text("#!/bin/sh\n" + body)
        path.chmod(0o755)
        return path

    return make
