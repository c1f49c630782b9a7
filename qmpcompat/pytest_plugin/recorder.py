"""The controller's side of a run: collects every case's record (from the
workers' reports under xdist), rebuilds the record of a case whose worker died,
shows progress, and writes the reports when the session ends."""

from __future__ import annotations

import json
import os
import time
from pathlib import Path
from typing import Protocol, TypedDict

import pytest

from qmpcompat import runconfig
from qmpcompat.claims.ledger import by_release, load_ledger
from qmpcompat.errors import ReportError, VectorError
from qmpcompat.escape import terminal
from qmpcompat.provision.build import QemuBuild
from qmpcompat.pytest_plugin.cases import (
    CONSUMER_RECORD,
    GATE_RECORD,
    PAIR_RECORD,
    RECORD,
    derived_cases,
)
from qmpcompat.pytest_plugin.shard import facts as shard_facts
from qmpcompat.pytest_plugin.state import SHIPPED, STATE, RunState, ship
from qmpcompat.reaper import write_atomic
from qmpcompat.report.crashes import crash_rows, defect_rows
from qmpcompat.report.files import check_writable
from qmpcompat.report.history import schema_history, schema_timeline
from qmpcompat.report.junit import render_junit
from qmpcompat.report.lock import own
from qmpcompat.report.progress import Progress
from qmpcompat.report.render import write_reports
from qmpcompat.report.results import environment, results_document
from qmpcompat.report.runmodes import run_facts
from qmpcompat.report.summary import verdict
from qmpcompat.resultdoc import (
    CaseJSON,
    ConsumerJSON,
    EnvironmentJSON,
    KnownDefectJSON,
    PairJSON,
    ResultsJSON,
    ResultsMembers,
)
from qmpcompat.safety import ALLOW_EXEC_WARNING
from qmpcompat.schema.sources.live import SchemaCache
from qmpcompat.types import JSONObject, Outcome, split_case_id
from qmpcompat.vectors.check import case_record
from qmpcompat.vectors.match import Verdict
from qmpcompat.vectors.model import KnownDefect, Vector
from qmpcompat.vectors.paircheck import pair_record
from qmpcompat.vectors.profilecheck import profile_record


class WorkerNode(Protocol):
    """What the controller sees of an xdist worker before it starts: the input
    the worker receives."""

    workerinput: dict[str, object]


class Recorder:
    """Collects the case records of a run (on the xdist controller, from the
    workers' reports), shows progress, and writes the reports when the session ends."""

    def __init__(self, config: pytest.Config) -> None:
        self.config = config
        self.progress: Progress | None = None
        self.total = 0
        self.doc: ResultsJSON | None = None  # the run's results document, once written

    @property
    def state(self) -> RunState:
        return self.config.stash[STATE]

    def _start_progress(self, total: int) -> None:
        tr = self.config.pluginmanager.get_plugin("terminalreporter")
        self.total = total
        if tr is not None and not runconfig.flag(self.config, "quiet") and self.progress is None:
            self.progress = Progress(total, lambda line: say(tr, line))

    def pytest_configure_node(self, node: WorkerNode) -> None:
        node.workerinput[SHIPPED] = ship(self.state)

    def pytest_testnodedown(self, node: WorkerNode, error: object) -> None:
        """A worker is done: keep what its persistent runner did."""
        counts = getattr(node, "workeroutput", {}).get(RUNNER_COUNTS)
        if isinstance(counts, dict):
            self.state.runners.append(counts)

    def pytest_collection_finish(self, session: pytest.Session) -> None:
        self._start_progress(len(session.items))

    def pytest_xdist_node_collection_finished(self, node: object, ids: list[str]) -> None:
        self._start_progress(len(ids))

    def pytest_runtest_logreport(self, report: pytest.TestReport) -> None:
        # "???" is the phase of the report xdist makes for a test whose worker crashed.
        if report.when not in ("call", "???") and not (report.when == "setup" and not report.passed):
            return
        st = self.state
        records = [json.loads(str(v)) for k, v in report.user_properties if k == RECORD]
        pairs = [json.loads(str(v)) for k, v in report.user_properties if k == PAIR_RECORD]
        st.pair_records += pairs
        consumers = [json.loads(str(v)) for k, v in report.user_properties if k == CONSUMER_RECORD]
        st.consumer_records += consumers
        for k, v in report.user_properties:
            if k == GATE_RECORD:
                st.schema_gate += json.loads(str(v))
        if not records and not pairs and not consumers and report.failed:
            lost_pairs, lost_consumers = lost_cell(st, report)
            st.pair_records += lost_pairs
            st.consumer_records += lost_consumers
            records = [] if lost_pairs or lost_consumers else lost_case(st, report)
        st.records += records
        if self.progress is not None:
            self.progress.update(report.nodeid, records[0] if records else None)

    def pytest_sessionfinish(self, session: pytest.Session, exitstatus: int) -> None:
        self.doc = finish_reports(self.config, interrupted=exitstatus == pytest.ExitCode.INTERRUPTED,
                                  expected=self.total)

    def pytest_terminal_summary(self, terminalreporter: pytest.TerminalReporter) -> None:
        """The verdict, with the crashes and hangs and the known defects they were."""
        doc = self.doc
        if doc is None:
            return
        v = verdict(doc, self.state.fail_on)
        terminalreporter.write_sep("=", terminal(f"qmpcompat: {v.headline}"))
        for reason in v.reasons:
            terminalreporter.write_line(terminal(f"  {reason}"))
        for row in crash_rows(doc):
            if not row["defect"]:
                terminalreporter.write_line(terminal(
                    f"  {row['vector']}: QEMU {row['result']} on {', '.join(row['qemu'])}, "
                    f"no known defect: {row['detail']}"))
        for defect in defect_rows(doc):
            terminalreporter.write_line(terminal(f"  {defect['id']} ({defect['observed']} on "
                                                 f"{', '.join(defect['qemu'])}): {defect['summary']}"))


