"""Recordings of what a real consumer sent on the wire: the QMP commands libvirt
really sent to each side's QEMU during one migration, read from its own monitor
log (``qmpcompat consumers observe``), kept as data under
``vectors/consumers/wire/PROFILE/SOURCE-to-DESTINATION.json`` so that a profile
can be held against them without libvirt (``qmpcompat.vectors.wirecheck``).

The format is stated once, in ``vectors/consumer-wire.schema.json``; this
module reads it. A message is a command (``execute``, ``arguments``, ``via``:
the libvirt function that sent it, and ``return`` for migration commands,
``error`` for any refused one) or a MIGRATION event (``event``, ``data``), with
its side, its time ``t`` in seconds from the first message and its number ``n``
in the order of both sides merged.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import jsonschema

from qmpcompat.datafile import load_json
from qmpcompat.errors import VectorError
from qmpcompat.types import JSONObject, json_object

FORMAT = "qmpcompat-consumer-wire/1"
SCHEMA_FILE = "consumer-wire.schema.json"
WIRE_DIR = Path("consumers") / "wire"
# Commands whose replies a recording keeps (a condition or template may read them).
_FAMILY = ("migrate", "query-migrate")
_ALSO = ("getfd", "closefd", "cont", "stop", "query-status")


def wire_family(command: str) -> bool:
    """Whether ``command`` is a migration command whose reply a recording keeps."""
    return command.startswith(_FAMILY) or command in _ALSO


@dataclass(frozen=True)
class Recording:
    """One recording: ``name`` is ``SOURCE-to-DESTINATION`` (its file's stem)."""

    name: str
    file: str  # relative to the vectors root
    doc: JSONObject

    @property
    def profile(self) -> str:
        return str(self.doc["profile"])

    @property
    def messages(self) -> list[JSONObject]:
        return [json_object(m) for m in self.doc.get("messages") or []]  # type: ignore[union-attr]

    @property
    def values(self) -> dict[str, str]:
        raw = self.doc.get("values")
        return {str(k): str(v) for k, v in raw.items()} if isinstance(raw, dict) else {}

    def version(self, side: str) -> str:
        return str(json_object(self.doc[side])["qemu"])

    @property
    def title(self) -> str:
        return (f"{self.doc.get('consumer')} {self.doc.get('consumer-version')}, QEMU "
                f"{self.version('source')} -> {self.version('destination')} ({self.file})")


def recording_name(source: str, destination: str) -> str:
    return f"{source}-to-{destination}"


def recording_path(root: Path, profile: str, name: str) -> Path:
    return root / WIRE_DIR / profile / f"{name}.json"


def _validator(root: Path) -> jsonschema.Draft202012Validator:
    try:
        schema = load_json(root / SCHEMA_FILE)
    except (OSError, ValueError) as exc:
        raise VectorError(f"cannot read: {exc}", SCHEMA_FILE, None, None) from exc
    if not isinstance(schema, dict):
        raise VectorError("not a JSON Schema", SCHEMA_FILE, None, None)
    return jsonschema.Draft202012Validator(schema)


def load_recording(root: Path, path: Path,
                   validator: jsonschema.Draft202012Validator | None = None) -> Recording:
    """The recording in ``path``, a regular data file (VectorError naming the file
    when it is not one); ``validator``: the recordings' schema, read once by the caller."""
    rel = str(path.relative_to(root)) if path.is_relative_to(root) else str(path)
    try:
        doc = load_json(path)
    except (OSError, ValueError) as exc:
        raise VectorError(f"cannot read: {exc}", rel, None, None) from exc
    errors = sorted((validator or _validator(root)).iter_errors(doc), key=str)
    if errors:
        where = "/".join(str(p) for p in errors[0].absolute_path)
        raise VectorError(f"schema: {where or '(top)'}: {errors[0].message}", rel, None, None)
    if not isinstance(doc, dict):  # the schema asks for an object; an empty schema would not
        raise VectorError("not a recording (a JSON object)", rel, None, None)
    return Recording(path.stem, rel, doc)


def recordings(root: Path, profile: str) -> dict[str, Recording]:
    """Every recording of ``profile`` under ``root``, by name."""
    directory = root / WIRE_DIR / profile
    paths = sorted(directory.glob("*.json"))
    validator = _validator(root) if paths else None
    return {p.stem: load_recording(root, p, validator) for p in paths}
