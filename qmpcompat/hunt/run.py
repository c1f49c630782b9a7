"""A hunt over selected builds: explore schema-valid trees and transcripts for a
time budget (or a number of cases) per build with several worker processes (persistent QEMUs unless
``--fresh``), re-run each finding on every build, and write one candidate
vector and bug report per crash signature with a summary (``hunt.json``). The
command line is ``qmpcompat.commands.hunt``."""

from __future__ import annotations

import argparse
import json
import multiprocessing
import re
import statistics
import time
from collections.abc import Callable
from concurrent.futures import ProcessPoolExecutor
from dataclasses import asdict
from typing import NotRequired, TypedDict

from qmpcompat import datafile
from qmpcompat.derive.run import DEFAULT_COMMANDS
from qmpcompat.errors import QmpCompatError
from qmpcompat.harness.process import die_with_parent
from qmpcompat.hunt.backtrace import NO_SYMBOLS, backtrace, symbols
from qmpcompat.hunt.cases import Finding, OtherTranscript, is_failure, signature
from qmpcompat.hunt.explore import SLOW_CASE, STATE_EVERY, Explorer, WorkerStats, distinct
from qmpcompat.hunt.findings import Answer, next_number, write_candidate
from qmpcompat.hunt.known import KnownBug, known_bugs, recorded
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


class Job(TypedDict):
    """What one worker process is sent: its build, schema and share of the hunt."""

    build: QemuBuild
    entries: list[Entry]
    commands: list[str]
    timeout: float
    budget: float
    seed: int
    worker: int
    floor_every: int
    fresh: bool
    spares: int
    fork: bool
    state_every: int
    max_cases: int | None
    workers: int
    systematic: bool


class WorkDone(TypedDict):
    """What one worker process sends back."""

    findings: list[Finding]
    stats: WorkerStats
    floor: float | None  # the median of its floor samples


class BuildRow(TypedDict):
    """One binary's line of hunt.json (``builds``)."""

    qemu: str
    binary: str
    seconds: float
    cases: int
    cases_per_minute: int | None
    qemu_starts: int
    forked: int
    exec_reason: NotRequired[str]
    reused: int
    results: dict[str, int]
    findings: int
    workers: list[dict[str, object]]  # each worker's WorkerStats, without its samples
    per_case_ms: float | None
    floor_ms: float | None
    ratio: float | None
    median_case_ms: NotRequired[float]
    median_ratio: NotRequired[float]
    slow_cases: NotRequired[int]
    slow_seconds: NotRequired[float]


class ReportRow(TypedDict):
    """One finding's line of hunt.json (``reports``)."""

    id: str
    signature: str
    seen: int
    qemu: str
    worker: int
    systematic: bool
    after_cases: int
    after_seconds: float
    affected: list[str]
    recorded: list[str]  # the recorded defects it is (known-defects.yaml); [] when new
    report: str
    steps: list[Step]


class KnownDefect(TypedDict):
    """A recorded crash on one build, and whether (``how``) the run found it again."""

    defect: str
    vector: str
    qemu: str
    how: NotRequired[str]  # "explored" (with the four below) or "re-run"
    worker: NotRequired[int]
    systematic: NotRequired[bool]
    after_cases: NotRequired[int]
    after_seconds: NotRequired[float]


class KnownDefects(TypedDict):
    """hunt.json's ``known_defects``."""

    found: list[KnownDefect]
    missed: list[KnownDefect]


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


