"""qmpcompat's pytest plugin: its options, hooks and fixtures.

Registered as the ``qmpcompat`` entry point (``pytest11``), so it is loaded
wherever the package is installed; ``pytest -p qmpcompat`` names it explicitly.
It stays dormant (no provisioning, no reports) unless the run asks for it:
``-p qmpcompat`` on the command line, or a conftest.py that says
``QMPCOMPAT_SUITE = True`` (as ``suites/conftest.py`` does). xdist workers of an
active run are active through what the controller sends them.

What suites use (and nothing else):

- fixtures ``qmpcompat_run`` (the ``RunState``), ``vector_runner``,
  ``schema_cache``, ``record_case`` (attach a ``CaseResult`` to the test),
  ``record_pair`` (a cross-version cell's ``PairResult``), ``record_consumer``
  (a consumer-profile cell's ``ProfileResult``) and
  ``record_schema_findings``;
- parameters ``qemu_build``, ``vector``, ``derived``, ``pair_case``, ``consumer_case``,
  ``qemu_problem`` and ``vector_file_error``, filled from the run;
- ``conclude(verdict, failure)``: the verdict as a pytest outcome; ``conclude_cell(result,
  title)`` for a cross-version or consumer cell.

The modules: ``state`` (the run and its travel to workers), ``cases``
(parametrizing, recording, concluding), ``recorder`` (the controller's records
and reports), ``ahead`` (the waiting cases, started ahead of their turn),
``shard`` (this shard's cases).
"""

from __future__ import annotations

import signal
from collections.abc import Callable, Iterator
from types import FrameType
from typing import Any

import pytest

from qmpcompat import runconfig
from qmpcompat.escape import terminal
from qmpcompat.provision.build import QemuBuild
from qmpcompat.pytest_plugin import ahead
from qmpcompat.pytest_plugin.cases import (
    NONE_MARK,
    RecordCase,
    conclude,
    conclude_cell,
    parametrize,
    record_consumer_on,
    record_gate_on,
    record_on,
    record_pair_on,
)
from qmpcompat.pytest_plugin.recorder import Recorder, mark_started, record_runner, start_reports
from qmpcompat.pytest_plugin.shard import keep
from qmpcompat.pytest_plugin.state import SHIPPED, STATE, RunState, make_state, unship
from qmpcompat.safety import ALLOW_EXEC_WARNING
from qmpcompat.schema.differ.rules import Finding
from qmpcompat.schema.sources.live import SchemaCache
from qmpcompat.vectors.paircheck import PairResult
from qmpcompat.vectors.persistent import PersistentRunner
from qmpcompat.vectors.profilecheck import ProfileResult
from qmpcompat.vectors.run import Runner

__all__ = ["RecordCase", "RecordConsumer", "RecordPair", "RunState", "conclude", "conclude_cell"]

SUITE_MARK = "QMPCOMPAT_SUITE"
PLUGIN_NAME = "qmpcompat"
POOLS = 2  # persistent mode: pools (build, -incoming form) alive at once, per worker


def pytest_addoption(parser: pytest.Parser) -> None:
    """The run's options, from the table the commands share (``qmpcompat.runconfig``)."""
    runconfig.add_pytest(parser.getgroup("qmpcompat", "qmpcompat: QEMU migration QMP conformance"))


def _requested(config: pytest.Config) -> bool:
    """True when this run asked for the plugin: ``-p qmpcompat``, or a conftest
    loaded at start-up that sets ``QMPCOMPAT_SUITE = True``."""
    if PLUGIN_NAME in (config.known_args_namespace.plugins or []):
        return True
    return any(getattr(p, SUITE_MARK, False) is True for p in config.pluginmanager.get_plugins())


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", f"{NONE_MARK}: the placeholder of an empty parameter "
                                       "list of the qmpcompat plugin (deselected)")
    if config.option.help or config.option.version:
        return
    shipped = getattr(config, "workerinput", {}).get(SHIPPED)
    if shipped is None and not _requested(config):
        return
    # a CI cancel stops the run like Ctrl-C; the handler before it comes back at the end
    config.stash[SIGTERM_BEFORE] = signal.signal(signal.SIGTERM, _interrupt)
    if shipped is not None:
        config.stash[STATE] = unship(config, shipped)
    else:
        start_reports(config)
        config.stash[STATE] = make_state(config)
        config.stash[STATE].ahead_dir = ahead.make_dir()
        mark_started(config.stash[STATE])
        config.pluginmanager.register(Recorder(config), "qmpcompat-recorder")


def pytest_unconfigure(config: pytest.Config) -> None:
    st = config.stash.get(STATE, None)
    if st is not None and not hasattr(config, "workerinput"):
        ahead.remove_dir(st)
    before = config.stash.get(SIGTERM_BEFORE, None)
    if before is not None:
        signal.signal(signal.SIGTERM, before)


def _interrupt(signum: int, _frame: object) -> None:
    raise KeyboardInterrupt(f"signal {signum}")


SigHandler = Callable[[int, FrameType | None], Any] | int | signal.Handlers | None
SIGTERM_BEFORE = pytest.StashKey[SigHandler]()


