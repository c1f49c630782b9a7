"""What a vector says, as typed objects built from the YAML data.

The data format is documented in vectors/README.md and checked by
vectors/vector-file.schema.json; this module is the small reader of it.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from qmpcompat.errors import VectorError
from qmpcompat.vectors.versions import RangeError, Version, VersionRange
from qmpcompat.vectors.yamlfile import line_of

COMMANDS = ("migrate", "migrate-incoming")
PEER_OF = {"migrate": "migrate-incoming", "migrate-incoming": "migrate"}
FINAL_STATUSES = ("completed", "failed", "cancelled")


@dataclass(frozen=True)
class Expectation:
    """What a QEMU in ``versions`` must do with the vector."""

    versions: VersionRange
    result: str  # accept | reject
    error_class: str | None = None
    desc: str | None = None  # exact text
    desc_pattern: str | None = None  # a regular expression (re.fullmatch); ``why`` says why
    why: str | None = None
    migration: str | None = None  # accept: final status of the migration (both sides)
    migration_error: str | None = None  # accept + failed: regex the error-desc must match


FD_KINDS = ("listen", "connect", "pair")


@dataclass(frozen=True)
class FdSpec:
    """An fd the runner makes and passes with ``getfd`` before the command: a unix
    socket listening or connected at ``path``, or (``pair``) one end of a socket
    pair whose other end is the other side's fd of the same name."""

    name: str
    kind: str  # listen | connect | pair
    path: str = ""


@dataclass(frozen=True)
class Peer:
    """The other side of an accepted migration."""

    command: str
    arguments: dict[str, Any] | None  # None: the vector's own arguments
    when: str  # before | after the vector's command
    fds: tuple[FdSpec, ...] = ()


@dataclass(frozen=True)
class Vector:
    id: str
    description: str
    command: str
    arguments: dict[str, Any]
    flags: tuple[str, ...]
    expect: tuple[Expectation, ...]
    file: str
    line: int | None = None
    schema: tuple[str, ...] = ()  # capability queries that must hold, else skip
    machine: str = "none"
    incoming: str | None = None  # "defer" to start the subject with -incoming defer
    fds: tuple[FdSpec, ...] = ()
    peer: Peer | None = None
    capabilities: dict[str, bool] = field(default_factory=dict)  # set on both sides first
    parameters: dict[str, Any] = field(default_factory=dict)
    features: tuple[str, ...] = ()  # build features it needs (qmpcompat.harness.features)

    def needs(self) -> tuple[str, ...]:
        """The build features this vector needs: its declared ones, and its
        machine type when that is not ``none``."""
        machine = () if self.machine == "none" else (f"machine:{self.machine}",)
        return (*self.features, *machine)

    def expectation_for(self, version: Version) -> Expectation | None:
        for exp in self.expect:
            if version in exp.versions:
                return exp
        return None

    @property
    def where(self) -> str:
        return f"{self.file}:{self.line}" if self.line else self.file


def _err(msg: str, file: str, node: object, vid: str | None) -> VectorError:
    return VectorError(msg, file, line_of(node), vid)


def _fds(raw: Any, file: str, vid: str) -> tuple[FdSpec, ...]:
    out = []
    for item in raw or []:
        kind = item.get("kind") if isinstance(item, dict) else None
        keys = {"name", "kind"} | ({"path"} if kind != "pair" else set())
        if not isinstance(item, dict) or set(item) != keys:
            raise _err("each fd needs exactly name and kind (listen|connect, with a path; or "
                       "pair, without one)", file, item, vid)
        if kind not in FD_KINDS:
            raise _err(f"fd kind {kind!r} is not one of {', '.join(FD_KINDS)}", file, item, vid)
        out.append(FdSpec(str(item["name"]), kind, str(item.get("path", ""))))
    return tuple(out)


