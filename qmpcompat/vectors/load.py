"""Loading the vector set: vector files, the flag list and the known defects.

A file that fails to load is recorded in ``VectorSet.errors`` and the rest
still load, so one bad file never stops a run.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TypeVar

from qmpcompat import datafile
from qmpcompat.errors import VectorError
from qmpcompat.types import JSONObject
from qmpcompat.vectors.model import KnownDefect, Vector, parse_defect, parse_vector
from qmpcompat.vectors.notes import notes_for, resolve
from qmpcompat.vectors.pairs import PairVector, parse_pair
from qmpcompat.vectors.profiles import Profile, parse_profile
from qmpcompat.vectors.yamlfile import load_yaml

FLAGS_FILE = "flags.yaml"
DEFECTS_FILE = "known-defects.yaml"
VECTOR_SCHEMA = "vector-file.schema.json"
VECTOR_DIRS = ("migrate", "migrate-incoming")
PAIR_DIR = "cross-version"
PROFILE_DIR = "consumers"  # consumer profiles, one per file
PROFILE_SCHEMA = "consumer-profile.schema.json"
LEDGER_FILE = "inference-ledger.yaml"  # how far inferred claims held (qmpcompat.claims.ledger)
LEDGER_SCHEMA = "inference-ledger.schema.json"
_V = TypeVar("_V", Vector, PairVector)


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
    pairs: list[PairVector] = field(default_factory=list)
    profiles: list[Profile] = field(default_factory=list)

    def defects_for(self, vector_id: str) -> list[KnownDefect]:
        return [d for d in self.defects if d.vector == vector_id]

    def revision(self) -> str:
        """A digest of every vector file's bytes: two runs with the same digest
        ran the same vector set."""
        digest = hashlib.sha256()
        for path in sorted(self.files):
            digest.update(str(path.relative_to(self.root)).encode() + b"\0")
            try:
                digest.update(datafile.read_bytes(path))
            except OSError as exc:  # a refused file (a link, a FIFO): its name and why
                digest.update(f"({exc.strerror})".encode())
        return digest.hexdigest()[:16]


def vector_files(root: Path) -> list[Path]:
    """Every vector file: the two commands' directories, then the cross-version pairs
    (consumer profiles have their own schema: ``profile_files``)."""
    files: list[Path] = []
    for sub in (*VECTOR_DIRS, PAIR_DIR):
        files += sorted((root / sub).glob("*.yaml"))
    return files


def profile_files(root: Path) -> list[Path]:
    """Every consumer profile file (``consumers/*.yaml``)."""
    return sorted((root / PROFILE_DIR).glob("*.yaml"))


def load_data(path: Path, rel: str) -> object:
    """A data file as its parsers read it: parsed (``load_yaml``), each
    ``inferred-from`` list of note ids read as its text (``notes.resolve``)."""
    return resolve(load_yaml(path, rel), notes_for(path))


def load_profile_file(path: Path, rel: str) -> Profile:
    """The consumer profile of one file (VectorError if it does not parse)."""
    return parse_profile(load_data(path, rel), rel)


def is_pair_file(path: Path) -> bool:
    return path.parent.name == PAIR_DIR


def load_pair_file(path: Path, rel: str) -> tuple[list[PairVector], list[VectorError]]:
    """The pair vectors of one file, and the errors of the ones that did not parse."""
    return _load_items(path, rel, "pairs", "a cross-version file",
                       lambda raw, _data: parse_pair(raw, rel))


def _load_items(path: Path, rel: str, key: str, what: str,
                parse: Callable[[object, JSONObject], _V]) -> tuple[list[_V], list[VectorError]]:
    """The items under ``key`` of one file, parsed (``parse(item, file data)``), and
    the errors of the ones that did not parse."""
    data = load_data(path, rel)
    if not isinstance(data, dict) or not isinstance(data.get(key), list):
        raise VectorError(f"{what} is a mapping with a '{key}' list", rel, 1)
    items, errors = [], []
    for raw in data[key]:
        try:
            items.append(parse(raw, data))
        except VectorError as exc:
            errors.append(exc)
    return items, errors


def load_vector_file(path: Path, rel: str) -> tuple[list[Vector], list[VectorError]]:
    """The vectors of one file, and the errors of the ones that did not parse."""
    return _load_items(path, rel, "vectors", "a vector file",
                       lambda raw, data: parse_vector(raw, rel, data.get("command")))


def check_root(root: Path) -> None:
    """Raise VectorError (a usage error) unless ``root`` is a vector directory: it
    exists, has the vector file schema and at least one vector file."""
    if not root.is_dir():
        raise VectorError(f"vector directory {root} does not exist")
    if refused := datafile.refusal(root / VECTOR_SCHEMA):
        raise VectorError(f"{root / VECTOR_SCHEMA}: {refused}")
    if not (root / VECTOR_SCHEMA).is_file():
        raise VectorError(f"vector directory {root} has no {VECTOR_SCHEMA} (copy it from "
                          "qmpcompat's vectors/)")
    if not vector_files(root):
        raise VectorError(f"vector directory {root} holds no vector files (want "
                          f"{'/*.yaml, '.join(VECTOR_DIRS)}/*.yaml)")


def _flags(raw: object, shown: str) -> dict[str, str]:
    flags = raw.get("flags") if isinstance(raw, dict) else None
    if not isinstance(flags, dict):
        raise VectorError("flags.yaml is a mapping with a 'flags' mapping", shown, 1)
    return {str(k): str(v.get("description", "")) if isinstance(v, dict) else str(v)
            for k, v in flags.items()}


def _defects(vs: VectorSet, path: Path, shown: str) -> None:
    data = load_data(path, shown)
    items = data.get("defects") if isinstance(data, dict) else None
    if not isinstance(items, list):
        raise VectorError("known-defects.yaml is a mapping with a 'defects' list", shown, 1)
    for raw in items:
        try:
            vs.defects.append(parse_defect(raw, shown))
        except VectorError as exc:
            vs.errors.append(exc)


def _without_duplicates(vs: VectorSet) -> None:
    """An id used twice names no call: every copy is refused, each naming the others
    (vectors and pair vectors share one id space)."""
    where: dict[str, list[Vector | PairVector | Profile]] = {}
    items: list[Vector | PairVector | Profile] = [*vs.vectors, *vs.pairs, *vs.profiles]
    for item in items:
        where.setdefault(item.id, []).append(item)
    for vid, copies in sorted(where.items()):
        for item in copies if len(copies) > 1 else ():
            others = ", ".join(o.where for o in copies if o is not item)
            vs.errors.append(VectorError(f"duplicate id (ids are never reused): also at {others}",
                                         item.file, item.line, vid))
    vs.vectors = sorted((v for v in vs.vectors if len(where[v.id]) == 1), key=lambda v: v.id)
    vs.pairs = sorted((p for p in vs.pairs if len(where[p.id]) == 1), key=lambda p: p.id)
    vs.profiles = sorted((p for p in vs.profiles if len(where[p.id]) == 1), key=lambda p: p.id)


def load(root: Path | None = None) -> VectorSet:
    """Load every vector file under ``root`` (default: this checkout's vectors/).
    VectorError if ``root`` is no vector directory (see ``check_root``); a broken
    file or vector is recorded in ``errors`` and the rest still load."""
    root = root or default_root()
    check_root(root)
    vs = VectorSet(root)

    def rel(path: Path) -> str:
        return str(path.relative_to(root.parent)) if root.parent in path.parents else str(path)

    flags_path = root / FLAGS_FILE
    if flags_path.exists():
        vs.files.append(flags_path)
        try:
            vs.flags = _flags(load_yaml(flags_path, rel(flags_path)), rel(flags_path))
        except VectorError as exc:
            vs.errors.append(exc)
    for path in vector_files(root):
        vs.files.append(path)
        try:
            if is_pair_file(path):
                pairs, errors = load_pair_file(path, rel(path))
                vs.pairs += pairs
            else:
                vectors, errors = load_vector_file(path, rel(path))
                vs.vectors += vectors
        except VectorError as exc:
            vs.errors.append(exc)
            continue
        vs.errors += errors
    for path in profile_files(root):
        vs.files.append(path)
        try:
            vs.profiles.append(load_profile_file(path, rel(path)))
        except VectorError as exc:
            vs.errors.append(exc)
    defects_path = root / DEFECTS_FILE
    if defects_path.exists():
        vs.files.append(defects_path)
        try:
            _defects(vs, defects_path, rel(defects_path))
        except VectorError as exc:
            vs.errors.append(exc)
    _without_duplicates(vs)
    return vs
