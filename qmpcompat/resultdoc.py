"""The shapes of the results document (``results.json``, as
``qmpcompat/data/results.schema.json`` describes it; a test holds each TypedDict
to the schema), and the record of one case (``CaseRecord``) that becomes its
``results`` entries: what provisioning records of a build and an index, what the
vectors record of a case, what the plugin, the reports, ``report merge`` and
``qmpcompat observe`` read and write. The only definitions of these shapes;
they live above the vocabulary (``qmpcompat.types``) and the history's shapes
(``qmpcompat.historydoc``) and below everything that uses them. Its length is
the schema's: one TypedDict per shape of results.json, member by member."""

from __future__ import annotations

from dataclasses import dataclass
from typing import NotRequired, TypedDict, final

from qmpcompat.historydoc import EmptyJSON, TimelineJSON
from qmpcompat.types import JSONObject, Outcome


@dataclass(frozen=True)
class CaseRecord:
    """The record of one case, as ``results.json`` keeps it (in this key order)."""

    vector: str
    command: str
    flags: list[str]
    description: str
    file: str
    qemu: str
    qemu_version: str
    package: str
    binary: str
    outcome: Outcome
    expected: str = ""
    message: str = ""
    defect: str | None = None
    observed: JSONObject | None = None
    seconds: float = 0.0
    basis: BasisJSON | None = None  # what the expectation rests on

    def to_json(self) -> CaseJSON:
        basis: BasisJSON | None = None if self.basis is None else {**self.basis}
        return {
            "vector": self.vector, "command": self.command, "flags": list(self.flags),
            "description": self.description, "file": self.file,
            "qemu": self.qemu, "qemu_version": self.qemu_version, "package": self.package,
            "binary": self.binary, "outcome": self.outcome.value, "expected": self.expected,
            "message": self.message, "defect": self.defect, "observed": self.observed,
            "seconds": self.seconds, "basis": basis,
        }


# The results document (results.json). A member the JSON Schema does not require
# is NotRequired; a results file is checked against that schema when it is read.


class BasisJSON(TypedDict):
    """What the claim a case (or cell) was judged against rests on: ``kind`` is
    observed, schema or inferred; ``source`` says from what."""

    kind: str
    source: str


class JudgedJSON(TypedDict):
    """What a case record and a cross-version cell say of their verdict:
    ``observed`` is what QEMU did, as ``Observation.to_json`` gives it (with a
    transcript's QMP replies), ``basis`` what the claim judged against rests on."""

    outcome: str  # an Outcome's value
    expected: NotRequired[str]
    message: NotRequired[str]
    defect: NotRequired[str | None]
    observed: NotRequired[JSONObject | None]
    seconds: NotRequired[float]
    basis: NotRequired[BasisJSON | None]


@final
class CaseJSON(JudgedJSON):
    """The record of one case on one build (``results``)."""

    vector: str
    command: str
    flags: NotRequired[list[str]]
    description: NotRequired[str]
    file: NotRequired[str]
    qemu: str  # the build's label in this run
    qemu_version: str
    package: NotRequired[str]
    binary: str


class BuildPairJSON(JudgedJSON):
    """What a record of something run from a source build to a destination build
    (a cross-version cell, a consumer-profile cell) says of the two builds and
    the guest that moved between them."""

    description: NotRequired[str]
    file: NotRequired[str]
    guest: NotRequired[JSONObject]  # machine family, run state, memory, devices
    machine: str  # the versioned machine type both sides ran (the older build's)
    source: str
    source_version: str
    source_package: NotRequired[str]
    destination: str
    destination_version: str
    destination_package: NotRequired[str]


@final
class PairJSON(BuildPairJSON):
    """The record of one cross-version cell (``pairs``): a pair vector in one form
    from a source build to a destination build."""

    vector: str
    form: str  # uri/uri, channels/uri, uri/channels or channels/channels
    transport: str
    flags: NotRequired[list[str]]


@final
class ConsumerJSON(BuildPairJSON):
    """The record of one consumer-profile cell (``consumers``): a profile from a
    source build to a destination build (the same build on both sides too)."""

    profile: str  # CP-NNNN
    consumer: str
    consumer_version: str
    step: NotRequired[str | None]  # the step QEMU refused, or crashed or hung at
    location: NotRequired[str]  # FILE:LINE of that step


