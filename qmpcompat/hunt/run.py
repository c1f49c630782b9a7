"""A hunt over selected builds: explore schema-valid trees and transcripts for a
time budget (or a number of cases) per build with several worker processes
(persistent QEMUs unless ``fresh``), re-run each finding on every build, and
write one candidate vector and bug report per crash signature with a summary
(``hunt.json``). Library code: it takes ``HuntSettings`` and the builds, says
how it goes through a ``say`` callback, and returns what it found; the command
line (options, printing, exit status) is ``qmpcompat.commands.hunt``."""

from __future__ import annotations

import json
import multiprocessing
import re
import statistics
import time
from collections.abc import Callable, Sequence
from concurrent.futures import ProcessPoolExecutor
from dataclasses import asdict, dataclass, field
from pathlib import Path

from qmpcompat import datafile
from qmpcompat.derive.run import DEFAULT_COMMANDS
from qmpcompat.errors import QmpCompatError
from qmpcompat.harness.process import die_with_parent
from qmpcompat.hunt.backtrace import NO_SYMBOLS, backtrace, symbols
from qmpcompat.hunt.cases import Finding, OtherTranscript, is_failure, signature
from qmpcompat.hunt.explore import SLOW_CASE, STATE_EVERY, Explorer, WorkerStats, distinct
from qmpcompat.hunt.findings import Answer, next_number, write_candidate
from qmpcompat.hunt.known import KnownBug, known_bugs, recorded
from qmpcompat.hunt.records import BuildRow, Job, KnownDefect, KnownDefects, ReportRow, WorkDone
from qmpcompat.hunt.report import affected, bug_report
from qmpcompat.provision import QemuBuild
from qmpcompat.safety import Policy
from qmpcompat.schema.model.query import Entry
from qmpcompat.schema.sources.live import SchemaCache
from qmpcompat.vectors.load import load
from qmpcompat.vectors.persistent import PersistentRunner
from qmpcompat.vectors.run import Runner
from qmpcompat.vectors.transcript import (
    Step,
    main_step,
    quits_early,
    run_fresh,
    steps_problems,
    well_formed,
)

_UNITS = {"": 1, "s": 1, "m": 60, "h": 3600}
__all__ = ["STATE_EVERY", "HuntResult", "HuntSettings", "hunt", "parse_budget", "read_transcript",
           "replay", "share"]
Say = Callable[[str], None]


@dataclass(frozen=True)
class HuntSettings:
    """What a hunt does (``qmpcompat hunt``'s options, checked)."""

    budget: float  # seconds per build
    out: Path
    max_cases: int | None = None
    seed: int = 0
    workers: int = 2
    commands: tuple[str, ...] = tuple(DEFAULT_COMMANDS)
    timeout: float = 10.0
    floor_every: int = 20
    fresh: bool = False
    spares: int = 1
    fork: bool = True
    state_every: int = STATE_EVERY
    systematic: bool = True
    backtraces: bool = True

    def __post_init__(self) -> None:
        if self.workers < 1:
            raise QmpCompatError("--workers must be at least 1")
        if self.spares < 0:
            raise QmpCompatError("--spares must be 0 or more")
        if self.max_cases is not None and self.max_cases < self.workers:
            raise QmpCompatError("--max-cases must be at least the number of workers")


@dataclass
class HuntResult:
    """What a hunt found: a row per build, a report per finding (one per
    signature), and the recorded crashes it found again or missed."""

    builds: list[BuildRow] = field(default_factory=list)
    reports: list[ReportRow] = field(default_factory=list)
    known: KnownDefects = field(default_factory=lambda: KnownDefects(found=[], missed=[]))

    @property
    def new(self) -> int:
        """Findings that are no recorded known defect."""
        return sum(not r["recorded"] for r in self.reports)


def parse_budget(text: str) -> float:
    """Seconds in ``300``, ``20s``, ``5m`` or ``1h``; QmpCompatError otherwise."""
    found = re.fullmatch(r"\s*(\d+(?:\.\d+)?)\s*([smh]?)\s*", text)
    if not found or float(found.group(1)) <= 0:
        raise QmpCompatError(f"budget {text!r} is not a positive time like 300, 20s, 5m or 1h")
    return float(found.group(1)) * _UNITS[found.group(2)]


def share(cases: int | None, workers: int, worker: int) -> int | None:
    """Worker ``worker``'s share of a binary's ``cases`` (None: no case bound); the
    shares add up to ``cases``."""
    if cases is None:
        return None
    return cases // workers + (worker < cases % workers)


