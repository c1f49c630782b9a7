"""The pytest side of qmpcompat: choose binaries, parametrize, record, report.

Hooks only; the options and fixtures are declared in the top-level
conftest.py, and the work is done by the provision, vectors and report modules.
"""

from __future__ import annotations

import json
import os
import re
import signal
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from qmpcompat.errors import QmpCompatError
from qmpcompat.provision.build import QemuBuild
from qmpcompat.provision.indexes import SuiteIndex
from qmpcompat.provision.select import Problem, Selection, named_binaries, select
from qmpcompat.provision.source_build import named_sources
from qmpcompat.report.crashes import crash_rows, defect_rows
from qmpcompat.report.files import check_writable, write_atomic
from qmpcompat.report.history import schema_history
from qmpcompat.report.junit import render_junit
from qmpcompat.report.progress import Progress
from qmpcompat.report.render import write_reports
from qmpcompat.report.results import environment, results_document
from qmpcompat.report.summary import verdict
from qmpcompat.safety import ALLOW_EXEC_WARNING
from qmpcompat.vectors.check import CaseResult, case_record
from qmpcompat.vectors.lint import Problem as LintProblem
from qmpcompat.vectors.lint import lint
from qmpcompat.vectors.load import VectorSet, load
from qmpcompat.vectors.match import Verdict
from qmpcompat.vectors.model import KnownDefect, Vector

RECORD = "qmpcompat"
GATE_RECORD = "qmpcompat-schema-gate"


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
    fail_on: str = "breaking"
    fail_on_known: frozenset[str] = frozenset()
    started: float = field(default_factory=time.time)
    lint: list[LintProblem] = field(default_factory=list)
    records: list[dict[str, Any]] = field(default_factory=list)
    schema_gate: list[dict[str, Any]] = field(default_factory=list)


STATE = pytest.StashKey[RunState]()


def _progress(text: str) -> None:
    print(f"qmpcompat: {text}", file=sys.stderr, flush=True)


def state(config: pytest.Config) -> RunState:
    return config.stash[STATE]


def lint_of(st: RunState, vec: Vector) -> list[str]:
    """The lint problems of one vector (they keep it from running)."""
    return [p.message for p in st.lint if p.vector_id == vec.id and p.file == vec.file]


def _is_worker(config: pytest.Config) -> bool:
    return hasattr(config, "workerinput")


def _runs_suites(config: pytest.Config) -> bool:
    """True when the run collects from the conformance suites (``suites/``);
    qmpcompat's own tests (``tests/``) then get no binaries provisioned."""
    return any("suites" in Path(arg.split("::")[0]).parts for arg in config.args)


def pytest_configure(config: pytest.Config) -> None:
    if config.option.help or config.option.version or not _runs_suites(config):
        return
    signal.signal(signal.SIGTERM, _interrupt)  # a CI cancel stops the run like Ctrl-C
    if not _is_worker(config):
        _start_reports(config)
    shipped = getattr(config, "workerinput", {}).get(SHIPPED)
    sel = _unship(shipped) if shipped else _select(config)
    vdir = config.getoption("qmpcompat_vectors")
    st = RunState(
        builds=sel.builds, problems=sel.problems, indexes=sel.indexes,
        vectors=load(Path(vdir) if vdir else None),
        reports=Path(config.getoption("qmpcompat_reports")),
        strict=config.getoption("qmpcompat_strict"),
        allow_exec=config.getoption("qmpcompat_allow_exec"),
        fail_on=config.getoption("qmpcompat_fail_on"),
        fail_on_known=known_kinds(config.getoption("qmpcompat_fail_on_known")))
    st.lint = lint(st.vectors.root, allow_exec=st.allow_exec, loaded=st.vectors)
    config.stash[STATE] = st
    if not _is_worker(config):
        config.pluginmanager.register(Recorder(config), "qmpcompat-recorder")


def known_kinds(text: str | None) -> frozenset[str]:
    """The --qmpcompat-fail-on-known value: a comma list of crash and hang."""
    kinds = frozenset(k.strip() for k in (text or "").split(",") if k.strip())
    if kinds - {"crash", "hang"}:
        raise pytest.UsageError(f"--qmpcompat-fail-on-known {text}: give crash, hang or crash,hang")
    return kinds


def _interrupt(signum: int, _frame: object) -> None:
    raise KeyboardInterrupt(f"signal {signum}")


def _start_reports(config: pytest.Config) -> None:
    """Before any QEMU starts: the reports directory must be writable (a usage
    error otherwise), and every report in it is replaced by one that says the
    run has not finished, so a run killed later never leaves an older PASS."""
    reports = Path(config.getoption("qmpcompat_reports"))
    problem = check_writable(reports)
    if problem:
        raise pytest.UsageError(f"--qmpcompat-reports {reports}: cannot write reports there "
                                f"({problem}); choose a writable directory")
    doc = results_document(environment([], "(not loaded yet)", []), [], time.time(),
                           {"running": {"pid": os.getpid()}})
    write_reports(doc, reports, junit=False)
    xmlpath = getattr(config.option, "xmlpath", None)
    if xmlpath:
        write_atomic(Path(xmlpath), render_junit(doc))


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
                  targets=_targets(config))


