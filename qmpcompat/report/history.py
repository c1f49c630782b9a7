"""The schema history for the conformance report: the differ's steps between
the run's binaries, and the timeline of the migration interface over every
known release (the committed schemas, with the run's builds in place of their
baselines); from the builds themselves, or from the snapshots a shard of a run
records of its builds."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import cast

from qmpcompat.errors import QmpCompatError
from qmpcompat.escape import code_span, markdown
from qmpcompat.historydoc import EmptyJSON, TimelineJSON
from qmpcompat.provision.build import QemuBuild
from qmpcompat.resultdoc import BinaryJSON, HistoryStepJSON
from qmpcompat.schema.differ.compare import history, load
from qmpcompat.schema.differ.timeline import build, point
from qmpcompat.schema.model.query import Entry
from qmpcompat.schema.sources.input import SchemaInput
from qmpcompat.schema.sources.live import from_build
from qmpcompat.schema.sources.releases import known_schemas
from qmpcompat.schema.sources.snapshot import snapshot
from qmpcompat.types import JSONObject


def schema_history(builds: Sequence[QemuBuild]) -> list[HistoryStepJSON]:
    """Each consecutive step between the builds' migration interfaces, with its
    classified findings; empty when there are fewer than two builds or a
    schema cannot be read (the run's own tests report that)."""
    if len(builds) < 2:
        return []
    try:
        return history_of([from_build(b, b.label) for b in builds])
    except QmpCompatError:
        return []


def history_of(schemas: Sequence[SchemaInput]) -> list[HistoryStepJSON]:
    """``schema_history`` of schemas already read (SchemaError if one cannot be loaded)."""
    return [{"old": c.old, "new": c.new,
             "findings": [{k: f.to_json()[k] for k in ("level", "rule", "path", "change", "explanation")}
                          for f in c.findings]}
            for c in history([load(s) for s in schemas]) if c.step == "step"]


def schema_timeline(builds: Sequence[QemuBuild],
                    inference: Mapping[str, str] | None = None) -> TimelineJSON | EmptyJSON:
    """The timeline (``qmpcompat history --format json``) over the committed
    schemas and the run's builds, each release with how far its inferred claims
    held when first run (``inference``, from the ledger); empty when a schema
    cannot be read."""
    try:
        return timeline_of([from_build(b) for b in builds], inference)
    except QmpCompatError:
        return {}


def timeline_of(schemas: Sequence[SchemaInput],
                inference: Mapping[str, str] | None = None) -> TimelineJSON:
    """``schema_timeline`` of schemas already read (SchemaError if one cannot be loaded)."""
    points = [point(k.schema) for k in known_schemas()] + [point(s) for s in schemas]
    timeline = build(points)
    timeline.inference = dict(inference or {})
    return timeline.to_json()


def snapshots(builds: Sequence[QemuBuild]) -> dict[str, JSONObject]:
    """Each build's migration slice (a snapshot, by run label): what a merge of
    shards rebuilds the whole run's schema history from (empty when a schema
    cannot be read)."""
    try:
        return {b.label: cast(JSONObject, snapshot(from_build(b))) for b in builds}
    except QmpCompatError:
        return {}


def from_snapshot(binary: BinaryJSON, data: JSONObject, spec: str) -> SchemaInput:
    """The schema a build's snapshot (``snapshots``) holds, as ``from_build`` reads it."""
    entries: list[Entry] = data["entries"]  # type: ignore[assignment]  # a snapshot's entries
    return SchemaInput(spec, str(data["label"]), "qemu", entries, str(data["qemu"]),
                       {"binary": binary["binary"], "package": binary.get("package", ""),
                        "source": data.get("source") or {}})


def timeline_markdown(timeline: TimelineJSON | EmptyJSON | None) -> list[str]:
    """summary.md's lines for a timeline: the changes by release, the gaps (none
    for no timeline, or the empty one of a run that could not read a schema)."""
    if timeline is None or "releases" not in timeline:
        return []
    releases = timeline["releases"]
    lines = ["", "### Schema history", "",
             f"{markdown(', '.join(timeline['roots']))} over {len(releases)} schemas,"
             f" {markdown(releases[0]['version'])} to {markdown(releases[-1]['version'])}"
             " (`qmpcompat history` for every path).", ""]
    if timeline["unrecorded"]:
        lines += [f"No schema is known of QEMU {markdown(', '.join(timeline['unrecorded']))}: a change"
                  " first seen after such a gap may have happened in it.", ""]
    lines += ["| release | evidence | changes |", "| --- | --- | --- |"]
    for release in releases:
        events = [e for e in timeline["events"] if e["version"] == release["version"]]
        if events:
            text = "; ".join(f"{code_span(e['path'])} {markdown(e['change'])}" for e in events)
            lines.append(f"| {markdown(release['version'])} | {markdown(release['evidence'])} | {text} |")
    for note in timeline.get("inferred", []):
        lines.append(f"| {markdown(note['version'])} | inferred | {code_span(note['path'])} "
                     f"{markdown(note['change'])} |")
    return lines
