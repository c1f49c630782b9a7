"""The shapes of the schema history (``qmpcompat history --format json``, a results
document's ``schema_timeline``), as TypedDicts that follow
``qmpcompat/data/history.schema.json`` member by member (a test holds them to it)."""

from __future__ import annotations

from typing import NotRequired, TypedDict, final

# The schema history (qmpcompat history --format json, a results document's
# schema_timeline).


@final
class EmptyJSON(TypedDict):
    """An empty JSON object (``"releases" in timeline`` tells it from a timeline)."""


class EventJSON(TypedDict):
    """An event as the history's JSON gives it."""

    version: str
    previous: str
    path: str
    what: str
    change: str
    evidence: str
    unrecorded: list[str]
    old: NotRequired[str]
    new: NotRequired[str]
    note: NotRequired[str]


class ReleaseJSON(TypedDict):
    """A point as the history's JSON gives it."""

    version: str
    label: str
    origin: str
    evidence: str
    where: str
    inference: NotRequired[str]  # how far its inferred claims held when first run (the ledger)


class LifecycleChange(TypedDict):
    """One change of a path in its lifecycle row."""

    version: str
    change: str


class LifecycleRow(TypedDict):
    """One path's life over the history (see ``Timeline.lifecycle``)."""

    path: str
    what: str
    first: str
    since_oldest: bool
    last: str
    current: bool
    optional: bool | None
    type: str
    features: list[str]
    changes: list[LifecycleChange]


class TimelineJSON(TypedDict):
    """The history as ``qmpcompat history --format json`` writes it."""

    format: str
    roots: list[str]
    releases: list[ReleaseJSON]
    unrecorded: list[str]
    events: list[EventJSON]
    inferred: list[EventJSON]
    lifecycle: list[LifecycleRow]
