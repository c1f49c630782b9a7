"""One schema as read from one input: its introspection entries, where they
came from, and the version they belong to."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from qmpcompat.schema.model.query import Entry
from qmpcompat.schema.sources.qapi_source import Expr


@dataclass
class SchemaInput:
    """A schema read from one input: ``entries`` in query-qmp-schema form."""

    spec: str
    label: str
    kind: str  # "qemu", "snapshot", "source", "recorded"
    entries: list[Entry]
    version: str = ""
    # facts about the input, JSON and Python values alike (a source's parsed definitions,
    # the 'if' symbols taken as true)
    meta: dict[str, Any] = field(default_factory=dict)
    # QAPI source only: what has an ``if``, {kind: {name: condition}} (qapi_convert.conditionals)
    conditionals: dict[str, dict[str, str]] = field(default_factory=dict)
    definitions: list[Expr] = field(default_factory=list)  # a source input's QAPI definitions