def _targets(config: pytest.Config) -> tuple[str, ...] | None:
    opt = config.getoption("qmpcompat_targets")
    return tuple(t.strip() for t in opt.split(",") if t.strip()) if opt else None


# The controller sends its selection to the xdist workers, so that every worker
# tests exactly the binaries the controller chose (and none selects again).
SHIPPED = "qmpcompat_selection"


def _ship(st: RunState) -> dict[str, Any]:
    return {"builds": [b.to_json() for b in st.builds],
            "problems": [[p.name, str(p.error)] for p in st.problems],
            "indexes": [i.to_json() for i in st.indexes]}


def _unship(data: dict[str, Any]) -> Selection:
    return Selection([QemuBuild.from_json(b) for b in data["builds"]],
                     [Problem(name, QmpCompatError(text)) for name, text in data["problems"]],
                     [SuiteIndex.from_json(i) for i in data.get("indexes", [])])


def pytest_report_header(config: pytest.Config) -> list[str]:
    st = config.stash.get(STATE, None)
    if st is None:
        return []
    lines = [f"qmpcompat: {len(st.builds)} QEMU binaries, {len(st.vectors.vectors)} vectors "
             f"(vector set {st.vectors.revision()})"]
    lines += [f"  {b.label:<10} {b.describe()}" for b in st.builds]
    lines += [f"  unusable   {p}" for p in st.problems]
    lines += [f"  index      {i.suite}: {i.date or '?'} (valid until {i.valid_until or '?'})"
              + (" STALE" if i.stale else "") for i in st.indexes if not i.error]
    return lines + ([ALLOW_EXEC_WARNING] if st.allow_exec else [])


