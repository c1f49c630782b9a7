"""A release nobody recorded or ran, derived from a known one and the QAPI
changes between them (``source.kind`` ``patch``).

Libvirt records X.Y.0 releases, this machine runs a few builds, and the archive
serves the QAPI source of a few more; the releases in between are known only by
their QAPI changes. Such a release is committed in ``vectors/schema/releases/``
as the slice of a known ``base`` release with exactly its ``changes`` applied:
derived, never observed. QEMU 8.2.2 is 8.2.0 plus its stable back-port of
57fd4b4e10; 10.1.0 is 10.0.0 plus 10.1's changes; 11.0.0 is 10.2.2 (read from
its QAPI source) plus 11.0's.

Each change names its commit (``commit``, a hash) or, where no commit is known
here, its patch mail (``patch``) or, for a change ``next`` lists only to check
against a later source, the ``Since:`` tag that dates it (``since``); with what
it is (``subject``), and is one of

- ``{"add": PATH, "type": T, "optional": true, "after": M, "features": [...]}``: a
  new object member (after member ``M``; last without it), or ``{"add": .../^V}``
  a new enum value;
- ``{"remove": PATH}``: a member or enum value (``.../^V``) goes;
- ``{"made-optional": PATH}``: a mandatory member becomes optional;
- ``{"feature": F, "on": PATH}``: a member or enum value gains feature ``F``;
- ``{"none": WHY}``: a change of that release the slice does not show (a
  command outside it, a type renamed, behaviour), recorded with why.

PATH is a libvirt query (``migrate/arg-type/detach``,
``query-migrate/ret-type/status/^failing``); ``T`` an entry of the slice
(``int``, ``[int]``, ``str``). A type shared by several places changes in all
of them (InetSocketAddress under ``+rdma`` and ``+socket/+inet``).

``next`` (optional) checks the derivation where it meets known schemas: the
derived slice with ``next.changes`` applied must equal the committed slice of
every release in ``next.releases`` (10.1.0 plus 10.2's changes is the 10.2.2
source; 11.0.0 plus 11.1's is each 11.1.x build). ``qmpcompat snapshot
--releases`` regenerates a derived release from its regenerated base.

    >>> base = {"qemu": "8.2.0", "label": "qemu-8.2.0", "roots": ["migrate"], "entries": [
    ...     {"name": "migrate", "meta-type": "command", "arg-type": "migrate/arg-type"},
    ...     {"name": "migrate/arg-type", "meta-type": "object",
    ...      "members": [{"name": "uri", "type": "str"}]},
    ...     {"name": "str", "meta-type": "builtin", "json-type": "string"}]}
    >>> out = derive(base, "8.2.2", {"kind": "patch", "base": "8.2.0", "changes": [
    ...     {"made-optional": "migrate/arg-type/uri", "commit": "57fd4b4e10"}]})
    >>> out["entries"][1]["members"], out["qemu"], out["label"]
    ([{'default': None, 'name': 'uri', 'type': 'str'}], '8.2.2', 'qemu-8.2.2')
"""

from __future__ import annotations

import copy
import json
import re
from collections.abc import Mapping, Sequence

from qmpcompat.errors import SchemaError
from qmpcompat.schema.model.query import SchemaIndex, as_entry, schema_get
from qmpcompat.schema.sources.input import SchemaInput
from qmpcompat.schema.sources.snapshot import dumps, snapshot
from qmpcompat.types import JSON, JSONObject, json_list, json_object

KINDS = ("add", "remove", "made-optional", "feature", "none")
_COMMIT = re.compile(r"[0-9a-f]{8,40}")


def _problem(change: JSONObject, text: str) -> SchemaError:
    return SchemaError(f"the change {dict(change)!r:.160} {text}", str(change.get("commit") or
                                                                       change.get("patch") or ""))


def kind_of(change: JSONObject) -> str:
    """The kind of ``change`` (a key of ``KINDS``); SchemaError when it has none,
    several, or names neither its commit nor its patch."""
    kinds = [k for k in KINDS if k in change]
    if len(kinds) != 1:
        raise _problem(change, f"must have exactly one of {', '.join(KINDS)}")
    if not _COMMIT.fullmatch(str(change.get("commit") or "")) and not change.get("patch") \
            and not change.get("since"):
        raise _problem(change, "names neither its commit (a hash), its patch mail nor the "
                               "Since: tag that dates it")
    return kinds[0]


def _split(path: str) -> tuple[str, str]:
    """``A/B/name`` -> (``A/B``, ``name``); the last part may be ``^value``."""
    parent, _, last = path.rpartition("/")
    if not parent or not last:
        raise SchemaError(f"not a query of a member or enum value: {path!r}", path)
    return parent, last


def _target(entries: dict[str, JSONObject], path: str) -> JSONObject:
    """The entry holding what ``path``'s last part names (an object, or an enum)."""
    parent, _last = _split(path)
    found = schema_get(SchemaIndex(entries.values(), path), parent)
    if found is None:
        raise SchemaError(f"the base schema has no {parent!r}", path)
    return entries[found["name"]]


def _members(entry: JSONObject) -> list[JSONObject]:
    return [json_object(m) for m in json_list(entry.get("members") or [])]


def _find(entry: JSONObject, name: str, path: str) -> JSONObject:
    for member in _members(entry):
        if member.get("name") == name:
            return member
    raise SchemaError(f"the base schema has no {path!r}", path)


