"""The records of a hunt: what a worker process is sent and sends back, and the
rows of ``hunt.json`` (one per build, one per finding, the recorded crashes
found again or missed). ``docs/hunt.md`` describes hunt.json field by field."""

from __future__ import annotations

from typing import NotRequired, TypedDict

from qmpcompat.hunt.cases import Finding
from qmpcompat.hunt.explore import WorkerStats
from qmpcompat.provision import QemuBuild
from qmpcompat.schema.model.query import Entry
from qmpcompat.vectors.transcript import Step


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
