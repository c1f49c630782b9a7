"""Consumer profiles: what a versioned consumer of QEMU's migration interface
(libvirt, Proxmox's qemu-server, ...) sends to the source's and the
destination's QEMU when it migrates a guest, as typed objects built from the
YAML data under ``vectors/consumers/``.

A profile is a small program, not a fixed transcript: its steps run in order,
each on one side, and a step may depend on earlier answers (``when``), build
its arguments from them (``$capabilities``, ``$parameters``, ``$when``) and keep
its own answer for later steps (``save``); the evaluation is in
``qmpcompat.vectors.profileprog``. The format is stated once in
``vectors/consumer-profile.schema.json`` and described in vectors/README.md
("Consumer profiles"); this module is its small reader.
"""

from __future__ import annotations

from dataclasses import dataclass

from qmpcompat.errors import VectorError
from qmpcompat.guest.spec import GuestSpec, GuestSpecError, parse_guest
from qmpcompat.types import JSON, JSONObject, Version
from qmpcompat.vectors.model import Expectation, parse_expectation
from qmpcompat.vectors.pairs import parse_pair_claim
from qmpcompat.vectors.versions import VersionRange, pair_label
from qmpcompat.vectors.yamlfile import line_of

SIDES = ("source", "destination")
OUTCOMES = ("migrated", "refused", "failed", "crash", "hang")
WAIT_BY = ("events", "poll")
# A profile outcome as the vectors' expectation vocabulary says it (one judge for both).
_AS_RESULT = {"migrated": ("accept", "completed"), "failed": ("accept", "failed"),
              "refused": ("reject", None), "crash": ("crash", None), "hang": ("hang", None)}


@dataclass(frozen=True)
class Step:
    """One thing the consumer does on one side: run a command (``execute`` with
    ``arguments``), wait for the migration to reach a status (``wait_until``, by
    MIGRATION events or by polling query-migrate), or pass an fd it connected
    itself (``fd_name``/``fd_connect``: getfd)."""

    id: str
    side: str  # source | destination
    cite: str
    line: int | None = None
    execute: str | None = None
    arguments: JSONObject | None = None
    wait_until: tuple[str, ...] = ()
    wait_by: str = "events"
    fd_name: str = ""
    fd_connect: str = ""
    when: JSONObject | None = None  # a condition (profileprog.holds)
    save: str = ""
    stop_on_error: bool = True  # False: the consumer ignores a refusal and goes on
    observed: tuple[str, ...] = ()  # the recordings (wire/PROFILE/NAME.json) it was seen in

    @property
    def what(self) -> str:
        """The step in a few words: its command, ``wait`` or ``getfd``."""
        if self.execute:
            return self.execute
        return "getfd" if self.fd_name else f"wait ({self.wait_by})"


@dataclass(frozen=True)
class ProfileExpectation:
    """How the consumer's migration ends from a build in ``source`` to one in
    ``destination``; ``claim`` says it in the vectors' expectation vocabulary
    (a refusal names its ``step``)."""

    source: VersionRange
    destination: VersionRange
    outcome: str
    claim: Expectation
    observed_on: tuple[str, ...] = ()
    inferred_from: str | None = None
    line: int | None = None

    def applies(self, src: Version, dst: Version) -> bool:
        return src in self.source and dst in self.destination

    def observed(self, src: Version, dst: Version) -> bool:
        return pair_label(src, dst) in self.observed_on

    def overlaps(self, other: ProfileExpectation) -> bool:
        return self.source.overlaps(other.source) and self.destination.overlaps(other.destination)


@dataclass(frozen=True)
class Profile:
    id: str
    consumer: str
    version: str
    description: str
    read_from: str
    guest: GuestSpec
    incoming: str  # how the destination starts: defer, or a uri on its command line
    incoming_cite: str
    steps: tuple[Step, ...]
    cancel: tuple[Step, ...]
    expect: tuple[ProfileExpectation, ...]
    file: str
    line: int | None = None

    @property
    def name(self) -> str:
        """``libvirt 11.3.0-3+deb13u3``."""
        return f"{self.consumer} {self.version}"

    @property
    def where(self) -> str:
        return f"{self.file}:{self.line}" if self.line else self.file

    def step(self, step_id: str) -> Step | None:
        return next((s for s in (*self.steps, *self.cancel) if s.id == step_id), None)

    def expectation_for(self, src: Version, dst: Version) -> ProfileExpectation | None:
        return next((e for e in self.expect if e.applies(src, dst)), None)

    def needs(self) -> tuple[str, ...]:
        """The build features both sides need: the guest's machine family."""
        return (f"machine:{self.guest.machine}",)


def _err(msg: str, file: str, node: object, pid: str | None) -> VectorError:
    return VectorError(msg, file, line_of(node), pid)


def _str(raw: JSONObject, key: str, file: str, pid: str | None, required: bool = True) -> str:
    value = raw.get(key)
    if value is None and not required:
        return ""
    if not isinstance(value, str) or not value:
        raise _err(f"{key} must be a non-empty string", file, raw, pid)
    return value


def _object(value: JSON, what: str, file: str, node: object, pid: str) -> JSONObject | None:
    if value is None:
        return None
    if not isinstance(value, dict):
        raise _err(f"{what} must be a mapping", file, node, pid)
    return value


