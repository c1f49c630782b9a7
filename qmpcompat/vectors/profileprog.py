"""The small language of consumer profiles: conditions on earlier answers and
arguments built from them. Everything here is decidable: a condition reads
saved replies (and the side's QEMU schema) and answers true or false; an
argument template expands to plain JSON in one pass.

Conditions (a step's ``when``, a ``$when`` value, an ``on`` item):

- ``{has-capability: NAME, in: SAVED}``: the saved query-migrate-capabilities reply lists NAME;
- ``{has-member: NAME, in: SAVED}``: the saved reply (an object) has member NAME;
- ``{status-is: [S, ...], in: SAVED}``: the saved reply's ``status`` is one of these;
- ``{schema: QUERY, side: SIDE}``: that side's QEMU schema answers the libvirt-style query;
- ``{accepted: STEP}``, ``{refused: STEP}``: QEMU accepted (refused) that earlier step;
- ``{all: [...]}``, ``{any: [...]}``, ``{not: COND}``.

A name no earlier step saved is an absent reply: it has nothing, so a condition
on it is false and a template built from it is empty.

Argument templates: any JSON; a mapping with one ``$`` key is built from answers:

- ``{$capabilities: {in: SAVED, only: [NAMES], enable: [NAME | {name, when}]}}``: a
  ``migrate-set-capabilities`` list, one item per capability the saved reply
  lists (restricted to ``only``, in its order, when given; else in QEMU's
  order), ``state`` true for those ``enable`` names whose condition holds;
- ``{$parameters: {in: SAVED, only: {NAME: integer|string|boolean}}}``: the
  saved query-migrate-parameters members named in ``only`` whose JSON type
  matches (how libvirt echoes the values it read back);
- ``{$when: COND, value: X}``: X when COND holds; else the member (or list item) is left out.

``widest`` gives a template's largest expansion, every condition taken true,
for the safety gate to check before anything runs: every member name and
literal value; a value a generator copies from QEMU's reply is null there, and
the harness checks the real expansion before sending it.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping

from qmpcompat.types import JSON, JSONObject

SchemaHas = Callable[[str, str], bool]  # (side, libvirt-style query) -> does it hold
TYPES: dict[str, Callable[[JSON], bool]] = {
    "integer": lambda v: isinstance(v, int) and not isinstance(v, bool),
    "string": lambda v: isinstance(v, str),
    "boolean": lambda v: isinstance(v, bool),
}
GENERATORS = ("$capabilities", "$parameters", "$when")
_LEAVE_OUT = object()  # a $when whose condition is false


class ProgramError(ValueError):
    """A condition or template that is not one of the forms above."""


def step_key(step_id: str) -> str:
    """Where the runner keeps whether a step was accepted or refused, beside the
    saved replies (no saved name starts with ``@``)."""
    return f"@{step_id}"


def reported_capabilities(reply: JSON) -> list[str]:
    """The capability names of a query-migrate-capabilities reply, in its order."""
    items = reply if isinstance(reply, list) else []
    return [str(i["capability"]) for i in items if isinstance(i, dict) and "capability" in i]


def holds(cond: JSON, saved: Mapping[str, JSON], schema: SchemaHas) -> bool:
    """Whether ``cond`` holds, given the replies saved so far and the sides' schemas."""
    if not isinstance(cond, dict):
        raise ProgramError(f"a condition must be a mapping, not {cond!r}")
    reply = saved.get(str(cond.get("in", "")))
    if "has-capability" in cond:
        return cond["has-capability"] in reported_capabilities(reply)
    if "has-member" in cond:
        return isinstance(reply, dict) and cond["has-member"] in reply
    if "status-is" in cond:
        statuses = cond["status-is"]
        return isinstance(reply, dict) and isinstance(statuses, list) \
            and reply.get("status") in statuses
    for answer in ("accepted", "refused"):
        if answer in cond:
            return saved.get(step_key(str(cond[answer]))) == answer
    if "schema" in cond:
        return schema(str(cond.get("side")), str(cond["schema"]))
    if "all" in cond and isinstance(cond["all"], list):
        return all(holds(c, saved, schema) for c in cond["all"])
    if "any" in cond and isinstance(cond["any"], list):
        return any(holds(c, saved, schema) for c in cond["any"])
    if "not" in cond:
        return not holds(cond["not"], saved, schema)
    raise ProgramError(f"unknown condition {sorted(cond)}")