def _work(job: Job) -> WorkDone:
    """One worker process: hunt on one build for the budget."""
    runner = (Runner(job["timeout"]) if job["fresh"]
              else PersistentRunner(job["timeout"], spares=job["spares"], fork=job["fork"]))
    explorer = Explorer(job["build"], job["entries"], job["commands"], runner,
                        job["floor_every"], job["state_every"])
    with runner:
        findings = explorer.hunt(job["budget"], job["seed"], job["worker"],
                                 max_cases=job["max_cases"], workers=job["workers"],
                                 systematic=job["systematic"])
    samples = explorer.stats.floor_samples
    return {"findings": findings, "stats": explorer.stats,
            "floor": statistics.median(samples) if samples else None}


def _hunt_build(build: QemuBuild, entries: list[Entry], settings: HuntSettings,
                ) -> tuple[list[Finding], list[WorkerStats], float, float | None]:
    """Hunt on one build with every worker; the findings no simpler one explains,
    each worker's stats, the wall time, and the floor the workers measured
    between their cases (the median of their medians)."""
    jobs: list[Job] = [
        {"build": build, "entries": entries, "commands": list(settings.commands),
         "timeout": settings.timeout, "budget": settings.budget, "seed": settings.seed, "worker": w,
         "floor_every": settings.floor_every, "fresh": settings.fresh, "spares": settings.spares,
         "fork": settings.fork, "state_every": settings.state_every,
         "max_cases": share(settings.max_cases, settings.workers, w),
         "workers": settings.workers, "systematic": settings.systematic}
        for w in range(settings.workers)]
    start = time.monotonic()
    with ProcessPoolExecutor(settings.workers, mp_context=multiprocessing.get_context("spawn"),
                             initializer=die_with_parent) as pool:
        results = list(pool.map(_work, jobs))
    wall = time.monotonic() - start
    explorer = Explorer(build, entries, jobs[0]["commands"])
    found = distinct([f for r in results for f in r["findings"]], explorer)
    floors = [r["floor"] for r in results if r["floor"]]
    return found, [r["stats"] for r in results], wall, statistics.median(floors) if floors else None


def _answers(finding: Finding, builds: list[QemuBuild], timeout: float) -> list[Answer]:
    """The finding's transcript alone on a fresh QEMU of every build of the run
    (the finding's own build: its reproduction)."""
    answers = []
    incoming = finding.command == "migrate-incoming"
    for build in builds:
        if build.binary == finding.binary:
            observed = finding.reproduced
        else:
            observed = run_fresh(finding.steps, build, incoming, timeout).to_json()
        answers.append(Answer(build.label, build.version_str, observed))
    return answers


def by_signature(findings: list[Finding]) -> list[Finding]:
    """One finding per signature: the simplest (fewest steps, shortest), with how
    many findings of the run had that signature and their other transcripts."""
    groups: dict[str, list[Finding]] = {}
    for f in findings:
        groups.setdefault(f.signature, []).append(f)
    out = []
    for sig in sorted(groups):
        same = sorted(groups[sig], key=lambda f: (len(f.steps), len(json.dumps(f.steps)), f.key,
                                                  f.found_after_seconds))
        best = same[0]
        best.seen = len(same)
        best.also = [OtherTranscript(qemu=f.qemu, steps=f.steps) for f in same[1:]
                     if f.steps != best.steps][:5]
        out.append(best)
    return out


def _summary_row(build: QemuBuild, stats: list[WorkerStats], wall: float, floor: float | None,
                 findings: int) -> BuildRow:
    """One binary's line of hunt.json: cases, outcomes, time per case (the floor
    samples' own time left out) and its ratio to the floor, mean and median."""
    cases = sum(s.cases for s in stats)
    hunting = sum(s.seconds - sum(s.floor_samples) for s in stats)
    per_case = hunting / cases if cases else None
    results: dict[str, int] = {}
    for s in stats:
        for k, v in s.results.items():
            results[k] = results.get(k, 0) + v
    starts = sum(s.qemu_starts for s in stats)
    row: BuildRow = {
        "qemu": build.label, "binary": build.binary, "seconds": round(wall, 1), "cases": cases,
        "cases_per_minute": round(cases / wall * 60) if wall else None,
        "qemu_starts": starts, "forked": sum(s.forked for s in stats),
        "reused": sum(s.reused for s in stats),
        "results": results, "findings": findings,
        "workers": [{k: v for k, v in asdict(s).items() if k not in ("case_times", "floor_samples")}
                    for s in stats],
        "per_case_ms": round(per_case * 1000, 1) if per_case else None,
        "floor_ms": round(floor * 1000, 1) if floor else None,
        "ratio": round(per_case / floor, 2) if per_case and floor else None}
    reasons = sorted({s.exec_reason for s in stats if s.exec_reason})
    if reasons:
        row["exec_reason"] = "; ".join(reasons)
    times = [t for s in stats for t in s.case_times]
    if times and floor:  # the typical case: a few slow QEMU answers (e.g. vsock) left out
        row["median_case_ms"] = round(statistics.median(times) * 1000, 1)
        row["median_ratio"] = round(statistics.median(times) / floor, 2)
        slow = [t for t in times if t > SLOW_CASE]
        row["slow_cases"], row["slow_seconds"] = len(slow), round(sum(slow), 1)
    return row


