"""Cross-version vectors: one real-guest migration per ordered pair of builds.

A pair vector names a transport, the guest and the addressing forms to try;
its expectations say, per source range, destination range and form, how the
migration ends. ``case_vector`` turns one cell (vector, form, source build,
destination build) into an ordinary ``migrate`` vector with a peer, so the
same runner, safety gate and guest checks apply; the guest gets the machine
type of the older build. The format is in vectors/README.md ("Cross-version
pairs") and vectors/vector-file.schema.json.
"""

from __future__ import annotations

from dataclasses import dataclass

from qmpcompat.errors import VectorError
from qmpcompat.guest.spec import GuestSpec, GuestSpecError, parse_guest
from qmpcompat.types import JSON, JSONObject, Version
from qmpcompat.vectors.model import Vector, parse_vector
from qmpcompat.vectors.versions import RangeError, VersionRange, pair_label
from qmpcompat.vectors.yamlfile import line_of

FORMS = ("uri/uri", "channels/uri", "uri/channels", "channels/channels")
PAIR_RESULTS = ("completed", "failed")
_SOCK = "{tmpdir}/mig.sock"
_STREAM = "{tmpdir}/stream"
_FD: list[JSON] = [{"name": "mig", "kind": "pair"}]
# Per transport: (source uri, destination uri, source channel addr, destination channel
# addr, whether the destination runs after the source, fds on each side).
TRANSPORTS: dict[str, tuple[str, str, JSONObject, JSONObject, bool, list[JSON]]] = {
    "unix": (f"unix:{_SOCK}", f"unix:{_SOCK}",
             {"transport": "socket", "type": "unix", "path": _SOCK},
             {"transport": "socket", "type": "unix", "path": _SOCK}, False, []),
    "tcp": ("tcp:127.0.0.1:{port}", "tcp:127.0.0.1:{port}",
            {"transport": "socket", "type": "inet", "host": "127.0.0.1", "port": "{port}"},
            {"transport": "socket", "type": "inet", "host": "127.0.0.1", "port": "{port}"},
            False, []),
    "fd": ("fd:mig", "fd:mig", {"transport": "socket", "type": "fd", "str": "mig"},
           {"transport": "socket", "type": "fd", "str": "mig"}, False, _FD),
    "exec": (f"exec:cat > {_STREAM}", f"exec:cat {_STREAM}",
             {"transport": "exec", "args": ["/bin/sh", "-c", f"cat > {_STREAM}"]},
             {"transport": "exec", "args": ["/bin/sh", "-c", f"cat {_STREAM}"]}, True, []),
    "file": (f"file:{_STREAM},offset=4096", f"file:{_STREAM},offset=4096",
             {"transport": "file", "filename": _STREAM, "offset": 4096},
             {"transport": "file", "filename": _STREAM, "offset": 4096}, True, []),
}
_BRANCH = {"unix": "socket", "tcp": "socket", "fd": "socket", "exec": "exec", "file": "file"}


@dataclass(frozen=True)
class PairExpectation:
    """How a migration from a build in ``source`` to one in ``destination`` ends."""

    source: VersionRange
    destination: VersionRange
    forms: tuple[str, ...]
    migration: str  # completed | failed
    migration_error: str | None = None
    observed_on: tuple[str, ...] = ()  # SRC->DST pairs real builds were seen doing this on
    inferred_from: str | None = None  # what the claim rests on for every other pair

    def applies(self, src: Version, dst: Version, form: str) -> bool:
        return src in self.source and dst in self.destination and form in self.forms

    def observed(self, src: Version, dst: Version) -> bool:
        """True when builds of exactly these versions were seen doing this (in the
        forms of the expectation both sides support)."""
        return pair_label(src, dst) in self.observed_on

    def overlaps(self, other: PairExpectation) -> bool:
        return (self.source.overlaps(other.source) and self.destination.overlaps(other.destination)
                and bool(set(self.forms) & set(other.forms)))


@dataclass(frozen=True)
class PairVector:
    id: str
    description: str
    flags: tuple[str, ...]
    transport: str
    forms: tuple[str, ...]
    guest: GuestSpec
    expect: tuple[PairExpectation, ...]
    file: str
    line: int | None = None

    def expectation_for(self, src: Version, dst: Version, form: str) -> PairExpectation | None:
        return next((e for e in self.expect if e.applies(src, dst, form)), None)

    @property
    def where(self) -> str:
        return f"{self.file}:{self.line}" if self.line else self.file

    def needs(self, form: str) -> tuple[tuple[str, ...], tuple[str, ...]]:
        """Schema queries the source and the destination must answer for ``form``:
        where a side is addressed with ``channels``, the transport's branch of it and
        an optional ``uri`` (8.2's ``migrate`` has ``channels`` but still requires
        ``uri``, so no channel list can be its only address)."""
        src_form, dst_form = form.split("/")
        branch = _BRANCH[self.transport]

        def channels(command: str) -> tuple[str, ...]:
            return (f"{command}/arg-type/channels/addr/+{branch}", f"{command}/arg-type/*uri")

        need_src = channels("migrate") if src_form == "channels" else ()
        need_dst = channels("migrate-incoming") if dst_form == "channels" else ()
        if self.transport == "file":  # the file: uri came with the file channel
            need_src = need_src or ("migrate/arg-type/channels/addr/+file",)
            need_dst = need_dst or ("migrate-incoming/arg-type/channels/addr/+file",)
        return need_src, need_dst