def _on(spec: JSONObject) -> list[tuple[str, JSON]]:
    """The ``enable`` items of a $capabilities: (name, condition or None)."""
    items = spec.get("enable") or []
    if not isinstance(items, list):
        raise ProgramError("$capabilities enable must be a list")
    out: list[tuple[str, JSON]] = []
    for item in items:
        if isinstance(item, str):
            out.append((item, None))
        elif isinstance(item, dict) and isinstance(name := item.get("name"), str):
            out.append((name, item.get("when")))
        else:
            raise ProgramError(f"$capabilities enable: {item!r} is neither a name nor "
                               "{name, when}")
    return out


def _spec(tree: JSONObject, key: str) -> JSONObject:
    spec = tree[key]
    if not isinstance(spec, dict) or not isinstance(spec.get("in"), str):
        raise ProgramError(f"{key} needs a mapping with in (a saved reply)")
    return spec


def _only_types(spec: JSONObject) -> dict[str, str]:
    only = spec.get("only")
    if not isinstance(only, dict) or not all(t in TYPES for t in only.values()):
        raise ProgramError("$parameters only maps each parameter to integer, string or boolean")
    return {k: str(v) for k, v in only.items()}


def _capabilities(spec: JSONObject, saved: Mapping[str, JSON], schema: SchemaHas) -> JSON:
    reported = reported_capabilities(saved.get(str(spec["in"])))
    only = spec.get("only")
    names = [n for n in only if n in reported] if isinstance(only, list) else reported
    on = {name for name, when in _on(spec) if when is None or holds(when, saved, schema)}
    return [{"capability": n, "state": n in on} for n in names]


def _expand(tree: JSON, saved: Mapping[str, JSON], schema: SchemaHas) -> object:
    if isinstance(tree, list):
        return [x for x in (_expand(v, saved, schema) for v in tree) if x is not _LEAVE_OUT]
    if not isinstance(tree, dict):
        return tree
    if "$when" in tree:
        return _expand(tree.get("value"), saved, schema) if holds(tree["$when"], saved, schema) \
            else _LEAVE_OUT
    if "$capabilities" in tree:
        return _capabilities(_spec(tree, "$capabilities"), saved, schema)
    if "$parameters" in tree:
        spec = _spec(tree, "$parameters")
        reply = saved.get(str(spec["in"]))
        values = reply if isinstance(reply, dict) else {}
        return {k: values[k] for k, t in _only_types(spec).items()
                if k in values and TYPES[t](values[k])}
    out = {k: _expand(v, saved, schema) for k, v in tree.items()}
    return {k: v for k, v in out.items() if v is not _LEAVE_OUT}


def expand(tree: JSONObject, saved: Mapping[str, JSON], schema: SchemaHas) -> JSONObject:
    """A step's arguments as sent: every generator built from the saved replies."""
    out = _expand(tree, saved, schema)
    return out if isinstance(out, dict) else {}


def widest(tree: JSON) -> JSON:
    """The largest expansion of a template (every condition true, every listed
    name present, a parameter copied from a reply null), for the safety gate."""
    if isinstance(tree, list):
        return [widest(v) for v in tree]
    if not isinstance(tree, dict):
        return tree
    if "$when" in tree:
        return widest(tree.get("value"))
    if "$capabilities" in tree:
        spec = _spec(tree, "$capabilities")
        only = spec.get("only")
        names = list(only) if isinstance(only, list) else [n for n, _ in _on(spec)]
        return [{"capability": n, "state": True} for n in names]
    if "$parameters" in tree:
        return {k: None for k in _only_types(_spec(tree, "$parameters"))}
    return {k: widest(v) for k, v in tree.items()}


def references(tree: JSON) -> list[str]:
    """Every saved name a condition or template reads (its ``in`` members)."""
    out: list[str] = []
    todo = [tree]
    while todo:
        node = todo.pop()
        if isinstance(node, dict):
            if isinstance(name := node.get("in"), str):
                out.append(name)
            todo += node.values()
        elif isinstance(node, list):
            todo += node
    return out
