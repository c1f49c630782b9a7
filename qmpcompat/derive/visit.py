"""What QEMU's input visitor answers to one argument tree, for one schema.

The derived cases (``cases``) go from a schema to malformed trees; this module
goes the other way: given any tree (a vector's arguments) and a release's
``query-qmp-schema``, it follows the rules of ``predict`` (members in schema
order, descending as it goes; an object's unknown members when it is finished;
the first problem is the error) and answers one of:

- ``Answer(None)``: the input visitor lets the tree through, so whatever QEMU
  answers next comes from the command's own code (not from the schema);
- ``Answer(prediction)``: the error the input visitor must give, with the schema
  fact that decides it (in libvirt query notation);
- ``Answer(prediction, decided=False, rejects=True)``: the visitor rejects the
  tree whatever the values the schema cannot judge (a member the schema does
  not know, a mandatory one missing, a wrong type), but which error comes first
  is not known: ``prediction`` is a pattern of every error that can;
- ``Answer(prediction or None, decided=False)``: the schema cannot tell whether
  the tree passes (an integer whose C type's range is not in introspection;
  ``prediction`` then says which errors it may get).

Every member of the tree is visited: a value the schema cannot judge makes
only that member undecided, never the members after it. So the answer does not
depend on the order of the members: a problem in any of them is found, and
only which error QEMU names first depends on QEMU's order. A schema snapshot
keeps QEMU's order; pass ``ordered=False`` for a schema whose members are in
another order (sorted by name), and two problems in one object are both
possible first errors instead of a guess.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from qmpcompat.derive import predict
from qmpcompat.derive.predict import Prediction
from qmpcompat.derive.shapes import TypeWalker
from qmpcompat.errors import SchemaError
from qmpcompat.schema.model.query import Entry, SchemaIndex
from qmpcompat.types import JSON, JSONObject, json_list, json_object

# Every integer type accepts these, whatever its C type (the smallest is uint8).
SAFE_INT = range(0, 256)
MULTI_UNKNOWN_WHY = ("QEMU reports one of several unknown members of an object, in the "
                     "order of its hash table")
RANGE_WHY = ("an integer whose C type introspection does not show: QEMU may take it, or name "
             "its range by the bare member name or its type by the path")
EITHER_WHY = "one of several problems, whichever QEMU meets first"
ACCEPTED_FACT = "every member is known, every mandatory one present, every type and value valid"


@dataclass(frozen=True)
class Answer:
    """The input visitor's answer: ``prediction`` None means it accepts the tree."""

    prediction: Prediction | None
    fact: str = ""  # the schema fact that decides it, e.g. "migrate/arg-type/uri is mandatory"
    decided: bool = True
    rejects: bool = False  # not decided, but rejected whatever the undecided values

    @property
    def accepted(self) -> bool:
        return self.decided and self.prediction is None

    @property
    def refused(self) -> bool:
        """True when the visitor rejects the tree, whichever error it names."""
        return (self.decided and self.prediction is not None) or self.rejects


@dataclass(frozen=True)
class _Problem:
    """One problem of a tree: the error, the fact, and whether it is certain (a
    member the schema decides) or only possible (a value it cannot judge)."""

    prediction: Prediction
    fact: str
    certain: bool = True


@dataclass(frozen=True)
class _Found:
    """The problems a visit met, in visiting order; ``certain`` when the tree is
    rejected whatever the undecided values (the walk stopped at a certain one)."""

    problems: tuple[_Problem, ...] = ()
    certain: bool = False

    def then(self, other: _Found) -> _Found:
        return _Found(self.problems + other.problems, other.certain)


NOTHING = _Found()


def _json_type(value: JSON) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, int):
        return "int"
    if isinstance(value, float):
        return "number"
    if isinstance(value, str):
        return "string"
    if isinstance(value, list):
        return "array"
    return "object"


def _certain(prediction: Prediction, fact: str) -> _Found:
    return _Found((_Problem(prediction, fact),), True)


def _out_of_range(path: str, name: str, query: str) -> _Found:
    names = "|".join(sorted({re.escape(path), re.escape(name or path)}))
    pattern = (f"Parameter '(?:{names})' expects \\S+|"
               f"Invalid parameter type for '{re.escape(path)}', expected: \\S+")
    return _Found((_Problem(Prediction(pattern=pattern, why=RANGE_WHY),
                            f"{query} is an integer whose C type introspection does not "
                            "show, so its range is unknown", certain=False),))


