"""``qmpcompat lint``: every rule a vector file must keep, each problem with
its file, line and vector id.

Rules: the file parses; it validates against vectors/vector-file.schema.json;
ids are unique, well-formed and not retired; every flag is defined in
flags.yaml; version ranges are well-formed and do not overlap; the file is in
canonical form; the safety rules hold; known defects name real vectors.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TypeVar

import jsonschema
from referencing import Registry, Resource

from qmpcompat import datafile
from qmpcompat.errors import VectorError
from qmpcompat.harness.features import SETTING_PROBES
from qmpcompat.types import JSONObject, Version
from qmpcompat.vectors.load import (
    DEFECTS_FILE,
    FLAGS_FILE,
    LEDGER_FILE,
    LEDGER_SCHEMA,
    PROFILE_SCHEMA,
    VECTOR_SCHEMA,
    VectorSet,
    is_pair_file,
    load,
    load_pair_file,
    load_profile_file,
    load_vector_file,
    profile_files,
    vector_files,
)
from qmpcompat.vectors.model import KnownDefect, Vector
from qmpcompat.vectors.notes import NOTES_FILE, NOTES_SCHEMA, notes_for, unknown_ids, used_ids
from qmpcompat.vectors.pairs import PairVector, case_vector
from qmpcompat.vectors.profilelint import profile_problems
from qmpcompat.vectors.safety import refusals
from qmpcompat.vectors.versions import VersionRange, parse_pair_label
from qmpcompat.vectors.yamlfile import comment_lines, dump_canonical, line_of, load_yaml

EXACT_VERSION = re.compile(r"\d+\.\d+\.\d+")
DEFECTS_SCHEMA = "known-defects.schema.json"
RETIRED_FILE = "retired-ids.yaml"


@dataclass(frozen=True)
class Problem:
    file: str
    line: int | None
    vector_id: str | None
    message: str

    def __str__(self) -> str:
        where = self.file + (f":{self.line}" if self.line else "")
        return f"{where}: {self.vector_id + ': ' if self.vector_id else ''}{self.message}"


def _from_error(err: VectorError) -> Problem:
    return Problem(err.file, err.line, err.vector_id, err.message)


def _node_at(data: object, path: list[str | int]) -> tuple[object, str | None]:
    """The deepest mapping on ``path`` that has a line, and the vector id above it."""
    node, best, vid = data, data, None
    for step in path:
        inside = node if isinstance(node, dict) else dict(enumerate(node)) if isinstance(node, list) else {}
        if step not in inside:
            break
        node = inside[step]
        if isinstance(node, dict):
            best = node
            if isinstance(node.get("id"), str) and vid is None:
                vid = node["id"]
    return best, vid


def _notes_problems(root: Path, rel: Callable[[Path], str]) -> list[Problem]:
    """The notes file against its schema, every note id a claim names defined, and
    every note named by some claim."""
    path = root / NOTES_FILE
    try:
        notes = notes_for(root / VECTOR_SCHEMA)
        out = schema_problems(load_yaml(path), _json_file(root / NOTES_SCHEMA), rel(path)) \
            if path.exists() else []
    except VectorError as exc:
        return [_from_error(exc)]
    used: set[str] = set()
    for data_file in [*vector_files(root), *profile_files(root), root / DEFECTS_FILE]:
        try:
            data = load_yaml(data_file)
        except (VectorError, OSError):
            continue  # reported where the file is loaded
        used |= used_ids(data)
        out += [Problem(rel(data_file), None, None, f"inferred-from names note {i!r}, which "
                        f"{NOTES_FILE} does not define") for i in unknown_ids(data, notes)]
    out += [Problem(rel(path), None, None, f"note {i!r} is named by no claim")
            for i in sorted(set(notes) - used)]
    return out


_MEMO_MAX = 4096  # texts (and contents) each memo keeps; past it, it starts afresh
_K = TypeVar("_K")
_T = TypeVar("_T")


def _kept(memo: dict[_K, _T], key: _K, value: _T) -> _T:
    """``value``, kept in ``memo`` under ``key`` (a full memo starts afresh)."""
    if len(memo) >= _MEMO_MAX:
        memo.clear()
    memo[key] = value
    return value


# The schema errors of a content already checked in this process, by a digest of
# the schemas' JSON and the data's ``repr`` (which keeps a date apart from its
# string): most lints in one process are of copies of the same files.
_CHECKED: dict[bytes, list[tuple[list[str | int], str]]] = {}


def schema_problems(data: object, schema: JSONObject, rel: str,
                    also: tuple[JSONObject, ...] = ()) -> list[Problem]:
    """``data`` against ``schema``; ``also``: schemas it refers to by their ``$id``
    (known-defects.schema.json takes the observed/inferred rule from the vector
    file's). Each line is read from ``data`` itself."""
    key = hashlib.sha256(f"{json.dumps([schema, *also], sort_keys=True)}\0{data!r}".encode()).digest()
    errors = _CHECKED.get(key)
    if errors is None:
        registry: Registry[bool | Mapping[str, object]] = Registry().with_resources(
            (str(s["$id"]), Resource.from_contents(s)) for s in also if "$id" in s)
        validator = jsonschema.Draft202012Validator(schema, registry=registry)
        errors = _kept(_CHECKED, key, [(list(err.path), err.message) for err in sorted(
            validator.iter_errors(data), key=lambda e: list(map(str, e.path)))])
    out = []
    for path, message in errors:
        node, vid = _node_at(data, path)
        where = "/".join(map(str, path)) or "(top)"
        out.append(Problem(rel, line_of(node), vid, f"schema: {where}: {message}"))
    return out


def canonical_text(path: Path, data: object) -> str:
    header = []
    for line in datafile.read_text(path).splitlines():
        if not line.startswith("#"):
            break
        header.append(line)
    return "".join(h + "\n" for h in header) + dump_canonical(data)


def _id_and_flags(vid: str, used: tuple[str, ...], flags: dict[str, str],
                  retired: set[str]) -> list[str]:
    """A retired id, and flags not defined in flags.yaml."""
    out = ["id is retired (ids are never reused): pick a new one"] if vid in retired else []
    return out + [f"flag {flag!r} is not defined in {FLAGS_FILE}" for flag in used
                  if flag not in flags]


def vector_problems(vec: Vector, flags: dict[str, str], retired: set[str],
                    allow_exec: bool) -> list[str]:
    """What is wrong with one parsed vector (beyond the schema)."""
    out = _id_and_flags(vec.id, vec.flags, flags, retired)
    for i, a in enumerate(vec.expect):
        out += [f"version ranges {a.versions} and {b.versions} overlap"
                for b in vec.expect[i + 1:] if a.versions.overlaps(b.versions)]
    out += observed_problems(vec)
    out += undeclared_features(vec)
    return out + refusals(vec, allow_exec)


def undeclared_features(vec: Vector) -> list[str]:
    """A probed build feature the vector turns on (the ``multifd`` capability, a
    cpr migration ``mode``) must be in its ``requires.features``, so that a build
    without it skips the vector instead of failing it."""
    used = ["multifd"] if vec.capabilities.get("multifd") else []
    mode = vec.parameters.get("mode")
    if isinstance(mode, str) and mode in SETTING_PROBES:
        used.append(mode)
    return [f"requires.features must name {name!r}: the vector turns it on, and a build "
            "without it must skip the vector" for name in used if name not in vec.features]


def _json_file(path: Path) -> JSONObject:
    """A JSON Schema file of the vector set; VectorError if it is missing or broken."""
    try:
        data = json.loads(datafile.read_text(path))
    except OSError as exc:
        raise VectorError(f"cannot read: {exc.strerror}", str(path)) from exc
    except ValueError as exc:
        raise VectorError(f"not JSON: {exc}", str(path)) from exc
    if not isinstance(data, dict):
        raise VectorError("a JSON Schema must be an object", str(path))
    return data


def _retired(root: Path, rel: Callable[[Path], str]) -> tuple[set[str], list[Problem]]:
    path = root / RETIRED_FILE
    if not path.exists():
        return set(), []
    try:
        data = load_yaml(path, rel(path))
    except VectorError as exc:
        return set(), [_from_error(exc)]
    ids = data.get("retired") if isinstance(data, dict) else None
    if not isinstance(ids, list):
        return set(), [Problem(rel(path), 1, None, "retired-ids.yaml is a mapping with a "
                               "'retired' list")]
    return {str(i) for i in ids}, []


# The canonical form of each text the lint has checked in this process, by text (a
# pure function of it: ``data`` is its parse): copies of one file are checked once.
_CANONICAL: dict[str, str] = {}


def _canonical(path: Path, data: object, shown: str, fix: bool) -> list[Problem]:
    """The canonical-form problem of one file (``data``: its parse, as ``load_yaml``
    gives it); with ``fix`` the file is rewritten, unless it holds comments the
    canonical form would lose (they are never dropped)."""
    text = datafile.read_text(path)
    canonical = _CANONICAL.get(text)
    if canonical is None:
        canonical = _kept(_CANONICAL, text, canonical_text(path, data))
    if text == canonical:
        return []
    comments = comment_lines(text)
    if comments:
        lines = ", ".join(map(str, comments))
        return [Problem(shown, comments[0], None,
                        f"comments at line {lines} are outside the file's leading comment "
                        "lines, which is all the canonical form keeps: move them there or into a "
                        "description" + (" (not rewritten)" if fix else ""))]
    if fix:
        path.write_text(canonical)
        return []
    return [Problem(shown, None, None, "not in canonical form (run `qmpcompat lint --fix`)")]


def _rests_on(claim: str, observed_on: tuple[str, ...], inferred_from: str | None) -> list[str]:
    if observed_on or inferred_from:
        return []
    return [f"{claim} says neither where it was observed (observed-on) nor what it is inferred "
            "from (inferred-from)"]


def _versions_inside(observed_on: tuple[str, ...], versions: VersionRange) -> list[str]:
    """Each ``observed-on`` entry is a version MAJOR.MINOR.MICRO inside ``versions``."""
    out = []
    for text in observed_on:
        if not EXACT_VERSION.fullmatch(str(text)):
            out.append(f"observed-on {text!r} is not a version MAJOR.MINOR.MICRO")
        elif Version.parse(text) not in versions:
            out.append(f"observed-on {text} is outside the range {versions}")
    return out


def _pairs_inside(observed_on: tuple[str, ...], source: VersionRange,
                  destination: VersionRange) -> list[str]:
    """Each ``observed-on`` entry is a pair SRC->DST inside both ranges."""
    out = []
    for text in observed_on:
        pair = parse_pair_label(str(text))
        if pair is None:
            out.append(f"observed-on {text!r} is not a pair MAJOR.MINOR.MICRO->MAJOR.MINOR.MICRO")
        elif pair[0] not in source or pair[1] not in destination:
            out.append(f"observed-on {text} is outside the sources {source} or the destinations "
                       f"{destination}")
    return out


def observed_problems(vec: Vector) -> list[str]:
    """Every expectation says what it rests on; an ``observed-on`` version lies in
    its expectation's range. (A known defect on an observed build is no lint
    problem: the run says whether the defect still shows.)"""
    out = []
    for exp in vec.expect:
        out += _rests_on(f"the expectation for {exp.versions}", exp.observed_on, exp.inferred_from)
        out += _versions_inside(exp.observed_on, exp.versions)
    return out


def defect_problems(defect: KnownDefect) -> list[str]:
    """A known defect says what it rests on, as an expectation does; its ``observed-on``
    entries lie in its range (a pair vector's defect: SRC->DST pairs in both ranges)."""
    out = _rests_on("the defect", defect.observed_on, defect.inferred_from)
    if defect.destination is not None:
        return out + _pairs_inside(defect.observed_on, defect.versions, defect.destination)
    return out + _versions_inside(defect.observed_on, defect.versions)


def pair_problems(pv: PairVector, flags: dict[str, str], retired: set[str],
                  allow_exec: bool) -> list[str]:
    """What is wrong with one parsed pair vector (beyond the schema): as for a vector,
    and the cell of every form must pass the safety rules and limits."""
    out = _id_and_flags(pv.id, pv.flags, flags, retired)
    for i, a in enumerate(pv.expect):
        out += [f"expectations for sources {a.source}, destinations {b.destination} overlap"
                for b in pv.expect[i + 1:] if a.overlaps(b)]
        claim = f"the expectation for sources {a.source}, destinations {a.destination}"
        out += _rests_on(claim, a.observed_on, a.inferred_from)
        out += _pairs_inside(a.observed_on, a.source, a.destination)
    for form in pv.forms:
        vec = case_vector(pv, form)
        out += [f"{form}: {msg}" for msg in refusals(vec, allow_exec) + undeclared_features(vec)]
    return out


def _file_problems(path: Path, shown: str, flags: dict[str, str], retired: set[str],
                   allow_exec: bool) -> list[Problem]:
    """The problems of the vectors (or pair vectors) of one file that parsed."""
    if is_pair_file(path):
        pairs, _ = load_pair_file(path, shown)
        return [Problem(pv.file, pv.line, pv.id, msg) for pv in pairs
                for msg in pair_problems(pv, flags, retired, allow_exec)]
    vectors, _ = load_vector_file(path, shown)
    return [Problem(vec.file, vec.line, vec.id, msg) for vec in vectors
            for msg in vector_problems(vec, flags, retired, allow_exec)]


def _profiles_problems(root: Path, rel: Callable[[Path], str], vector_schema: JSONObject,
                       retired: set[str], allow_exec: bool, fix: bool) -> list[Problem]:
    """The problems of every consumer profile file: its schema (which takes the
    observed/inferred rule from the vector file's), canonical form and rules."""
    paths = profile_files(root)
    if not paths:
        return []
    schema = _json_file(root / PROFILE_SCHEMA)
    out: list[Problem] = []
    for path in paths:
        try:
            data = load_yaml(path)
        except VectorError:
            continue  # already reported by load()
        out += schema_problems(data, schema, rel(path), (vector_schema,))
        out += _canonical(path, data, rel(path), fix)
        try:
            profile = load_profile_file(path, rel(path))
        except VectorError:
            continue
        out += [Problem(profile.file, profile.line, profile.id, msg)
                for msg in profile_problems(profile, retired, allow_exec, root)]
    return out


def lint(root: Path, fix: bool = False, allow_exec: bool = False,
         loaded: VectorSet | None = None) -> list[Problem]:
    """Every problem of the vector set under ``root`` (with ``fix``, rewrite files
    into canonical form first). ``loaded`` is that set, if the caller has it."""
    problems: list[Problem] = []
    base = root.parent

    def rel(path: Path) -> str:
        return str(path.relative_to(base))

    vs = loaded if loaded is not None and not fix else load(root)
    schema = _json_file(root / VECTOR_SCHEMA)
    retired, retired_problems = _retired(root, rel)
    problems += retired_problems + [_from_error(e) for e in vs.errors]
    for path in vector_files(root):
        try:
            data = load_yaml(path)
        except VectorError:
            continue  # already reported by load()
        problems += schema_problems(data, schema, rel(path))
        problems += _canonical(path, data, rel(path), fix)
        try:
            problems += _file_problems(path, rel(path), vs.flags, retired, allow_exec)
        except VectorError:
            continue
    problems += _profiles_problems(root, rel, schema, retired, allow_exec, fix)
    problems += _notes_problems(root, rel)
    ledger = root / LEDGER_FILE
    if ledger.exists():
        try:
            problems += schema_problems(load_yaml(ledger), _json_file(root / LEDGER_SCHEMA),
                                        rel(ledger))
            problems += _canonical(ledger, load_yaml(ledger), rel(ledger), fix)
        except VectorError as exc:
            problems.append(_from_error(exc))
    defects = root / DEFECTS_FILE
    if defects.exists():
        try:
            data = load_yaml(defects)
            problems += schema_problems(data, _json_file(root / DEFECTS_SCHEMA), rel(defects),
                                        (schema,))
        except VectorError as exc:
            problems.append(_from_error(exc))
        ids = ({v.id for v in vs.vectors} | {p.id for p in vs.pairs} | {p.id for p in vs.profiles}
               | {e.vector_id for e in vs.errors if e.vector_id})
        seen: set[str] = set()
        for d in vs.defects:
            if d.vector not in ids:
                problems.append(Problem(d.file, d.line, d.id, f"names unknown vector {d.vector}"))
            if d.id in seen:
                problems.append(Problem(d.file, d.line, d.id, "duplicate known-defect id"))
            problems += [Problem(d.file, d.line, d.id, msg) for msg in defect_problems(d)]
            seen.add(d.id)
    return sorted(set(problems), key=lambda p: (p.file, p.line or 0, p.message))
