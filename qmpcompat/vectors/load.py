"""Loading the vector set: vector files, the flag list and the known defects.

A file that fails to load is recorded in ``VectorSet.errors`` and the rest
still load, so one bad file never stops a run.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from pathlib import Path

from qmpcompat.errors import VectorError
from qmpcompat.vectors.model import KnownDefect, Vector, parse_defect, parse_vector
from qmpcompat.vectors.yamlfile import load_yaml

FLAGS_FILE = "flags.yaml"
DEFECTS_FILE = "known-defects.yaml"
VECTOR_DIRS = ("migrate", "migrate-incoming")


def default_root() -> Path:
    """The ``vectors/`` directory of this checkout."""
    return Path(__file__).resolve().parents[2] / "vectors"


@dataclass
class VectorSet:
    root: Path
    vectors: list[Vector] = field(default_factory=list)
    flags: dict[str, str] = field(default_factory=dict)
    defects: list[KnownDefect] = field(default_factory=list)
    errors: list[VectorError] = field(default_factory=list)
    files: list[Path] = field(default_factory=list)

    def defects_for(self, vector_id: str) -> list[KnownDefect]:
        return [d for d in self.defects if d.vector == vector_id]

    def revision(self) -> str:
        """A digest of every vector file's bytes: two runs with the same digest
        ran the same vector set."""
        digest = hashlib.sha256()
        for path in sorted(self.files):
            digest.update(str(path.relative_to(self.root)).encode() + b"\0")
            digest.update(path.read_bytes())
        return digest.hexdigest()[:16]


def vector_files(root: Path) -> list[Path]:
    files: list[Path] = []
    for sub in VECTOR_DIRS:
        files += sorted((root / sub).glob("*.yaml"))
    return files


def load_vector_file(path: Path, rel: str) -> tuple[list[Vector], list[VectorError]]:
    """The vectors of one file, and the errors of the ones that did not parse."""
    data = load_yaml(path, rel)
    if not isinstance(data, dict) or not isinstance(data.get("vectors"), list):
        raise VectorError("a vector file is a mapping with a 'vectors' list", rel, 1)
    vectors, errors = [], []
    for raw in data["vectors"]:
        try:
            vectors.append(parse_vector(raw, rel, data.get("command")))
        except VectorError as exc:
            errors.append(exc)
    return vectors, errors


def load(root: Path | None = None) -> VectorSet:
    """Load every vector file under ``root`` (default: this checkout's vectors/)."""
    root = root or default_root()
    vs = VectorSet(root)

    def rel(path: Path) -> str:
        return str(path.relative_to(root.parent)) if root.parent in path.parents else str(path)

    flags_path = root / FLAGS_FILE
    try:
        raw = load_yaml(flags_path, rel(flags_path)) if flags_path.exists() else {}
        vs.flags = {str(k): str((v or {}).get("description", "")) if isinstance(v, dict) else str(v)
                    for k, v in (raw.get("flags") or {}).items()}
        vs.files.append(flags_path)
    except VectorError as exc:
        vs.errors.append(exc)
    for path in vector_files(root):
        vs.files.append(path)
        try:
            vectors, errors = load_vector_file(path, rel(path))
        except VectorError as exc:
            vs.errors.append(exc)
            continue
        vs.vectors += vectors
        vs.errors += errors
    defects_path = root / DEFECTS_FILE
    if defects_path.exists():
        vs.files.append(defects_path)
        try:
            data = load_yaml(defects_path, rel(defects_path)) or {}
            for raw in data.get("defects") or []:
                try:
                    vs.defects.append(parse_defect(raw, rel(defects_path)))
                except VectorError as exc:
                    vs.errors.append(exc)
        except VectorError as exc:
            vs.errors.append(exc)
    seen: set[str] = set()
    unique = []
    for vec in vs.vectors:
        if vec.id in seen:
            vs.errors.append(VectorError("duplicate id (ids are never reused)", vec.file, vec.line,
                                         vec.id))
            continue
        seen.add(vec.id)
        unique.append(vec)
    vs.vectors = sorted(unique, key=lambda v: v.id)
    return vs