def read_transcript(path: Path) -> list[Step]:
    """The transcript in ``path`` (``--replay``), read and checked: a JSON list of
    steps with a main step, no quit before it, every step within the safety rules
    (QmpCompatError saying what is wrong)."""
    try:
        steps = datafile.load_json(path)
    except (OSError, ValueError) as exc:
        raise QmpCompatError(f"{path}: cannot read a transcript: {exc}") from exc
    if not well_formed(steps):
        raise QmpCompatError(f"{path}: a transcript is a JSON list of "
                             "{execute, arguments} steps with a migrate or migrate-incoming")
    if quits_early(steps):
        raise QmpCompatError(f"{path}: a quit comes before the main step (migrate or "
                             "migrate-incoming), which would never run")
    problems = steps_problems(steps, Policy.template())
    if problems:
        raise QmpCompatError(f"{path}: refused by the safety rules: " + "; ".join(problems))
    return steps


def replay(steps: list[Step], builds: Sequence[QemuBuild], timeout: float, backtraces: bool,
           say: Say) -> int:
    """One transcript alone on a fresh QEMU of every build, each answer said; how
    many builds it fails on."""
    failed = 0
    incoming = main_step(steps)["execute"] == "migrate-incoming"
    for build in builds:
        obs = run_fresh(steps, build, incoming, timeout)
        bad = is_failure(steps, obs)
        failed += bad
        say(f"{'FAILS' if bad else 'ok':<6}{build.label:<9}{obs.summary()}"
            + (f"\n      signature: {signature(steps, obs.to_json())}" if bad else ""))
        for reply in obs.replies or ():
            say(f"      {json.dumps(reply)[:200]}")
        if bad and backtraces and "killed by signal" in obs.detail:
            trace = backtrace(build, steps, incoming)
            if trace is not None:
                say("      backtrace (gdb):\n" + "\n".join(
                    f"        {line}" for line in trace.text.splitlines()))
                if not trace.symbols:
                    say(f"      {NO_SYMBOLS}")
    return failed


def _known(bugs: list[KnownBug], found: list[Finding]) -> KnownDefects:
    """Which recorded crashes the run found again by itself, per build, and which
    not. A found one says how: ``explored`` (a worker hunting on that build met it:
    after how many of its cases and seconds, the earliest) or ``re-run`` (a
    finding from another build, run on this one, fails the same way)."""
    explored: dict[tuple[str, str], Finding] = {}
    for f in sorted(found, key=lambda f: f.found_after_seconds):
        explored.setdefault((f.qemu, f.bug_key), f)
    rerun = {(a["qemu"], a["bug_key"]) for f in found for a in f.affected_keys}
    out: KnownDefects = {"found": [], "missed": []}
    for bug in bugs:
        entry: KnownDefect = {"defect": bug.defect, "vector": bug.vector, "qemu": bug.qemu}
        first = explored.get((bug.qemu, bug.key))
        if first is not None:
            entry["how"], entry["worker"] = "explored", first.worker
            entry["systematic"] = first.batch < 0
            entry["after_cases"] = first.found_after_cases
            entry["after_seconds"] = first.found_after_seconds
        elif (bug.qemu, bug.key) in rerun:
            entry["how"] = "re-run"
        (out["found"] if "how" in entry else out["missed"]).append(entry)
    return out


