"""Deriving malformed argument trees, each with the error QEMU must answer.

For a command, walk its argument type in the binary's own schema (every shape
of every object: one per union branch) and derive, at every place:

- ``missing``: each required member (union tags included) left out;
- ``unexpected``: an unknown member added to the object;
- ``type``: each member (and array element) given each JSON type it does not accept;
- ``enum``: each enum member (and union tag) given a value the enum lacks;
- ``order``: two problems in one object, where QEMU must report the one it
  meets first (a missing member before an unknown one; an earlier member's
  type before a later missing one).

Everything else in a derived tree is valid and safe (see ``values``), so the
predicted error is the only one QEMU can give. Ids are stable across builds:
they name places by member names and union branches, never by masked type names.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Iterable
from dataclasses import dataclass

from qmpcompat.derive import predict
from qmpcompat.derive.predict import Prediction
from qmpcompat.derive.shapes import JSON_TYPES, Shape, TypeWalker
from qmpcompat.derive.values import BOGUS_ENUM, UNKNOWN_MEMBER, WRONG_VALUES
from qmpcompat.safety import Policy, command_problems
from qmpcompat.schema.model.query import SchemaIndex
from qmpcompat.types import JSON, JSONObject, json_object
from qmpcompat.vectors.model import Expectation, Vector
from qmpcompat.vectors.versions import VersionRange

KINDS = ("missing", "unexpected", "type", "enum", "order")
ROOT_SITE = "top"
Embed = Callable[[JSON], JSONObject]


@dataclass(frozen=True)
class DerivedCase:
    """One derived argument tree and the error QEMU must answer to it."""

    id: str  # e.g. D-migrate-missing-channels.0.addr+socket+unix.path
    command: str
    kind: str  # one of KINDS
    path: str  # the place, in QEMU's notation (channels[0].addr.path)
    arguments: JSONObject
    prediction: Prediction
    description: str

    def vector(self) -> Vector:
        """The case as a vector the runner and judge of qmpcompat.vectors understand."""
        exp = Expectation(VersionRange.parse("*"), "reject", self.prediction.error_class,
                          self.prediction.desc, self.prediction.pattern, self.prediction.why)
        return Vector(id=self.id, description=self.description, command=self.command,
                      arguments=self.arguments, flags=("derived", self.kind), expect=(exp,),
                      file="derived from the binary's query-qmp-schema",
                      incoming="defer" if self.command == "migrate-incoming" else None)


def _kind(walker: TypeWalker, type_name: str) -> str:
    """How a type is named in the wording rules: its builtin JSON type, enum,
    alternate, object or array."""
    entry = walker.entry(type_name)
    meta = str(entry["meta-type"])
    return str(entry["json-type"]) if meta == "builtin" else meta


class _Deriver:
    def __init__(self, walker: TypeWalker, command: str) -> None:
        self.walker = walker
        self.command = command
        self.cases: dict[str, DerivedCase] = {}
        self.inside: list[str] = []  # the object types being walked, outermost first
        self.refused: list[str] = []  # safety gate refusals of whole shapes (left out)

    def add(self, kind: str, site: str, path: str, args: JSONObject, pred: Prediction,
            what: str) -> None:
        cid = f"D-{self.command}-{kind}-{site}"
        if cid not in self.cases:  # the first shape that reaches a place stands for all
            self.cases[cid] = DerivedCase(cid, self.command, kind, path, args, pred,
                                          f"{what} ({self.command})"[:120])

    def object(self, type_name: str, path: str, site: str, embed: Embed) -> None:
        """Every case inside an object of ``type_name`` (a type inside itself is
        walked once, at its outermost place)."""
        if type_name in self.inside:
            return
        self.inside.append(type_name)
        try:
            self._object(type_name, path, site, embed)
        finally:
            self.inside.pop()

    def _object(self, type_name: str, path: str, site: str, embed: Embed) -> None:
        for shape in self.walker.shapes(type_name):
            base = self.walker.fill(shape)
            unsafe = command_problems(self.command, embed(base), Policy.template())
            if unsafe:  # a member the safety gate does not know yet: no cases here
                self.refused += unsafe
                continue
            self.shape(shape, base, path, site, embed)

    def shape(self, shape: Shape, base: JSONObject, path: str, site: str,
              embed: Embed) -> None:
        def qpath(name: str) -> str:
            return f"{path}.{name}" if path else name

        def msite(name: str) -> str:
            prefix = site + shape.label(name)
            return f"{prefix}.{name}" if prefix else name

        def put(name: str, value: JSON) -> JSONObject:
            return embed({**base, name: value})

        branch = "/".join(case for _, case in shape.tags)
        where = f" in the {branch} branch" if branch else ""
        for m in shape.members:
            if not m.optional:
                args = embed({k: v for k, v in base.items() if k != m.name})
                self.add("missing", msite(m.name), qpath(m.name), args,
                         predict.missing(qpath(m.name)), f"required {qpath(m.name)} left out{where}")
            self.member(m.name, m.type, qpath(m.name), msite(m.name),
                        functools.partial(put, m.name), where)
        own = (site + shape.label()) or ROOT_SITE
        self.add("unexpected", own, qpath(UNKNOWN_MEMBER), put(UNKNOWN_MEMBER, 1),
                 predict.unexpected(qpath(UNKNOWN_MEMBER)), f"unknown member at {path or 'top'}{where}")
        self.order(shape, base, qpath, own, embed, where)

    def member(self, name: str, type_name: str, path: str, site: str, embed: Embed,
               where: str) -> None:
        """Wrong types and values at one place, then the places inside it."""
        walker = self.walker
        kind = _kind(walker, type_name)
        accepted = walker.accepts(type_name)
        for jt in JSON_TYPES:
            if jt not in accepted:
                self.add("type", f"{site}={jt}", path, embed(WRONG_VALUES[jt]),
                         predict.wrong_type(path, kind), f"{path} given a JSON {jt}{where}")
        if kind == "enum" and name:
            self.add("enum", site, path, embed(BOGUS_ENUM), predict.bad_enum(name, BOGUS_ENUM),
                     f"{path} given a value its enum lacks{where}")
        elif kind == "object":
            self.object(type_name, path, site, embed)
        elif kind == "array":
            element = str(walker.entry(type_name)["element-type"])
            self.member("", element, f"{path}[0]", f"{site}.0", lambda v: embed([v]), where)
            if _kind(walker, element) == "object":
                first = json_object(walker.valid(element))
                self.add("unexpected", f"{site}.1", f"{path}[1].{UNKNOWN_MEMBER}",
                         embed([first, {**first, UNKNOWN_MEMBER: 1}]),
                         predict.unexpected(f"{path}[1].{UNKNOWN_MEMBER}"),
                         f"unknown member in the second element of {path}{where}")

    def order(self, shape: Shape, base: JSONObject, qpath: Callable[[str], str], site: str,
              embed: Embed, where: str) -> None:
        """Two problems in one object: QEMU must report the first it meets."""
        required = shape.required
        if not required:
            return
        last = required[-1]
        rest = {k: v for k, v in base.items() if k != last.name}
        self.add("order", f"{site}-missing+unexpected", qpath(last.name),
                 embed({**rest, UNKNOWN_MEMBER: 1}), predict.missing(qpath(last.name)),
                 f"{qpath(last.name)} left out and an unknown member added{where}")
        first = shape.members[0]
        wrong = sorted(set(JSON_TYPES) - self.walker.accepts(first.type))
        if first.name != last.name and wrong:
            self.add("order", f"{site}-type+missing", qpath(first.name),
                     embed({**rest, first.name: WRONG_VALUES[wrong[0]]}),
                     predict.wrong_type(qpath(first.name), _kind(self.walker, first.type)),
                     f"{qpath(first.name)} of a wrong type and {qpath(last.name)} left out{where}")


def derive(index: SchemaIndex, commands: Iterable[str],
           refused: list[str] | None = None) -> list[DerivedCase]:
    """Every derived case of ``commands`` in this schema, in a fixed order (commands
    as given, places in QEMU's visiting order). SchemaError if a command is missing.
    Shapes whose valid tree the safety gate refuses (a member it does not know
    yet) give no cases; why goes into ``refused``."""
    walker = TypeWalker(index)
    out: list[DerivedCase] = []
    for command in commands:
        deriver = _Deriver(walker, command)
        deriver.object(walker.arg_type(command), "", "", json_object)
        out += deriver.cases.values()
        if refused is not None:
            refused += [f"{command}: {r}" for r in dict.fromkeys(deriver.refused)]
    return out