def _case_of(st: RunState, case: str, build: QemuBuild) -> Vector | None:
    """The vector, or the derived case as a vector, with id ``case`` on ``build``."""
    vec = next((v for v in st.vectors.vectors if v.id == case), None)
    if vec is not None:
        return vec
    derived = derived_cases(st, SchemaCache(), [build])
    return next((c.vector() for _b, c in derived if c.id == case), None)


def _lost(report: pytest.TestReport) -> tuple[str, Verdict]:
    """The test id's parameter of a test that died without a record, and its
    verdict: an error saying what pytest saw (the worker crashed, say)."""
    param = report.nodeid.rpartition("[")[2].removesuffix("]") if report.nodeid.endswith("]") else ""
    lines = [ln.strip() for ln in (report.longreprtext or "").splitlines() if ln.strip()]
    said = next((ln for ln in lines if "crashed" in ln), lines[-1] if lines else "failed")
    return param, Verdict(Outcome.ERROR, said)


def lost_case(st: RunState, report: pytest.TestReport) -> list[CaseJSON]:
    """The record of a case (a vector's or a derived one) that died without a
    record (its worker was killed, say); empty when the test was no case."""
    param, verdict = _lost(report)
    parsed = split_case_id(param)
    build = st.build(parsed[1]) if parsed else None
    vec = _case_of(st, parsed[0], build) if parsed and build else None
    if vec is None or build is None:
        return []
    return [case_record(vec, build, verdict, None).to_json()]


def lost_cell(st: RunState, report: pytest.TestReport) -> tuple[list[PairJSON], list[ConsumerJSON]]:
    """The record of a cross-version cell (``XV-NNNN-FORM-SOURCE-to-DESTINATION``)
    or a consumer-profile cell (``CP-NNNN-SOURCE-to-DESTINATION``) that died
    without a record (its worker was killed, say): (pair records, consumer
    records), both empty when the test was no such cell."""
    param, verdict = _lost(report)
    pair = next((c for c in st.pair_cases if c.id == param), None)
    consumer = next((c for c in st.consumer_cases if c.id == param), None)
    return ([pair_record(pair, verdict, None)] if pair is not None else [],
            [profile_record(consumer, verdict, None)] if consumer is not None else [])


def start_reports(config: pytest.Config) -> None:
    """Before any QEMU starts: the reports directory must be writable (a usage
    error otherwise), and every report in it is replaced by one that says the
    run has not finished, so a run killed later never leaves an older PASS."""
    reports = Path(runconfig.text(config, "reports") or "reports")
    problem = check_writable(reports)
    if problem:
        raise pytest.UsageError(f"--qmpcompat-reports {reports}: cannot write reports there "
                                f"({problem}); choose a writable directory")
    try:
        own(reports, "the conformance suite")
    except ReportError as exc:
        raise pytest.UsageError(f"--qmpcompat-reports: {exc}") from exc
    doc = results_document(environment([], "(not loaded yet)", []), [], time.time(),
                           {"running": {"pid": os.getpid()}})
    write_reports(doc, reports, junit=False)
    xmlpath = getattr(config.option, "xmlpath", None)
    if xmlpath:
        write_atomic(Path(xmlpath), render_junit(doc))