class _Visitor:
    def __init__(self, walker: TypeWalker, ordered: bool) -> None:
        self.walker = walker
        self.ordered = ordered

    def value(self, type_name: str, value: JSON, path: str, name: str, query: str) -> _Found:
        """The problems of ``value`` as a ``type_name`` at ``path`` (member ``name``,
        schema place ``query``)."""
        walker = self.walker
        entry = walker.entry(type_name)
        meta = str(entry["meta-type"])
        jtype = _json_type(value)
        kind = str(entry["json-type"]) if meta == "builtin" else meta
        if jtype not in walker.accepts(type_name):
            return _certain(predict.wrong_type(path, kind), f"{query} takes {_article(kind)}")
        if meta == "alternate":
            branch = next(str(b["type"]) for b in entry["members"]
                          if jtype in walker.accepts(str(b["type"])))
            return self.value(branch, value, path, name, query)
        if meta == "enum":
            if value not in walker.enum_values(type_name):
                return _certain(predict.bad_enum(name, str(value)), f"{query}/^{value} is false")
            return NOTHING
        if meta == "array":
            element = str(entry["element-type"])
            return self.sequence([(element, item, f"{path}[{i}]", "", query)
                                  for i, item in enumerate(json_list(value))])
        if meta == "object":
            return self.object(type_name, json_object(value), path, query)
        if kind == "int" and jtype == "int" and value not in SAFE_INT:
            return _out_of_range(path, name, query)
        return NOTHING

    def sequence(self, items: list[tuple[str, JSON, str, str, str]]) -> _Found:
        """Values visited in this order: each one's problems until a certain one."""
        found = NOTHING
        for item in items:
            found = found.then(self.value(*item))
            if found.certain:
                break
        return found

    def members(self, entry: Entry, value: JSONObject, path: str,
                where: str) -> tuple[_Found, str | None, JSON]:
        """The problems of one entry's members (a union's base, or a branch) and the
        branch its tag chooses. In QEMU's order the first certain problem ends the
        walk; in another order every member's problem may be the first."""
        found, branch, case = NOTHING, None, None
        everything: list[_Found] = []
        for member in entry.get("members") or ():
            mname = str(member["name"])
            mpath = f"{path}.{mname}" if path else mname
            mquery = f"{where}/{mname}"
            if mname not in value:
                one = NOTHING if "default" in member else _certain(
                    predict.missing(mpath), f"{mquery} is mandatory")
            else:
                one = self.value(str(member["type"]), value[mname], mpath, mname, mquery)
            if self.ordered:
                found = found.then(one)
                if found.certain:
                    return found, None, None
            else:
                everything.append(one)
            if mname == entry.get("tag") and mname in value and not one.problems:
                case = value[mname]
                branch = next((str(v["type"]) for v in entry.get("variants") or ()
                               if v["case"] == case), None)
        if not self.ordered:
            found = _Found(tuple(p for f in everything for p in f.problems),
                           any(f.certain for f in everything))
        return found, (None if found.certain else branch), case

    def object(self, type_name: str, value: JSONObject, path: str, query: str) -> _Found:
        """The problems of an object: its members in schema order (a union's branch
        after its base), then its unknown members."""
        known: list[str] = []
        found = NOTHING
        entry: Entry | None = self.walker.entry(type_name)
        where = query
        while entry is not None:
            known += [str(m["name"]) for m in entry.get("members") or ()]
            mine, branch, case = self.members(entry, value, path, where)
            found = found.then(mine)
            if found.certain:
                return found
            entry = self.walker.entry(branch) if branch else None
            where = f"{where}/+{case}" if branch else where
        unknown = [k for k in value if k not in known]
        if len(unknown) == 1:
            upath = f"{path}.{unknown[0]}" if path else unknown[0]
            return found.then(_certain(predict.unexpected(upath),
                                       f"{where} has no member {unknown[0]}"))
        if unknown:
            paths = [re.escape(f"{path}.{u}" if path else u) for u in sorted(unknown)]
            pred = Prediction(pattern=f"Parameter '(?:{'|'.join(paths)})' is unexpected",
                              why=MULTI_UNKNOWN_WHY)
            return found.then(_certain(pred, f"{where} has none of the members "
                                             f"{', '.join(unknown)}"))
        return found


def _article(kind: str) -> str:
    word = {"int": "an integer", "enum": "an enum (a string)", "alternate": "an alternate",
            "object": "an object", "array": "an array", "value": "any value"}
    return word.get(kind, f"a {kind}")


def either(predictions: list[Prediction]) -> Prediction:
    """One prediction that matches what any of ``predictions`` matches."""
    if len(predictions) == 1:
        return predictions[0]
    parts = dict.fromkeys(p.pattern if p.desc is None else re.escape(p.desc)
                          for p in predictions)
    return Prediction(pattern="|".join(f"(?:{p})" for p in parts), why=EITHER_WHY)


def _answer(found: _Found) -> Answer:
    problems = found.problems
    if not problems:
        return Answer(None, ACCEPTED_FACT)
    if found.certain and len(problems) == 1:
        return Answer(problems[0].prediction, problems[0].fact)
    pred = either([p.prediction for p in problems])
    if found.certain:
        sure = [p.fact for p in problems if p.certain]
        maybe = [p.fact for p in problems if not p.certain]
        fact = "; ".join(sure) + (f" (whatever the values it cannot judge: {'; '.join(maybe)})"
                                  if maybe else " (which QEMU names first is not known)")
        return Answer(pred, fact, decided=False, rejects=True)
    return Answer(pred, "; ".join(p.fact for p in problems), decided=False)


def visit(index: SchemaIndex, command: str, arguments: JSONObject,
          ordered: bool = True) -> Answer:
    """The input visitor's answer to ``command`` with ``arguments`` in ``index``.
    SchemaError if the schema has no such command (QEMU would say CommandNotFound)."""
    walker = TypeWalker(index)
    try:
        found = _Visitor(walker, ordered).object(walker.arg_type(command), arguments, "",
                                                 f"{command}/arg-type")
    except RecursionError as exc:
        raise SchemaError(f"the argument tree of {command} nests too deeply", index.source) from exc
    return _answer(found)
