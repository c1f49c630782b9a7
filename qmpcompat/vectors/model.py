"""What a vector says, as typed objects built from the YAML data.

The data format is documented in vectors/README.md and checked by
vectors/vector-file.schema.json; this module is the small reader of it.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace

from qmpcompat.errors import VectorError
from qmpcompat.guest.spec import GuestSpec, GuestSpecError, parse_guest
from qmpcompat.types import JSONObject, Version
from qmpcompat.vectors import pattern
from qmpcompat.vectors.versions import RangeError, VersionRange, pair_label
from qmpcompat.vectors.yamlfile import NonJson, line_of

COMMANDS = ("migrate", "migrate-incoming")
PEER_OF = {"migrate": "migrate-incoming", "migrate-incoming": "migrate"}
FINAL_STATUSES = ("completed", "failed", "cancelled")
# Where a migration waits for the client by design, not a hang: paused before the
# switchover (capability pause-before-switchover, until migrate-continue), a
# paused postcopy (migrate-pause or a broken connection, until migrate-recover),
# and COLO (capability x-colo: after the first checkpoint the source stays in
# colo, checkpointing with its secondary, until a failover, x-colo-lost-heartbeat).
WAITING_STATUSES = ("pre-switchover", "postcopy-paused", "colo")
MAX_CANCEL_AFTER = 30.0  # requires.cancel-after: seconds, the runner's migration timeout at most


@dataclass(frozen=True)
class Expectation:
    """What a QEMU in ``versions`` must do with the vector."""

    versions: VersionRange
    result: str  # accept | reject
    error_class: str | None = None
    desc: str | None = None  # exact text
    desc_pattern: str | None = None  # RE2 regex of the whole text (pattern.py); ``why`` says why
    why: str | None = None
    migration: str | None = None  # accept: final status of the migration (both sides)
    migration_error: str | None = None  # accept + failed: regex the error-desc must match
    observed_on: tuple[str, ...] = ()  # the QEMU versions real binaries were seen doing this
    inferred_from: str | None = None  # what a claim on any other version rests on
    step: str | None = None  # a consumer profile's refusal: the step QEMU refused

    def observed(self, version: Version) -> bool:
        """True when a real binary of ``version`` was seen doing what this says."""
        return ".".join(map(str, version)) in self.observed_on


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
    arguments: JSONObject | None  # None: the vector's own arguments
    when: str  # before | after the vector's command
    fds: tuple[FdSpec, ...] = ()


@dataclass(frozen=True)
class Vector:
    id: str
    description: str
    command: str
    arguments: JSONObject
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
    parameters: JSONObject = field(default_factory=dict)
    features: tuple[str, ...] = ()  # build features it needs (qmpcompat.harness.features)

    guest: GuestSpec | None = None  # the real guest it migrates (every vector with a peer)
    postcopy: bool = False  # switch the migration to postcopy once it is active
    # migrate_cancel a migration still running this many seconds after the command;
    # the cancel then has as long again to end it
    cancel_after: float | None = None

    def needs(self) -> tuple[str, ...]:
        """The build features this vector needs: its declared ones, its machine
        type when that is not ``none``, and its guest's machine family (an x86 one)."""
        machine = () if self.machine == "none" else (f"machine:{self.machine}",)
        family = (f"machine:{self.guest.machine}",) if self.guest is not None else ()
        return (*self.features, *machine, *family)

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


def _check_json(raw: object, file: str, vid: str | None) -> None:
    """Refuse a value JSON cannot hold (a YAML date, binary, ...) anywhere in ``raw``."""
    todo = [raw]
    while todo:
        node = todo.pop()
        if isinstance(node, NonJson):
            raise VectorError(f"{node}: quote it, or write it as JSON data", file, node.line, vid)
        if isinstance(node, dict):
            todo += node.values()
        elif isinstance(node, list):
            todo += node


def _mapping(raw: object, what: str, file: str, node: object, vid: str | None) -> JSONObject:
    if raw is None:
        return {}
    if not isinstance(raw, dict):
        raise _err(f"{what} must be a mapping, not {type(raw).__name__}", file, node, vid)
    return raw


def _words(raw: object, what: str, file: str, node: object, vid: str | None) -> tuple[str, ...]:
    if raw is None:
        return ()
    if not isinstance(raw, list) or not all(isinstance(w, str) for w in raw):
        raise _err(f"{what} must be a list of strings", file, node, vid)
    return tuple(raw)


def _text(raw: JSONObject, key: str, file: str, vid: str | None, regex: bool = False) -> str | None:
    value = raw.get(key)
    if value is not None and not isinstance(value, str):
        raise _err(f"{key} must be a string, not {type(value).__name__}", file, raw, vid)
    if regex and value is not None:
        problem = pattern.check(value)
        if problem:
            raise _err(f"{key} is not a regular expression RE2 takes: {problem}", file, raw, vid)
    return None if value is None else str(value)