class ConsumerCellJSON(TypedDict):
    """One cell of the consumer matrices: a profile from a source to a destination."""

    profile: str
    consumer: str
    source: str
    destination: str
    mark: str  # migrated, refused at STEP, failed, crash, hang, known KD-NNNN, FAIL, n/a
    outcome: str


class ConsumerMatrixJSON(TypedDict):
    """The consumer x build and consumer x pair matrices (``consumer_matrix``)."""

    profiles: list[dict[str, str]]  # id, consumer, version
    versions: list[str]
    cells: list[ConsumerCellJSON]


class BinaryJSON(TypedDict):
    """A build of the run (``environment.binaries``), as ``QemuBuild.to_json`` gives it."""

    binary: str
    version: str
    version_line: str
    package: NotRequired[str]
    origin: NotRequired[str]
    loader: NotRequired[str]
    library_path: NotRequired[str]
    env: NotRequired[dict[str, str]]
    data_dirs: NotRequired[list[str]]
    run_label: NotRequired[str]
    features: NotRequired[list[str]]
    features_probed: NotRequired[bool]
    request: NotRequired[str]  # how the run asked for it: its key in a shard plan
    host_dirs: NotRequired[list[str]]
    distribution: NotRequired[str]
    added: NotRequired[list[JSONObject]]  # provision.provenance.Supplement.to_json
    arch: NotRequired[str]
    program: NotRequired[str]
    provenance: NotRequired[JSONObject]  # provision.provenance.Provenance.to_json


class ProblemJSON(TypedDict):
    """A build or suite the run could not use, and why."""

    name: str
    error: str


class IndexJSON(TypedDict):
    """A Debian archive index the builds were chosen from (``SuiteIndex.to_json``)."""

    suite: str
    date: NotRequired[str]
    valid_until: NotRequired[str]
    stale: NotRequired[bool]
    error: NotRequired[str]
    kind: NotRequired[str]
    hint: NotRequired[str]


class EnvironmentJSON(TypedDict):
    """Where and with what a run ran; a merged file's also lists its runs'."""

    host: str
    os: NotRequired[str]
    python: NotRequired[str]
    qmpcompat: str
    vector_revision: str
    binaries: list[BinaryJSON]
    problems: NotRequired[list[ProblemJSON]]
    warnings: NotRequired[list[str]]
    indexes: NotRequired[list[IndexJSON]]
    runs: NotRequired[list[RunJSON]]


class RunJSON(EnvironmentJSON):
    """One run a merged file merges: its file, its environment and how its cases ran."""

    file: str
    modes: NotRequired[RunModesJSON]
    shard: NotRequired[int]  # a shard's index (K of K/N)
    seconds: NotRequired[float]


class KnownDefectJSON(TypedDict):
    """A recorded known defect the run saw (``known_defects``)."""

    id: str
    vector: NotRequired[str]
    versions: str  # the range it is recorded for (a pair defect's: the source's)
    destination: NotRequired[str]  # a pair defect's destination range
    summary: str
    observed: NotRequired[str]
    evidence: NotRequired[str]
    file: NotRequired[str]


class GateFindingJSON(TypedDict, total=False):
    """A schema-gate finding (``schema_gate``): the differ's finding (its inputs,
    root, direction and fingerprint too), with the build, the baseline it was
    held against and the gate."""

    qemu: str
    baseline: str
    gate: str  # regression or release
    level: str
    rule: str
    path: str
    change: str
    explanation: str
    old: str
    new: str
    root: str
    direction: str
    fingerprint: str


class HistoryStepJSON(TypedDict):
    """The differ's findings between two consecutive builds (``schema_history``)."""

    old: str
    new: str
    findings: list[JSONObject]


class InterruptedJSON(TypedDict, total=False):
    """How far an interrupted run got; a merged file's adds up its stopped runs."""

    cases_expected: int
    cases_recorded: int
    runs: list[str]


class RunningJSON(TypedDict, total=False):
    """The mark of a file written as a run starts."""

    pid: int


class CellJSON(TypedDict):
    """One source x destination cell of the cross-version matrix."""

    source: str
    destination: str
    mark: str  # ok, FAIL, known or n/a
    passed: int
    failed: int
    xfailed: int
    skipped: int
    error: int
    defects: list[str]


class MatrixJSON(TypedDict, total=False):
    """The cross-version matrix (``pair_matrix``): versions in order, every cell
    (``matrix`` gives both)."""

    versions: list[str]
    cells: list[CellJSON]


