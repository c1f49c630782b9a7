"""A stable release nobody recorded, derived from a recorded release of its line.

Libvirt records X.Y.0 releases; a stable release can change the schema by
back-porting an upstream QAPI change (QEMU 8.2.2 made ``migrate``'s ``uri``
optional). Such a release is committed in ``vectors/schema/releases/`` with
``source.kind`` ``patch``: its record names the ``base`` release (a committed
recorded snapshot of the same line), the back-port (``backport``: the upstream
commit, its subject, the stable mail) and the change itself as schema facts
(``optional``: members, in libvirt query notation, that the change makes
optional). Its slice is the base slice with exactly that change: derived,
never observed. ``qmpcompat snapshot --releases`` regenerates it from the
regenerated base.

    >>> base = {"qemu": "8.2.0", "label": "qemu-8.2.0", "entries": [
    ...     {"name": "migrate", "meta-type": "command", "arg-type": "migrate/arg-type"},
    ...     {"name": "migrate/arg-type", "meta-type": "object",
    ...      "members": [{"name": "uri", "type": "str"}]}]}
    >>> out = derive(base, "8.2.2", {"kind": "patch", "base": "8.2.0",
    ...                              "optional": ["migrate/arg-type/uri"]})
    >>> out["entries"][1]["members"], out["qemu"], out["label"]
    ([{'default': None, 'name': 'uri', 'type': 'str'}], '8.2.2', 'qemu-8.2.2')
"""

from __future__ import annotations

import copy

from qmpcompat.errors import SchemaError
from qmpcompat.types import JSONObject


def _member(entries: dict[str, JSONObject], path: str) -> JSONObject:
    """The member ``COMMAND/arg-type/NAME`` names; SchemaError when there is none."""
    parts = path.split("/")
    if len(parts) != 3 or parts[1] != "arg-type":
        raise SchemaError(f"a back-port's optional member must be COMMAND/arg-type/NAME: {path!r}",
                          path)
    command = entries.get(parts[0], {})
    target = entries.get(str(command.get("arg-type") or ""), {})
    members = target.get("members")
    for item in members if isinstance(members, list) else []:
        if isinstance(item, dict) and item.get("name") == parts[2]:
            return item
    raise SchemaError(f"the base schema has no member {path!r}", path)


def derive(base: JSONObject, version: str, source: JSONObject) -> JSONObject:
    """The snapshot of ``version``: ``base`` (a snapshot's JSON) with every member
    ``source['optional']`` names made optional, and ``source`` as its record.
    SchemaError when a member is missing or already optional (the change would
    not be the back-port's)."""
    out = copy.deepcopy(base)
    found = out.get("entries")
    entries = {str(e.get("name")): e for e in found if isinstance(e, dict)} \
        if isinstance(found, list) else {}
    optional = source.get("optional")
    for path in optional if isinstance(optional, list) else []:
        member = _member(entries, str(path))
        if "default" in member:
            raise SchemaError(f"{path} is already optional in the base schema", str(path))
        member["default"] = None
        ordered = dict(sorted(member.items()))
        member.clear()
        member.update(ordered)
    out["qemu"] = version
    out["label"] = f"qemu-{version}"
    out["source"] = source
    return out