def _one_of(value: object, allowed: tuple[str, ...], what: str, file: str, node: object,
            vid: str | None) -> str:
    if value not in allowed:
        raise _err(f"{what} must be one of {', '.join(allowed)}, not {value!r}", file, node, vid)
    return str(value)


def _fds(raw: object, file: str, vid: str, node: object) -> tuple[FdSpec, ...]:
    if raw is not None and not isinstance(raw, list):
        raise _err("fds must be a list", file, node, vid)
    out = []
    for item in raw or []:
        kind = item.get("kind") if isinstance(item, dict) else None
        keys = {"name", "kind"} | ({"path"} if kind != "pair" else set())
        if not isinstance(item, dict) or set(item) != keys:
            raise _err("each fd needs exactly name and kind (listen|connect, with a path; or "
                       "pair, without one)", file, item, vid)
        if kind not in FD_KINDS:
            raise _err(f"fd kind {kind!r} is not one of {', '.join(FD_KINDS)}", file, item, vid)
        if not isinstance(item["name"], str) or not isinstance(item.get("path", ""), str):
            raise _err("an fd's name and path must be strings", file, item, vid)
        out.append(FdSpec(item["name"], kind, item.get("path", "")))
    return tuple(out)


def parse_expectation(raw: object, file: str, vid: str | None,
                      results: tuple[str, ...] = ("accept", "reject")) -> Expectation:
    if not isinstance(raw, dict):
        raise _err("an expectation must be a mapping", file, raw, vid)
    versions = _versions(raw, file, vid)
    result = _one_of(raw.get("result"), results, "result", file, raw, vid)
    exp = Expectation(versions=versions, result=result,
                      error_class=_text(raw, "error-class", file, vid),
                      desc=_text(raw, "desc", file, vid),
                      desc_pattern=_text(raw, "desc-pattern", file, vid, regex=True),
                      why=_text(raw, "why", file, vid), migration=_text(raw, "migration", file, vid),
                      migration_error=_text(raw, "migration-error", file, vid, regex=True),
                      observed_on=_words(raw.get("observed-on"), "observed-on", file, raw, vid),
                      inferred_from=_text(raw, "inferred-from", file, vid),
                      step=_text(raw, "step", file, vid))
    if result == "reject" and (not exp.error_class or not (exp.desc or exp.desc_pattern)):
        raise _err("a reject needs error-class and desc (or desc-pattern with why)", file, raw,
                   vid)
    if exp.desc_pattern and not exp.why:
        raise _err("desc-pattern needs a why: say why the text is not exact", file, raw, vid)
    if exp.migration and exp.migration not in FINAL_STATUSES:
        raise _err(f"migration must be one of {', '.join(FINAL_STATUSES)}", file, raw, vid)
    return exp


def _versions(raw: JSONObject, file: str, vid: str | None) -> VersionRange:
    value = raw.get("versions")
    if value is not None and not isinstance(value, str):
        raise _err(f"versions must be a string such as '>=10.0', not {value!r}", file, raw, vid)
    try:
        return VersionRange.parse(value)
    except RangeError as exc:
        raise _err(str(exc), file, raw, vid) from exc


def _peer(raw: JSONObject, command: str, file: str, vid: str) -> Peer | None:
    if "peer" not in raw:
        return None
    praw = _mapping(raw["peer"], "peer", file, raw, vid)
    arguments = praw.get("arguments")
    if arguments is not None and not isinstance(arguments, dict):
        raise _err("peer arguments must be a mapping", file, praw or raw, vid)
    return Peer(command=_one_of(praw.get("command", PEER_OF[command]), COMMANDS, "peer command",
                                file, praw or raw, vid),
                arguments=arguments,
                when=_one_of(praw.get("when", "before" if command == "migrate" else "after"),
                             ("before", "after"), "peer when", file, praw or raw, vid),
                fds=_fds(praw.get("fds"), file, vid, praw or raw))