class RunOutcomeJSON(TypedDict):
    """One run's outcome of a case or cell two runs disagree about."""

    file: str
    outcome: str
    observed: NotRequired[JSONObject | None]
    binary: NotRequired[str]


class DisagreementJSON(TypedDict):
    """A case two runs of the same build disagree about (``disagreements``)."""

    vector: str
    qemu: str
    runs: list[RunOutcomeJSON]


class PairDisagreementJSON(TypedDict):
    """A matrix cell two runs of the same builds disagree about (``pair_disagreements``)."""

    vector: str
    form: str
    source: str
    destination: str
    runs: list[RunOutcomeJSON]


class ConsumerDisagreementJSON(TypedDict):
    """A consumer cell two runs of the same builds disagree about (``consumer_disagreements``)."""

    profile: str
    source: str
    destination: str
    runs: list[RunOutcomeJSON]


class UnsteadyJSON(TypedDict):
    """A case whose reused QEMU and the fresh QEMU it was run again on did otherwise."""

    vector: str
    qemu: str
    reused: str  # what the reused QEMU did (a result), and its words
    reused_detail: str
    fresh: str  # what the fresh QEMU did
    outcome: str  # the case's outcome (fresh QEMU's, failed under strict mode)


class RunModesJSON(TypedDict):
    """How a run's cases were run (results.json's ``run``)."""

    persistent: bool  # persistent mode (a QEMU serves the cases that leave it unchanged)
    fork_server: bool  # ... its QEMUs forked from a fork server
    qemus: dict[str, int]  # cases per kind of QEMU: fresh, forked, reused
    rerun: int  # failures on a reused QEMU run again on a fresh one
    unsteady: list[UnsteadyJSON]
    ahead: NotRequired[int]  # waiting cases run ahead of their turn (observed.ahead)
    fork_unavailable: NotRequired[dict[str, str]]  # per label: why its QEMUs were exec'd


class ShardJSON(TypedDict):
    """Which shard of a sharded run a results document is (``shard``)."""

    index: int  # K of K/N, 1-based
    total: int  # N
    plan: str  # the plan's identity: shards of one run share it
    keys: list[str]  # every build of the whole run (QemuBuild.request), in its order
    basis: str  # where the plan's costs came from
    estimate: NotRequired[dict[str, float]]  # the plan's estimate of this shard: seconds, cases
    schemas: NotRequired[dict[str, JSONObject]]  # each of its builds' migration slice, by label


class ShardsJSON(TypedDict):
    """A sharded run a merged document holds (``shards``): which shards reported."""

    plan: str
    total: int
    reported: list[int]
    missing: list[int]  # shards that never reported: the merged verdict fails
    files: list[str]


class WrongClaimJSON(TypedDict):
    """A case whose inferred claim did not hold when its release was first run."""

    case: str
    claimed: str
    did: str


LedgerJSON = TypedDict("LedgerJSON", {
    "release": str, "build": str, "date": str, "vector-revision": str, "inferred": int,
    "held": int, "wrong": list[WrongClaimJSON]})
"""An entry of the inference ledger (vectors/inference-ledger.yaml, results.json's
``inference_ledger``): how far the inferred claims for a release held when a build
of it was first run."""


class ResultsMembers(TypedDict, total=False):
    """The members of a results document beyond its core (see ``ResultsJSON``)."""

    claims: dict[str, dict[str, int]]  # per label: observed, schema, inferred
    schema_gate: list[GateFindingJSON]
    pairs: list[PairJSON]
    schema_history: list[HistoryStepJSON]
    schema_timeline: TimelineJSON | EmptyJSON  # empty when a schema could not be read
    known_defects: list[KnownDefectJSON]
    interrupted: InterruptedJSON
    running: RunningJSON
    disagreements: list[DisagreementJSON]
    pair_matrix: MatrixJSON
    pair_disagreements: list[PairDisagreementJSON]
    run: RunModesJSON
    inference_ledger: list[LedgerJSON]
    consumers: list[ConsumerJSON]
    consumer_matrix: ConsumerMatrixJSON
    consumer_disagreements: list[ConsumerDisagreementJSON]
    shard: ShardJSON
    shards: list[ShardsJSON]


class ResultsJSON(ResultsMembers):
    """A results document: one run, or several merged."""

    format: int
    started: str  # UTC, ISO 8601
    seconds: float
    environment: EnvironmentJSON
    totals: dict[str, dict[str, int]]  # per label: the count of each outcome
    results: list[CaseJSON]