def _hunt_build(build: QemuBuild, entries: list[Entry], args: argparse.Namespace,
                budget: float) -> tuple[list[Finding], list[WorkerStats], float, float | None]:
    """Hunt on one build with every worker; the findings no simpler one explains,
    each worker's stats, the wall time, and the floor the workers measured
    between their cases (the median of their medians)."""
    jobs: list[Job] = [
        {"build": build, "entries": entries, "commands": args.commands or list(DEFAULT_COMMANDS),
         "timeout": args.timeout, "budget": budget, "seed": args.seed, "worker": w,
         "floor_every": args.floor_every, "fresh": args.fresh, "spares": args.spares,
         "fork": not args.no_fork_server,
         "state_every": args.state_every, "max_cases": share(args.max_cases, args.workers, w),
         "workers": args.workers, "systematic": not args.no_systematic}
        for w in range(args.workers)]
    start = time.monotonic()
    with ProcessPoolExecutor(args.workers, mp_context=multiprocessing.get_context("spawn"),
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


def replay(args: argparse.Namespace, select: Callable[[], list[QemuBuild]]) -> int:
    """``--replay FILE``: one transcript on every build ``select()`` gives (once the
    transcript is read and checked); exit 1 if it fails on one."""
    try:
        steps = datafile.load_json(args.replay)
    except (OSError, ValueError) as exc:
        raise QmpCompatError(f"{args.replay}: cannot read a transcript: {exc}") from exc
    if not well_formed(steps):
        raise QmpCompatError(f"{args.replay}: a transcript is a JSON list of "
                             "{execute, arguments} steps with a migrate or migrate-incoming")
    if quits_early(steps):
        raise QmpCompatError(f"{args.replay}: a quit comes before the main step (migrate or "
                             "migrate-incoming), which would never run")
    problems = steps_problems(steps, Policy.template())
    if problems:
        raise QmpCompatError(f"{args.replay}: refused by the safety rules: " + "; ".join(problems))
    failed = 0
    incoming = main_step(steps)["execute"] == "migrate-incoming"
    for build in select():
        obs = run_fresh(steps, build, incoming, args.timeout)
        bad = is_failure(steps, obs)
        failed += bad
        print(f"{'FAILS' if bad else 'ok':<6}{build.label:<9}{obs.summary()}"
              + (f"\n      signature: {signature(steps, obs.to_json())}" if bad else ""))
        for reply in obs.replies or ():
            print(f"      {json.dumps(reply)[:200]}")
        if bad and not args.no_backtrace and "killed by signal" in obs.detail:
            trace = backtrace(build, steps, incoming)
            if trace is not None:
                print("      backtrace (gdb):\n" + "\n".join(
                    f"        {line}" for line in trace.text.splitlines()))
                if not trace.symbols:
                    print(f"      {NO_SYMBOLS}")
    return 1 if failed else 0


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


def run_hunt(args: argparse.Namespace, select: Callable[[], list[QemuBuild]]) -> int:
    """Hunt on the builds ``select()`` gives (called once the options are checked)
    as the ``hunt`` options in ``args`` say; 1 when it found something not recorded
    in known-defects.yaml (with ``--fail-on-known``: anything at all), else 0."""
    if args.state_every is None:
        args.state_every = STATE_EVERY
    if args.replay is not None:
        return replay(args, select)
    budget = parse_budget(args.budget)
    if args.workers < 1:
        raise QmpCompatError("--workers must be at least 1")
    if args.spares < 0:
        raise QmpCompatError("--spares must be 0 or more")
    if args.max_cases is not None and args.max_cases < args.workers:
        raise QmpCompatError("--max-cases must be at least the number of workers")
    builds = select()
    args.out.mkdir(parents=True, exist_ok=True)
    schemas = SchemaCache()
    findings: dict[str, Finding] = {}
    summary: list[BuildRow] = []
    for build in builds:
        print(f"qmpcompat hunt: QEMU {build.label}: {args.workers} workers, {budget:g}s"
              + (f" or {args.max_cases} cases" if args.max_cases else "")
              + f", seed {args.seed}", flush=True)
        found, stats, wall, floor = _hunt_build(build, schemas.entries(build), args, budget)
        row = _summary_row(build, stats, wall, floor, len(found))
        summary.append(row)
        print(f"qmpcompat hunt: QEMU {build.label}: {row['cases']} cases in {wall:.0f}s "
              f"({row['cases_per_minute']}/min, {row['qemu_starts']} QEMU starts, "
              f"{row['forked']} of them forked, "
              f"{row['reused']} cases on a reused QEMU) "
              f"({', '.join(f'{v} {k}' for k, v in sorted(row['results'].items()))}); "
              f"{row['per_case_ms']} ms per case per worker, floor {row['floor_ms']} ms "
              f"(x{row['ratio']}; median case {row.get('median_case_ms')} ms, "
              f"x{row.get('median_ratio')}); {len(found)} findings", flush=True)
        if row.get("exec_reason") and not args.fresh:
            print(f"qmpcompat hunt: QEMU {build.label}: QEMUs exec'd, not forked: "
                  f"{row.get('exec_reason')}", flush=True)
        for f in found:
            findings.setdefault(json.dumps([f.qemu, f.steps], sort_keys=True), f)
    number, defect_number = next_number(args.out), next_number(args.out, "KD")
    bugs = known_bugs(load(), builds, Runner(args.timeout))
    reports: list[ReportRow] = []
    for i, finding in enumerate(by_signature(list(findings.values()))):
        answers = _answers(finding, builds, args.timeout)
        hit = affected(answers, finding)
        finding.affected_keys = [{"qemu": a.qemu, "bug_key": finding.bug_key} for a in hit]
        path, used = write_candidate(finding, answers, args.out, number + i, defect_number)
        defect_number += used
        trace = None
        if not args.no_backtrace and hit and "signal" in finding.signature:
            # the first affected build with symbols, else the first affected build
            mine = [b for a in hit for b in builds if b.label == a.qemu]
            first = next((b for b in mine if symbols(b.binary)), mine[0])
            trace = backtrace(first, finding.steps, finding.command == "migrate-incoming")
        md = path.with_suffix(".md")
        md.write_text(bug_report(finding, answers, builds, trace))
        versions = (f"{hit[0].qemu_version}..{hit[-1].qemu_version}" if hit else "none")
        reports.append({"id": path.stem, "signature": finding.signature, "seen": finding.seen,
                        "qemu": finding.qemu, "worker": finding.worker,
                        "systematic": finding.batch < 0,
                        "after_cases": finding.found_after_cases,
                        "after_seconds": finding.found_after_seconds,
                        "affected": [a.qemu_version for a in hit],
                        "recorded": recorded(bugs, finding.signature,
                                             [finding.qemu, *(a.qemu for a in hit)]),
                        "report": md.name, "steps": finding.steps})
        known_as = ", ".join(reports[-1]["recorded"]) or "new"
        print(f"qmpcompat hunt: {finding.signature} ({known_as})\n    affected {versions}; "
              f"{json.dumps(finding.steps)[:300]}\n    -> {md}", flush=True)
    known = _known(bugs, list(findings.values()))
    for again in known["found"]:
        how = (f"explored on it, after {again['after_cases']} cases and {again['after_seconds']}s "
               f"of worker {again['worker']}"
               + (" (systematic pass)" if again["systematic"] else "")
               if again["how"] == "explored" else "a finding of another build, re-run on it")
        print(f"qmpcompat hunt: found again: {again['defect']} ({again['vector']}) on QEMU "
              f"{again['qemu']}: {how}")
    for miss in known["missed"]:
        print(f"qmpcompat hunt: not found again: {miss['defect']} ({miss['vector']}) on QEMU "
              f"{miss['qemu']}")
    (args.out / "hunt.json").write_text(json.dumps(
        {"seed": args.seed, "budget": budget, "max_cases": args.max_cases,
         "workers": args.workers,
         "mode": "fresh" if args.fresh else "persistent", "builds": summary,
         "findings": len(reports), "reports": reports, "known_defects": known},
        indent=2) + "\n")
    new = sum(not r["recorded"] for r in reports)
    print(f"qmpcompat hunt: {len(reports)} findings (one per signature), {new} new, "
          f"{len(reports) - new} recorded known defects; known defects found "
          f"again: {len(known['found'])}, missed: {len(known['missed'])}; summary in "
          f"{args.out / 'hunt.json'}")
    return 1 if new or (args.fail_on_known and reports) else 0
