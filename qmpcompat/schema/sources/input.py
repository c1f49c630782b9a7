"""One schema as read from one input: its introspection entries, where they
came from, and the version they belong to."""

from __future__ import annotations

from dataclasses import dataclass, field

from qmpcompat.schema.model.query import Entry
from qmpcompat.schema.sources.qapi_source import Expr
from qmpcompat.types import JSONObject


@dataclass
class SchemaInput:
    """A schema read from one input: ``entries`` in query-qmp-schema form."""

    spec: str
    label: str
    kind: str  # "qemu", "snapshot", "source", "recorded"
    entries: list[Entry]
    version: str = ""
    # facts about the input: where it came from ("source"; a snapshot's own keys), a build's
    # "binary" and "package", a git input's "repo" and "ref", a Debian source package's
    # "debian-version", the "conditions-from" spec of its if: conditions
    meta: JSONObject = field(default_factory=dict)
    # QAPI source only: what has an ``if``, {kind: {name: condition}} (qapi_convert.conditionals)
    conditionals: dict[str, dict[str, str]] = field(default_factory=dict)
    definitions: list[Expr] = field(default_factory=list)  # a source input's QAPI definitions
    # a source input's if: symbols taken as true (a snapshot says how its slice's conditions fell)
    defines: frozenset[str] = frozenset()