def _build_id(build: QemuBuild) -> str:
    return f"qemu-{build.label}"


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    st = metafunc.config.stash.get(STATE, None)
    if st is None:
        return
    names = metafunc.fixturenames
    if "qemu_problem" in names:
        metafunc.parametrize("qemu_problem", st.problems, ids=[p.name for p in st.problems])
    if "vector_file_error" in names:
        metafunc.parametrize("vector_file_error", st.lint,
                             ids=[f"{p.file}:{p.line or 0}:{p.vector_id or ''}" for p in st.lint])
    if "vector" in names:
        metafunc.parametrize("vector", st.vectors.vectors, ids=[v.id for v in st.vectors.vectors])
    if "qemu_build" in names:
        metafunc.parametrize("qemu_build", st.builds, ids=[_build_id(b) for b in st.builds],
                             scope="session" if "vector" not in names else "function")


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Drop the placeholder items of empty parameter sets (no unusable binary, no
    broken vector file): they are not skips worth reporting. Record the QEMU
    version and binary of every case in the JUnit XML."""
    items[:] = [i for i in items
                if not any(str(m.kwargs.get("reason", "")).startswith("got empty parameter set")
                           for m in i.iter_markers("skip"))]
    for item in items:
        build = getattr(item, "callspec", None) and item.callspec.params.get("qemu_build")
        if isinstance(build, QemuBuild):
            item.user_properties += [("qemu_version", build.version_str),
                                     ("binary", build.binary)]


def record(item: pytest.Item, result: CaseResult) -> None:
    """Attach a case's record to the test report (travels back from xdist workers)
    and to the JUnit XML."""
    rec = result.record
    for key in ("vector", "outcome", "expected"):
        item.user_properties.append((key, str(rec.get(key))))
    if result.observation is not None:
        item.user_properties.append(("observed", result.observation.summary()))
    item.user_properties.append((RECORD, json.dumps(rec)))


_CASE_ID = re.compile(r"::test_vector\[(?P<vector>.+)-qemu-(?P<qemu>[^\]]+)\]$")


def record_schema_findings(item: pytest.Item, build: QemuBuild, baseline: str, gate: str,
                           findings: list[Any]) -> None:
    """Attach schema-gate findings to the test report, for results.json and summary.md."""
    rows = [{**f.to_json(), "qemu": build.label, "baseline": baseline, "gate": gate}
            for f in findings]
    item.user_properties.append((GATE_RECORD, json.dumps(rows)))


class Recorder:
    """Collects the case records of a run (on the xdist controller, from the
    workers' reports), shows progress, and writes the reports when the session ends."""

    def __init__(self, config: pytest.Config) -> None:
        self.config = config
        self.progress: Progress | None = None
        self.total = 0

    def _start_progress(self, total: int) -> None:
        tr = self.config.pluginmanager.get_plugin("terminalreporter")
        self.total = total
        if tr is not None and not self.config.getoption("qmpcompat_quiet") and self.progress is None:
            self.progress = Progress(total, lambda line: _say(tr, line))

    def pytest_configure_node(self, node: Any) -> None:
        node.workerinput[SHIPPED] = _ship(state(self.config))

    def pytest_collection_finish(self, session: pytest.Session) -> None:
        self._start_progress(len(session.items))

    def pytest_xdist_node_collection_finished(self, node: object, ids: list[str]) -> None:
        self._start_progress(len(ids))

    def pytest_runtest_logreport(self, report: pytest.TestReport) -> None:
        # "???" is the phase of the report xdist makes for a test whose worker crashed.
        if report.when not in ("call", "???") and not (report.when == "setup" and not report.passed):
            return
        st = state(self.config)
        records = [json.loads(v) for k, v in report.user_properties if k == RECORD]
        for k, v in report.user_properties:
            if k == GATE_RECORD:
                st.schema_gate += json.loads(v)
        if not records and report.failed:
            records = self._lost_case(report)
        for rec in records:
            st.records.append(rec)
        if self.progress is not None:
            self.progress.update(report.nodeid, records[0] if records else None)

    def _lost_case(self, report: pytest.TestReport) -> list[dict[str, Any]]:
        """A vector case that died without a record (its worker was killed, say)."""
        match = _CASE_ID.search(report.nodeid)
        st = state(self.config)
        vec = next((v for v in st.vectors.vectors if match and v.id == match["vector"]), None)
        build = next((b for b in st.builds if match and b.label == match["qemu"]), None)
        if vec is None or build is None:
            return []
        lines = [ln.strip() for ln in (report.longreprtext or "").splitlines() if ln.strip()]
        said = next((ln for ln in lines if "crashed" in ln), lines[-1] if lines else "failed")
        return [case_record(vec, build, Verdict("error", said), None)]

    def pytest_sessionfinish(self, session: pytest.Session, exitstatus: int) -> None:
        self.doc = finish_reports(self.config, interrupted=exitstatus == pytest.ExitCode.INTERRUPTED,
                                  expected=self.total)

    def pytest_terminal_summary(self, terminalreporter: Any) -> None:
        """The verdict, with the crashes and hangs and the known defects they were."""
        doc = getattr(self, "doc", None)
        if doc is None:
            return
        v = verdict(doc, state(self.config).fail_on)
        terminalreporter.write_sep("=", f"qmpcompat: {v.headline}")
        for reason in v.reasons:
            terminalreporter.write_line(f"  {reason}")
        for row in crash_rows(doc):
            if not row["defect"]:
                terminalreporter.write_line(f"  {row['vector']}: QEMU {row['result']} on "
                                            f"{', '.join(row['qemu'])}, no known defect: {row['detail']}")
        for row in defect_rows(doc):
            terminalreporter.write_line(f"  {row['id']} ({row['observed']} on {', '.join(row['qemu'])}): "
                                        f"{row['summary']}")


def finish_reports(config: pytest.Config, interrupted: bool = False,
                   expected: int = 0) -> dict[str, Any]:
    """Write the run's reports; returns its results document."""
    st = state(config)
    env = environment([b.to_json() for b in st.builds], st.vectors.revision(),
                      [{"name": p.name, "error": str(p.error)} for p in st.problems],
                      ([ALLOW_EXEC_WARNING] if st.allow_exec else [])
                      + [i.warning() for i in st.indexes if i.stale] or None,
                      [i.to_json() for i in st.indexes])
    seen = {r["defect"] for r in st.records if r.get("defect")}
    extra: dict[str, Any] = {"schema_gate": st.schema_gate,
                             "schema_history": schema_history(st.builds),
                             "known_defects": [defect_facts(d) for d in st.vectors.defects
                                               if d.id in seen]}
    if interrupted:
        extra["interrupted"] = {"cases_expected": expected, "cases_recorded": len(st.records)}
    doc = results_document(env, st.records, st.started, extra)
    write_reports(doc, st.reports, st.fail_on, junit=False)
    tr = config.pluginmanager.get_plugin("terminalreporter")
    if tr is not None:
        _say(tr, f"qmpcompat: reports written to {st.reports}/ (results.json, summary.md, index.html)")
        if st.allow_exec:
            _say(tr, ALLOW_EXEC_WARNING)
    return doc


def defect_facts(defect: KnownDefect) -> dict[str, Any]:
    """A known defect as results.json records it."""
    return {"id": defect.id, "vector": defect.vector, "versions": str(defect.versions),
            "summary": defect.summary, "observed": defect.observed.result,
            "evidence": defect.evidence, "file": defect.file}


def _say(tr: Any, line: str) -> None:
    """Print ``line`` on a line of its own, between pytest's progress dots."""
    if tr._tw.width_of_current_line:
        tr._tw.line()
    tr.write_line(line)