def _err(msg: str, file: str, node: object, vid: str | None) -> VectorError:
    return VectorError(msg, file, line_of(node), vid)


def parse_pair_claim(item: JSONObject, file: str, vid: str) -> tuple[
        VersionRange, VersionRange, tuple[str, ...], str | None]:
    """A claim over pairs of versions (a pair vector's or a consumer profile's
    expectation): its ``source`` and ``destination`` ranges, its ``observed-on``
    pairs and its ``inferred-from``; VectorError names what is wrong."""
    try:
        src, dst = (VersionRange.parse(item.get(k)) for k in ("source", "destination"))  # type: ignore[arg-type]
    except RangeError as exc:
        raise _err(str(exc), file, item, vid) from exc
    seen = item.get("observed-on") or []
    if not isinstance(seen, list) or not all(isinstance(s, str) for s in seen):
        raise _err("observed-on must be a list of SRC->DST version pairs", file, item, vid)
    inferred = item.get("inferred-from")
    if inferred is not None and not isinstance(inferred, str):
        raise _err("inferred-from must be a string", file, item, vid)
    return src, dst, tuple(str(s) for s in seen), inferred


def _forms(raw: object, file: str, node: object, vid: str) -> tuple[str, ...]:
    forms = FORMS if raw is None else tuple(raw) if isinstance(raw, list) else ()
    bad = [f for f in forms if f not in FORMS]
    if bad or not forms:
        raise _err(f"forms must be a non-empty list of {', '.join(FORMS)}", file, node, vid)
    return forms


def parse_pair(raw: object, file: str) -> PairVector:
    """A PairVector from its YAML mapping; VectorError names file, line and id."""
    if not isinstance(raw, dict) or not isinstance(raw.get("id"), str):
        raise _err("a pair vector is a mapping with an id", file, raw, None)
    vid = raw["id"]
    transport = raw.get("transport")
    if transport not in TRANSPORTS:
        raise _err(f"transport must be one of {', '.join(TRANSPORTS)}", file, raw, vid)
    forms = _forms(raw.get("forms"), file, raw, vid)
    try:
        spec = parse_guest(raw.get("guest"))
    except GuestSpecError as exc:
        raise _err(str(exc), file, raw, vid) from exc
    expect = raw.get("expect")
    if not isinstance(expect, list) or not expect:
        raise _err("expect must be a non-empty list", file, raw, vid)
    out = []
    for item in expect:
        if not isinstance(item, dict) or item.get("migration") not in PAIR_RESULTS:
            raise _err(f"each expectation needs migration: {' or '.join(PAIR_RESULTS)}", file,
                       item, vid)
        src, dst, seen, inferred = parse_pair_claim(item, file, vid)
        item_forms = _forms(item.get("forms"), file, item, vid) if "forms" in item else forms
        out.append(PairExpectation(src, dst, item_forms, item["migration"],
                                   item.get("migration-error"), seen, inferred))
    return PairVector(vid, str(raw.get("description", "")), tuple(raw.get("flags") or ()),
                      transport, forms, spec, tuple(out), file, line_of(raw))


def case_vector(pv: PairVector, form: str) -> Vector:
    """The ``migrate`` vector (source side) with its peer (destination side) that
    one cell of ``pv`` runs: the transport's arguments in the form's addressing."""
    src_uri, dst_uri, src_addr, dst_addr, after, fds = TRANSPORTS[pv.transport]
    src_form, dst_form = form.split("/")

    def args(which: str, uri: str, addr: JSONObject) -> JSONObject:
        if which == "uri":
            return {"uri": uri}
        return {"channels": [{"channel-type": "main", "addr": addr}]}

    peer: JSONObject = {"arguments": args(dst_form, dst_uri, dst_addr),
                      "when": "after" if after else "before"}
    requires: JSONObject = {"guest": pv.guest.to_json()}
    if fds:
        requires["fds"] = fds
        peer["fds"] = fds
    raw = {"id": pv.id, "description": pv.description, "flags": list(pv.flags),
           "arguments": args(src_form, src_uri, src_addr), "requires": requires, "peer": peer,
           "expect": [{"result": "accept", "migration": "completed"}]}
    return parse_vector(raw, pv.file, "migrate")