def parse_vector(raw: object, file: str, default_command: object) -> Vector:
    """Build a Vector from its YAML mapping; VectorError names file, line and id.
    Every field is checked for its shape, so no malformed vector gets further."""
    if not isinstance(raw, dict):
        raise _err("a vector must be a mapping", file, raw, None)
    vid = raw.get("id")
    if not isinstance(vid, str) or not vid:
        raise _err("a vector needs an id", file, raw, None)
    _check_json(raw, file, vid)
    command = _one_of(raw.get("command", default_command), COMMANDS, "command", file, raw, vid)
    args = raw.get("arguments", {})
    if not isinstance(args, dict):
        raise _err("arguments must be a mapping", file, raw, vid)
    expect = raw.get("expect")
    if not isinstance(expect, list) or not expect:
        raise _err("expect must be a non-empty list", file, raw, vid)
    req = _mapping(raw.get("requires"), "requires", file, raw, vid)
    caps = _mapping(req.get("capabilities"), "requires/capabilities", file, req, vid)
    if not all(isinstance(v, bool) for v in caps.values()):
        raise _err("requires/capabilities maps each capability to true or false", file, req, vid)
    machine = req.get("machine", "none")
    if not isinstance(machine, str):
        raise _err("requires/machine must be a string", file, req, vid)
    incoming = req.get("incoming", "defer" if command == "migrate-incoming" else None)
    if incoming is not None:
        incoming = _one_of(incoming, ("defer", "none"), "requires/incoming", file, req, vid)
    description = raw.get("description", "")
    if not isinstance(description, str):
        raise _err("description must be a string", file, raw, vid)
    peer = _peer(raw, command, file, vid)
    guest_raw = req.get("guest")
    if guest_raw is not None and not isinstance(guest_raw, dict):
        raise _err("requires/guest must be a mapping", file, req, vid)
    try:
        guest = parse_guest(guest_raw) if peer or "guest" in req else None
    except GuestSpecError as exc:
        raise _err(str(exc), file, req, vid) from exc
    cancel_after = req.get("cancel-after")
    if cancel_after is not None and (
            isinstance(cancel_after, bool) or not isinstance(cancel_after, int | float)
            or not 0 < cancel_after <= MAX_CANCEL_AFTER or command != "migrate"):
        raise _err(f"requires/cancel-after must be a number of seconds above 0 and at most "
                   f"{MAX_CANCEL_AFTER:g}, on a migrate vector", file, req, vid)
    return Vector(
        id=vid, description=description, command=command, arguments=args,
        flags=_words(raw.get("flags"), "flags", file, raw, vid),
        expect=tuple(parse_expectation(e, file, vid) for e in expect), file=file,
        line=line_of(raw), schema=_words(req.get("schema"), "requires/schema", file, req, vid),
        machine=machine, incoming=incoming, fds=_fds(req.get("fds"), file, vid, req),
        peer=peer, capabilities={k: v is True for k, v in caps.items()},
        parameters=dict(_mapping(req.get("parameters"), "requires/parameters", file, req, vid)),
        features=_words(req.get("features"), "requires/features", file, req, vid), guest=guest,
        postcopy=req.get("postcopy") is True,
        cancel_after=None if cancel_after is None else float(cancel_after))


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
    destination: VersionRange | None = None  # a pair vector's: ``versions`` is then the source's
    # where real builds were seen showing it (versions; a pair defect's: SRC->DST pairs),
    # and what it rests on everywhere else in its range
    observed_on: tuple[str, ...] = ()
    inferred_from: str | None = None

    def seen_on(self, version: Version, destination: Version | None = None) -> bool:
        """True when a real build of ``version`` (to one of ``destination``, for a
        pair defect) was seen showing the defect (it is in ``observed-on``)."""
        if self.destination is not None and destination is not None:
            return pair_label(version, destination) in self.observed_on
        return Version(*version).label in self.observed_on

    def applies(self, version: Version, destination: Version | None = None) -> bool:
        """Whether the defect shows on this build (or this source and destination)."""
        if version not in self.versions:
            return False
        return self.destination is None or (destination is not None
                                            and destination in self.destination)


def parse_defect(raw: object, file: str) -> KnownDefect:
    if not isinstance(raw, dict) or not raw.get("id") or not raw.get("vector"):
        raise _err("a known defect needs id and vector", file, raw, None)
    did = str(raw["id"])
    _check_json(raw, file, did)
    for key in ("summary", "evidence", "observed"):
        if not raw.get(key):
            raise _err(f"a known defect needs {key}", file, raw, did)
    if not isinstance(raw["observed"], dict):
        raise _err("observed must be a mapping (an expectation)", file, raw, did)
    versions = _versions(raw, file, did)
    try:
        destination = VersionRange.parse(raw["destination"]) if "destination" in raw else None
    except RangeError as exc:
        raise _err(str(exc), file, raw, did) from exc
    observed = parse_expectation({**raw["observed"], "versions": raw.get("versions")}, file, did,
                                 ("accept", "reject", "crash", "hang", "corrupt"))
    seen = _words(raw.get("observed-on"), "observed-on", file, raw, did)
    if destination is None:  # a build's defect: its observed-on is the expectation's
        observed = replace(observed, observed_on=seen)
    observed = replace(observed, inferred_from=_text(raw, "inferred-from", file, did))
    return KnownDefect(did, str(raw["vector"]), versions, str(raw["summary"]), observed,
                       str(raw["evidence"]), file, line_of(raw), str(raw.get("review-by") or ""),
                       destination, seen, observed.inferred_from)