def _names(value: JSON, what: str, file: str, node: object, pid: str) -> tuple[str, ...]:
    if value is None:
        return ()
    if not isinstance(value, list) or not all(isinstance(v, str) and v for v in value):
        raise _err(f"{what} must be a list of names", file, node, pid)
    return tuple(str(v) for v in value)


def parse_step(raw: JSON, file: str, pid: str) -> Step:
    """One step; VectorError names what is wrong (the schema says it too, in more words)."""
    if not isinstance(raw, dict):
        raise _err("a step must be a mapping", file, raw, pid)
    sid, side = _str(raw, "id", file, pid), raw.get("side")
    if side not in SIDES:
        raise _err(f"step {sid}: side must be source or destination", file, raw, pid)
    kinds = [k for k in ("execute", "wait", "pass-fd") if k in raw]
    if len(kinds) != 1:
        raise _err(f"step {sid}: needs exactly one of execute, wait, pass-fd", file, raw, pid)
    wait = _object(raw.get("wait"), "wait", file, raw, pid) or {}
    until = wait.get("until") or []
    if "wait" in raw and (not isinstance(until, list) or not until
                          or not all(isinstance(u, str) for u in until)
                          or wait.get("by") not in WAIT_BY):
        raise _err(f"step {sid}: wait needs until (statuses) and by (events or poll)", file, raw, pid)
    fd = _object(raw.get("pass-fd"), "pass-fd", file, raw, pid) or {}
    on_error = raw.get("on-error", "stop")
    if on_error not in ("stop", "continue"):
        raise _err(f"step {sid}: on-error must be stop or continue", file, raw, pid)
    return Step(id=sid, side=str(side), cite=_str(raw, "cite", file, pid), line=line_of(raw),
                execute=_str(raw, "execute", file, pid) if "execute" in raw else None,
                arguments=_object(raw.get("arguments"), "arguments", file, raw, pid),
                wait_until=tuple(str(u) for u in until) if isinstance(until, list) else (),
                wait_by=str(wait.get("by", "events")),
                fd_name=str(fd.get("name", "")), fd_connect=str(fd.get("connect", "")),
                when=_object(raw.get("when"), "when", file, raw, pid),
                save=_str(raw, "save", file, pid, required=False),
                stop_on_error=on_error == "stop",
                observed=_names(raw.get("observed"), f"step {sid}: observed", file, raw, pid))


def parse_profile_expectation(raw: JSON, file: str, pid: str) -> ProfileExpectation:
    if not isinstance(raw, dict):
        raise _err("an expectation must be a mapping", file, raw, pid)
    outcome = raw.get("outcome")
    if outcome not in OUTCOMES:
        raise _err(f"outcome must be one of {', '.join(OUTCOMES)}", file, raw, pid)
    src, dst, seen, inferred = parse_pair_claim(raw, file, pid)
    result, migration = _AS_RESULT[str(outcome)]
    claim_raw: JSONObject = {"result": result, **({"migration": migration} if migration else {}),
                             **{k: raw[k] for k in ("error-class", "desc", "desc-pattern", "why",
                                                    "migration-error", "step") if k in raw}}
    claim = parse_expectation(claim_raw, file, pid, ("accept", "reject", "crash", "hang"))
    return ProfileExpectation(src, dst, str(outcome), claim, seen, inferred, line_of(raw))


def parse_profile(raw: object, file: str) -> Profile:
    """A Profile from its YAML mapping (one per file); VectorError names file, line and id."""
    if not isinstance(raw, dict) or not isinstance(raw.get("id"), str):
        raise _err("a consumer profile is a mapping with an id", file, raw, None)
    pid = str(raw["id"])
    start = _object(raw.get("start"), "start", file, raw, pid) or {}
    dst = _object(start.get("destination"), "start/destination", file, start or raw, pid) or {}
    try:
        guest = parse_guest(_object(raw.get("guest"), "guest", file, raw, pid))
    except GuestSpecError as exc:
        raise _err(str(exc), file, raw, pid) from exc
    lists = {}
    for key in ("steps", "cancel", "expect"):
        items = raw.get(key, [])
        if not isinstance(items, list) or (key != "cancel" and not items):
            raise _err(f"{key} must be a {'non-empty ' if key != 'cancel' else ''}list", file, raw,
                       pid)
        lists[key] = items
    steps = tuple(parse_step(s, file, pid) for s in lists["steps"])
    cancel = tuple(parse_step(s, file, pid) for s in lists["cancel"])
    ids = [s.id for s in (*steps, *cancel)]
    if twice := sorted({i for i in ids if ids.count(i) > 1}):
        raise _err(f"step id {twice[0]} is used twice", file, raw, pid)
    return Profile(id=pid, consumer=_str(raw, "consumer", file, pid),
                   version=_str(raw, "version", file, pid),
                   description=_str(raw, "description", file, pid),
                   read_from=_str(raw, "read-from", file, pid), guest=guest,
                   incoming=_str(dst, "incoming", file, pid) if dst else "defer",
                   incoming_cite=_str(dst, "cite", file, pid) if dst else "",
                   steps=steps, cancel=cancel,
                   expect=tuple(parse_profile_expectation(e, file, pid) for e in lists["expect"]),
                   file=file, line=line_of(raw))