def hunt(settings: HuntSettings, builds: Sequence[QemuBuild], say: Say) -> HuntResult:
    """Hunt on ``builds`` as ``settings`` say, each step said as it goes; write the
    candidates, bug reports and hunt.json into ``settings.out``."""
    settings.out.mkdir(parents=True, exist_ok=True)
    result = HuntResult()
    findings = _explore(settings, builds, result, say)
    bugs = known_bugs(load(), list(builds), Runner(settings.timeout))
    number, defect_number = next_number(settings.out), next_number(settings.out, "KD")
    for i, finding in enumerate(by_signature(list(findings))):
        defect_number += _report(finding, settings, builds, bugs, number + i, defect_number,
                                 result, say)
    result.known = _known(bugs, findings)
    for again in result.known["found"]:
        how = (f"explored on it, after {again['after_cases']} cases and {again['after_seconds']}s "
               f"of worker {again['worker']}"
               + (" (systematic pass)" if again["systematic"] else "")
               if again["how"] == "explored" else "a finding of another build, re-run on it")
        say(f"found again: {again['defect']} ({again['vector']}) on QEMU {again['qemu']}: {how}")
    for miss in result.known["missed"]:
        say(f"not found again: {miss['defect']} ({miss['vector']}) on QEMU {miss['qemu']}")
    (settings.out / "hunt.json").write_text(json.dumps(
        {"seed": settings.seed, "budget": settings.budget, "max_cases": settings.max_cases,
         "workers": settings.workers, "mode": "fresh" if settings.fresh else "persistent",
         "builds": result.builds, "findings": len(result.reports), "reports": result.reports,
         "known_defects": result.known}, indent=2) + "\n")
    say(f"{len(result.reports)} findings (one per signature), {result.new} new, "
        f"{len(result.reports) - result.new} recorded known defects; known defects found "
        f"again: {len(result.known['found'])}, missed: {len(result.known['missed'])}; summary in "
        f"{settings.out / 'hunt.json'}")
    return result


def _explore(settings: HuntSettings, builds: Sequence[QemuBuild], result: HuntResult,
             say: Say) -> list[Finding]:
    """Hunt on each build in turn; its row goes into ``result``; every distinct
    finding (build and transcript) of the run."""
    schemas = SchemaCache()
    findings: dict[str, Finding] = {}
    for build in builds:
        say(f"QEMU {build.label}: {settings.workers} workers, {settings.budget:g}s"
            + (f" or {settings.max_cases} cases" if settings.max_cases else "")
            + f", seed {settings.seed}")
        found, stats, wall, floor = _hunt_build(build, schemas.entries(build), settings)
        row = _summary_row(build, stats, wall, floor, len(found))
        result.builds.append(row)
        say(f"QEMU {build.label}: {row['cases']} cases in {wall:.0f}s "
            f"({row['cases_per_minute']}/min, {row['qemu_starts']} QEMU starts, "
            f"{row['forked']} of them forked, {row['reused']} cases on a reused QEMU) "
            f"({', '.join(f'{v} {k}' for k, v in sorted(row['results'].items()))}); "
            f"{row['per_case_ms']} ms per case per worker, floor {row['floor_ms']} ms "
            f"(x{row['ratio']}; median case {row.get('median_case_ms')} ms, "
            f"x{row.get('median_ratio')}); {len(found)} findings")
        if row.get("exec_reason") and not settings.fresh:
            say(f"QEMU {build.label}: QEMUs exec'd, not forked: {row.get('exec_reason')}")
        for f in found:
            findings.setdefault(json.dumps([f.qemu, f.steps], sort_keys=True), f)
    return list(findings.values())


def _report(finding: Finding, settings: HuntSettings, builds: Sequence[QemuBuild],
            bugs: list[KnownBug], number: int, defect_number: int, result: HuntResult,
            say: Say) -> int:
    """Run a finding on every build, write its candidate vector and bug report, and
    add its row to ``result``; how many known-defect numbers its candidate used."""
    answers = _answers(finding, list(builds), settings.timeout)
    hit = affected(answers, finding)
    finding.affected_keys = [{"qemu": a.qemu, "bug_key": finding.bug_key} for a in hit]
    path, used = write_candidate(finding, answers, settings.out, number, defect_number)
    trace = None
    if settings.backtraces and hit and "signal" in finding.signature:
        # the first affected build with symbols, else the first affected build
        mine = [b for a in hit for b in builds if b.label == a.qemu]
        first = next((b for b in mine if symbols(b.binary)), mine[0])
        trace = backtrace(first, finding.steps, finding.command == "migrate-incoming")
    md = path.with_suffix(".md")
    md.write_text(bug_report(finding, answers, list(builds), trace))
    versions = (f"{hit[0].qemu_version}..{hit[-1].qemu_version}" if hit else "none")
    row: ReportRow = {
        "id": path.stem, "signature": finding.signature, "seen": finding.seen,
        "qemu": finding.qemu, "worker": finding.worker, "systematic": finding.batch < 0,
        "after_cases": finding.found_after_cases, "after_seconds": finding.found_after_seconds,
        "affected": [a.qemu_version for a in hit],
        "recorded": recorded(bugs, finding.signature, [finding.qemu, *(a.qemu for a in hit)]),
        "report": md.name, "steps": finding.steps}
    result.reports.append(row)
    say(f"{finding.signature} ({', '.join(row['recorded']) or 'new'})\n    affected {versions}; "
        f"{json.dumps(finding.steps)[:300]}\n    -> {md}")
    return used