def mark_started(st: RunState) -> None:
    """Once the run has its builds, vector set and shard: the not-finished
    results.json again, with them (a merge of shards tells by it which shard
    started and never finished)."""
    extra: ResultsMembers = {"running": {"pid": os.getpid()}}
    if st.shard is not None:
        extra["shard"] = shard_facts(st.shard, [])
    write_reports(results_document(_environment(st), [], st.started, extra), st.reports,
                  junit=False)


def _environment(st: RunState) -> EnvironmentJSON:
    return environment([b.to_json() for b in st.builds], st.vectors.revision(),
                       [{"name": p.name, "error": str(p.error)} for p in st.problems],
                       ([ALLOW_EXEC_WARNING] if st.allow_exec else [])
                       + [i.warning() for i in st.indexes if i.stale] + st.warnings or None,
                       [i.to_json() for i in st.indexes])


def finish_reports(config: pytest.Config, interrupted: bool = False,
                   expected: int = 0) -> ResultsJSON:
    """Write results.json, summary.md and index.html of the run; returns its results document."""
    st = config.stash[STATE]
    env = _environment(st)
    try:
        ledger = load_ledger(st.vectors.root)
    except VectorError:  # a broken ledger is lint's to report; the run's reports go on
        ledger = []
    seen = {defect for r in [*st.records, *st.pair_records, *st.consumer_records]
            if (defect := r.get("defect"))}
    extra: ResultsMembers = {"schema_gate": st.schema_gate, "pairs": st.pair_records,
                             "consumers": st.consumer_records,
                             "schema_history": schema_history(st.builds),
                             "schema_timeline": schema_timeline(st.builds, by_release(ledger)),
                             "inference_ledger": [e.to_json() for e in ledger],
                             "known_defects": [defect_facts(d) for d in st.vectors.defects
                                               if d.id in seen]}
    if interrupted:
        extra["interrupted"] = {"cases_expected": expected, "cases_recorded": len(st.records)
                                + len(st.pair_records) + len(st.consumer_records)}
    if st.shard is not None:
        extra["shard"] = shard_facts(st.shard, st.builds)
    extra["run"] = run_facts([*st.records, *st.pair_records, *st.consumer_records], st.persistent,
                             st.fork_server,
                             st.runners)
    doc = results_document(env, st.records, st.started, extra)
    write_reports(doc, st.reports, st.fail_on, junit=False)
    tr = config.pluginmanager.get_plugin("terminalreporter")
    if tr is not None:
        say(tr, f"qmpcompat: reports written to {st.reports}/ (results.json, summary.md, index.html)")
        if st.allow_exec:
            say(tr, ALLOW_EXEC_WARNING)
    return doc


RUNNER_COUNTS = "qmpcompat_runner"  # the workeroutput key of a worker's persistent-mode counts


def record_runner(config: pytest.Config, counts: JSONObject) -> None:
    """Keep what a persistent runner did for the reports: on an xdist worker, for
    the controller (``pytest_testnodedown``); in a run without workers, in the run."""
    workeroutput = getattr(config, "workeroutput", None)
    if isinstance(workeroutput, dict):
        workeroutput[RUNNER_COUNTS] = counts
    elif (st := config.stash.get(STATE, None)) is not None:
        st.runners.append(counts)


class _Destination(TypedDict, total=False):
    destination: str  # a pair defect's destination range


def defect_facts(defect: KnownDefect) -> KnownDefectJSON:
    """A known defect as results.json records it."""
    pair: _Destination = {"destination": str(defect.destination)} if defect.destination else {}
    return {"id": defect.id, "vector": defect.vector, "versions": str(defect.versions),
            **pair, "summary": defect.summary, "observed": defect.observed.result,
            "evidence": defect.evidence, "file": defect.file}


def say(tr: pytest.TerminalReporter, line: str) -> None:
    """Print ``line`` on a line of its own, between pytest's progress dots
    (``write_line`` starts a new line first when the current one has dots)."""
    tr.write_line(terminal(line))