def parse_expectation(raw: Any, file: str, vid: str | None,
                      results: tuple[str, ...] = ("accept", "reject")) -> Expectation:
    if not isinstance(raw, dict):
        raise _err("an expectation must be a mapping", file, raw, vid)
    try:
        versions = VersionRange.parse(raw.get("versions"))
    except RangeError as exc:
        raise _err(str(exc), file, raw, vid) from exc
    result = raw.get("result")
    if result not in results:
        raise _err(f"result must be one of {', '.join(results)}, not {result!r}", file, raw, vid)
    exp = Expectation(versions=versions, result=result, error_class=raw.get("error-class"),
                      desc=raw.get("desc"), desc_pattern=raw.get("desc-pattern"),
                      why=raw.get("why"), migration=raw.get("migration"),
                      migration_error=raw.get("migration-error"))
    if result == "reject" and (not exp.error_class or not (exp.desc or exp.desc_pattern)):
        raise _err("a reject needs error-class and desc (or desc-pattern with why)", file, raw,
                   vid)
    if exp.desc_pattern and not exp.why:
        raise _err("desc-pattern needs a why: say why the text is not exact", file, raw, vid)
    if exp.migration and exp.migration not in FINAL_STATUSES:
        raise _err(f"migration must be one of {', '.join(FINAL_STATUSES)}", file, raw, vid)
    return exp


def parse_vector(raw: Any, file: str, default_command: str | None) -> Vector:
    """Build a Vector from its YAML mapping; VectorError names file, line and id."""
    if not isinstance(raw, dict):
        raise _err("a vector must be a mapping", file, raw, None)
    vid = raw.get("id")
    if not isinstance(vid, str) or not vid:
        raise _err("a vector needs an id", file, raw, None)
    command = raw.get("command", default_command)
    if command not in COMMANDS:
        raise _err(f"command must be one of {', '.join(COMMANDS)}, not {command!r}", file, raw,
                   vid)
    args = raw.get("arguments", {})
    if not isinstance(args, dict):
        raise _err("arguments must be a mapping", file, raw, vid)
    expect = raw.get("expect")
    if not isinstance(expect, list) or not expect:
        raise _err("expect must be a non-empty list", file, raw, vid)
    req = raw.get("requires") or {}
    peer = None
    if "peer" in raw:
        praw = raw["peer"] or {}
        peer = Peer(command=praw.get("command", PEER_OF[command]),
                    arguments=praw.get("arguments"),
                    when=praw.get("when", "before" if command == "migrate" else "after"),
                    fds=_fds(praw.get("fds"), file, vid))
    return Vector(
        id=vid, description=str(raw.get("description", "")), command=command, arguments=args,
        flags=tuple(raw.get("flags") or ()),
        expect=tuple(parse_expectation(e, file, vid) for e in expect), file=file,
        line=line_of(raw), schema=tuple(req.get("schema") or ()),
        machine=req.get("machine", "none"),
        incoming=req.get("incoming", "defer" if command == "migrate-incoming" else None),
        fds=_fds(req.get("fds"), file, vid), peer=peer,
        capabilities=dict(req.get("capabilities") or {}),
        parameters=dict(req.get("parameters") or {}),
        features=tuple(req.get("features") or ()))


@dataclass(frozen=True)
class KnownDefect:
    """A recorded finding: in ``versions``, vector ``vector`` does ``observed`` instead."""

    id: str
    vector: str
    versions: VersionRange
    summary: str
    observed: Expectation
    evidence: str
    file: str
    line: int | None = None
    review_by: str = ""  # the release after which the defect must be looked at again


def parse_defect(raw: Any, file: str) -> KnownDefect:
    if not isinstance(raw, dict) or not raw.get("id") or not raw.get("vector"):
        raise _err("a known defect needs id and vector", file, raw, None)
    did = str(raw["id"])
    for key in ("summary", "evidence", "observed"):
        if not raw.get(key):
            raise _err(f"a known defect needs {key}", file, raw, did)
    try:
        versions = VersionRange.parse(raw.get("versions"))
    except RangeError as exc:
        raise _err(str(exc), file, raw, did) from exc
    observed = parse_expectation({**raw["observed"], "versions": raw.get("versions")}, file, did,
                                 ("accept", "reject", "crash", "hang"))
    return KnownDefect(did, str(raw["vector"]), versions, str(raw["summary"]), observed,
                       str(raw["evidence"]), file, line_of(raw), str(raw.get("review-by") or ""))