def pytest_report_header(config: pytest.Config) -> list[str]:
    st = config.stash.get(STATE, None)
    if st is None:
        return []
    lines = [f"qmpcompat: {len(st.builds)} QEMU binaries, {len(st.vectors.vectors)} vectors "
             f"(vector set {st.vectors.revision()})"]
    lines += [f"  {b.label:<10} {b.describe()}" for b in st.builds]
    lines += [f"  unusable   {p}" for p in st.problems]
    lines += [f"  {st.shard.describe()}"] if st.shard else []
    lines += [f"  warning    {w}" for w in st.warnings]
    lines += [f"  index      {i.suite}: {i.date or '?'} (valid until {i.valid_until or '?'})"
              + (" STALE" if i.stale else "") for i in st.indexes if not i.error]
    return [terminal(line) for line in lines + ([ALLOW_EXEC_WARNING] if st.allow_exec else [])]


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    st = metafunc.config.stash.get(STATE, None)
    if st is not None:
        parametrize(metafunc, st)


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Deselect the placeholder items of empty parameter sets (no unusable binary, no
    broken vector file): they are not skips worth reporting. Order the cases of one
    build together (a persistent runner keeps the pools of a few builds at once),
    the same way on every worker. Keep only this shard's cases (--qmpcompat-shard).
    Record the QEMU version and binary of every case in the JUnit XML."""
    placeholders = [i for i in items if i.get_closest_marker(NONE_MARK) is not None]
    if placeholders:
        config.hook.pytest_deselected(items=placeholders)
        items[:] = [i for i in items if i.get_closest_marker(NONE_MARK) is None]
    st = config.stash.get(STATE, None)
    if st is not None:
        order = {b.binary: n for n, b in enumerate(st.builds)}
        items.sort(key=lambda i: (_build_of(i) is not None,
                                  order.get(getattr(_build_of(i), "binary", ""), 0)))
    if st is not None and st.shard is not None:
        kept, others = keep(items, st.shard)
        items[:] = kept
        if others:
            config.hook.pytest_deselected(items=others)
    for item in items:
        build = _build_of(item)
        if build is not None:
            item.user_properties += [("qemu_version", build.version_str),
                                     ("binary", build.binary)]


@pytest.hookimpl(tryfirst=True)  # before an xdist worker reports its collection: no test
def pytest_collection_finish(session: pytest.Session) -> None:  # runs before the first claims
    """Start this process's share of the waiting cases (``ahead``)."""
    ahead.start(session.config, session.items)


def pytest_sessionfinish(session: pytest.Session) -> None:
    ahead.stop(session.config)


def _build_of(item: pytest.Item) -> QemuBuild | None:
    """The build a case runs on (a vector's or a derived case's), if it has one."""
    callspec = getattr(item, "callspec", None)
    params = callspec.params if callspec is not None else {}
    build = params.get("qemu_build") or (params["derived"][0] if "derived" in params else None)
    return build if isinstance(build, QemuBuild) else None


@pytest.fixture(scope="session")
def qmpcompat_run(pytestconfig: pytest.Config) -> RunState:
    """The run's selected binaries, vector set and settings."""
    st = pytestconfig.stash.get(STATE, None)
    if st is None:
        pytest.fail("the qmpcompat plugin is not switched on for this run: pass -p qmpcompat, "
                    "or set QMPCOMPAT_SUITE = True in the suite's conftest.py", pytrace=False)
    return st


@pytest.fixture(scope="session")
def vector_runner(pytestconfig: pytest.Config) -> Iterator[Runner]:
    """The runner of vectors and derived cases, with the run's timeout: persistent
    mode (a QEMU serves case after case while they leave it unchanged; the QEMUs
    it needs started by exec, or forked from a fork server with
    --qmpcompat-fork-server; the pools of at most ``POOLS`` builds and option sets
    alive at once) unless --qmpcompat-fresh asks for a fresh QEMU per case. What
    persistent mode did goes to the reports. A waiting case started ahead of its
    turn (``ahead``) is taken from there."""
    timeout = runconfig.selection_config(pytestconfig).timeout
    allow_exec = runconfig.flag(pytestconfig, "allow-exec")
    started = ahead.of(pytestconfig)
    if runconfig.flag(pytestconfig, "fresh"):
        with Runner(timeout, allow_exec=allow_exec) as runner:
            runner.ahead = started.take if started else None
            yield runner
        return
    fork = runconfig.flag(pytestconfig, "fork-server")
    persistent = PersistentRunner(timeout, allow_exec=allow_exec, fork=fork, max_pools=POOLS)
    persistent.ahead = started.take if started else None
    with persistent:
        yield persistent
    record_runner(pytestconfig, persistent.sync_stats().for_reports())


@pytest.fixture(scope="session")
def schema_cache() -> SchemaCache:
    """Each binary's query-qmp-schema, fetched once per worker."""
    return SchemaCache()


@pytest.fixture
def record_case(request: pytest.FixtureRequest) -> RecordCase:
    """``record_case(result)``: this case's record goes into every report."""
    return lambda result: record_on(request.node, result)


RecordPair = Callable[[PairResult], None]


@pytest.fixture
def record_pair(request: pytest.FixtureRequest) -> RecordPair:
    """``record_pair(result)``: this cross-version cell's record goes into every report."""
    return lambda result: record_pair_on(request.node, result)


RecordConsumer = Callable[[ProfileResult], None]


@pytest.fixture
def record_consumer(request: pytest.FixtureRequest) -> RecordConsumer:
    """``record_consumer(result)``: this consumer-profile cell's record goes into every report."""
    return lambda result: record_consumer_on(request.node, result)


RecordFindings = Callable[[QemuBuild, str, str, list[Finding]], None]


@pytest.fixture
def record_schema_findings(request: pytest.FixtureRequest) -> RecordFindings:
    """``record_schema_findings(build, baseline, gate, findings)``: schema-gate
    findings of this test, for results.json and summary.md."""

    def record(build: QemuBuild, baseline: str, gate: str, findings: list[Finding]) -> None:
        record_gate_on(request.node, [{**f.to_json(), "qemu": build.label, "baseline": baseline,
                                       "gate": gate} for f in findings])

    return record