def _add(entries: dict[str, JSONObject], change: JSONObject) -> None:
    path = str(change["add"])
    entry = _target(entries, path)
    name = _split(path)[1]
    members = json_list(entry.setdefault("members", []))
    if any(json_object(m).get("name") == name.lstrip("^") for m in members):
        raise _problem(change, f"adds {path}, which the base schema already has")
    if name.startswith("^"):
        members.append({"name": name[1:], **({"features": list(json_list(change["features"]))}
                                              if change.get("features") else {})})
        values: list[JSON] = [*sorted([*(str(v) for v in json_list(entry.get("values") or [])),
                                       name[1:]])]
        entry["values"] = values
        return
    if str(change.get("type")) not in entries:
        raise _problem(change, f"adds a member of type {change.get('type')!r}, which the base "
                               "slice lacks")
    member: JSONObject = {"name": name, "type": str(change["type"])}
    if change.get("optional"):
        member["default"] = None
    if change.get("features"):
        member["features"] = list(json_list(change["features"]))
    where = len(members)
    if change.get("after"):
        where = members.index(_find(entry, str(change["after"]), path)) + 1
    members.insert(where, member)


def _remove(entries: dict[str, JSONObject], change: JSONObject) -> None:
    path = str(change["remove"])
    entry = _target(entries, path)
    name = _split(path)[1].lstrip("^")
    json_list(entry["members"]).remove(_find(entry, name, path))
    if "values" in entry:
        json_list(entry["values"]).remove(name)


def _modify(entries: dict[str, JSONObject], change: JSONObject, kind: str) -> None:
    path = str(change["made-optional"] if kind == "made-optional" else change["on"])
    member = _find(_target(entries, path), _split(path)[1].lstrip("^"), path)
    if kind == "made-optional":
        if "default" in member:
            raise _problem(change, f"makes {path} optional, which it already is in the base")
        member["default"] = None
        return
    features = json_list(member.setdefault("features", []))
    if change["feature"] in features:
        raise _problem(change, f"gives {path} feature {change['feature']}, which it already has")
    features.append(change["feature"])


def apply(slice_: JSONObject, changes: Sequence[JSONObject]) -> JSONObject:
    """A copy of snapshot ``slice_`` with ``changes`` applied, in canonical form.
    SchemaError when a change does not fit the slice (a path it lacks, a member it
    already has): the change would not be the one its commit made."""
    out = copy.deepcopy(slice_)
    entries = {str(e["name"]): e for e in (json_object(r) for r in json_list(out["entries"]))}
    for change in changes:
        kind = kind_of(change)
        if kind == "add":
            _add(entries, change)
        elif kind == "remove":
            _remove(entries, change)
        elif kind in ("made-optional", "feature"):
            _modify(entries, change, kind)
    roots = out.get("roots")
    schema = SchemaInput("derived", str(out.get("label", "")), "snapshot",
                         [as_entry(e) for e in entries.values()], str(out.get("qemu", "")))
    again = snapshot(schema, None if roots == "all" else [str(r) for r in json_list(roots or [])])
    out["entries"] = json_list(json.loads(dumps({"e": again["entries"]}))["e"])
    return out


def derive(base: JSONObject, version: str, source: JSONObject) -> JSONObject:
    """The snapshot of ``version``: ``base`` (a snapshot's JSON) with
    ``source['changes']`` applied, and ``source`` as its record."""
    out = apply(base, [json_object(c) for c in json_list(source.get("changes") or [])])
    out.update({"qemu": version, "label": f"qemu-{version}", "source": source})
    return out


def check_next(derived: JSONObject, known: Mapping[str, JSONObject]) -> list[str]:
    """Where a derived release meets known schemas: its slice with ``next.changes``
    applied must be each ``next.releases`` slice (``known``: version -> snapshot
    JSON). The problems, one per release that differs or is not known."""
    source = json_object(derived.get("source") or {})
    later = json_object(source.get("next") or {})
    if not later:
        return []
    moved = apply(derived, [json_object(c) for c in json_list(later.get("changes") or [])])
    out = []
    for version in (str(v) for v in json_list(later.get("releases") or [])):
        if version not in known:
            out.append(f"QEMU {derived.get('qemu')}: next release {version} has no committed schema")
        elif differ := _differing(known[version], moved):
            out.append(f"QEMU {derived.get('qemu')} with the changes listed up to {version} is not "
                       f"{version}'s committed schema: a change is missing or wrong in "
                       f"{', '.join(differ)}")
    return out


def _differing(a: JSONObject, b: JSONObject) -> list[str]:
    """The names of the entries two snapshots hold differently."""
    left = {str(e["name"]): dumps(e) for e in (json_object(r) for r in json_list(a["entries"]))}
    right = {str(e["name"]): dumps(e) for e in (json_object(r) for r in json_list(b["entries"]))}
    return sorted(n for n in left.keys() | right.keys() if left.get(n) != right.get(n))


def change_note(source: JSONObject, path: str) -> str:
    """Which listed change of a derived release made the change at ``path`` (a
    query; matched by its last part, since a shared type shows under several
    paths): ``commit 1bd4237cb1`` or ``patch ...``; '' when none names it."""
    name = path.rsplit("/", 1)[-1].lstrip("^")
    for change in (json_object(r) for r in json_list(source.get("changes") or [])):
        kind = kind_of(change)
        target = str(change.get("on") if kind == "feature" else change.get(kind) or "")
        if kind != "none" and target.rsplit("/", 1)[-1].lstrip("^") == name:
            commit = str(change.get("commit") or "")[:10]
            return f"commit {commit}" if commit else f"patch {change.get('patch')}"
    return ""


def commits(source: JSONObject) -> list[str]:
    """The commits (10 characters) or patch mails a derived release's changes name,
    each once, in order."""
    named = [str(c.get("commit") or "")[:10] or "a patch" for c in
             (json_object(r) for r in json_list(source.get("changes") or []))]
    return list(dict.fromkeys(named))
