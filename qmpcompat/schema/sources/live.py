"""A build's own schema: its ``query-qmp-schema`` reply, read once per binary and
run (a run's controller reads it and hands it to its workers: ``known`` and
``adopt``), and the query index over it. This is the one place that answers
"this build's schema" for the suite, the differ, the hunt and the benchmark."""

from __future__ import annotations

from qmpcompat.errors import SchemaError
from qmpcompat.harness import Qemu
from qmpcompat.provision.build import QemuBuild
from qmpcompat.schema.model.query import Entry, SchemaIndex, as_entry, schema_has
from qmpcompat.schema.sources.input import SchemaInput
from qmpcompat.types import qemu_id

_INTROSPECTED: dict[str, list[Entry]] = {}


def introspect(build: QemuBuild) -> list[Entry]:
    """Start ``build`` and return its ``query-qmp-schema`` reply (read once per
    binary and process; callers must not modify it)."""
    if build.binary in _INTROSPECTED:
        return _INTROSPECTED[build.binary]

    with Qemu(build) as qemu:
        reply = qemu.cmd("query-qmp-schema")
    if not isinstance(reply, list):
        raise SchemaError("query-qmp-schema did not return a list", build.binary)
    entries = [as_entry(e, build.binary) for e in reply]
    _INTROSPECTED[build.binary] = entries
    return entries


def known(builds: list[QemuBuild]) -> dict[str, list[Entry]]:
    """The schemas of ``builds`` read so far in this process, by binary (a build whose
    schema cannot be read is left out): what a run hands its other processes."""
    return {b.binary: _INTROSPECTED[b.binary] for b in builds if b.binary in _INTROSPECTED}


def adopt(schemas: dict[str, list[Entry]]) -> None:
    """Take the schemas another process of the run read (``known``), so that this
    one starts no QEMU to read them again."""
    for binary, entries in schemas.items():
        _INTROSPECTED.setdefault(binary, [as_entry(e, binary) for e in entries])


def from_build(build: QemuBuild, spec: str = "") -> SchemaInput:
    """The introspected schema of a QemuBuild."""
    return SchemaInput(spec or build.version_str, qemu_id(build.version_str), "qemu",
                       introspect(build), build.version_str,
                       {"binary": build.binary, "package": build.package,
                        "source": {"kind": "binary", "package": build.package}})


class SchemaCache:
    """Each build's ``query-qmp-schema`` (through ``introspect``) and its query index."""

    def __init__(self) -> None:
        self._index: dict[str, SchemaIndex] = {}

    def entries(self, build: QemuBuild) -> list[Entry]:
        return introspect(build)

    def index(self, build: QemuBuild) -> SchemaIndex:
        if build.binary not in self._index:
            self._index[build.binary] = SchemaIndex(self.entries(build))
        return self._index[build.binary]

    def missing(self, build: QemuBuild, queries: tuple[str, ...]) -> list[str]:
        """The queries that do not hold for ``build``'s schema."""
        if not queries:
            return []
        index = self.index(build)
        return [q for q in queries if not schema_has(index, q)]
