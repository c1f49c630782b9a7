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
- ``Answer(None, decided=False)``: the schema cannot tell (an integer whose C
  type's range is not in introspection; a schema whose member order is unknown
  while two members of one object have problems).

A schema snapshot keeps members sorted by name, not in QEMU's order; pass
``ordered=False`` for one, and a tree with two problems in one object is left
undecided instead of guessed.
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


@dataclass(frozen=True)
class Answer:
    """The input visitor's answer: ``prediction`` None means it accepts the tree."""

    prediction: Prediction | None
    fact: str = ""  # the schema fact that decides it, e.g. "migrate/arg-type/uri is mandatory"
    decided: bool = True

    @property
    def accepted(self) -> bool:
        return self.decided and self.prediction is None


ACCEPTED_FACT = "every member is known, every mandatory one present, every type and value valid"


class _Problem(Exception):
    """The first error met; carries the answer up the walk."""

    def __init__(self, answer: Answer) -> None:
        super().__init__(answer.fact)
        self.answer = answer


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


class _Visitor:
    def __init__(self, walker: TypeWalker, ordered: bool) -> None:
        self.walker = walker
        self.ordered = ordered

    def value(self, type_name: str, value: JSON, path: str, name: str, query: str) -> None:
        """Visit ``value`` as a ``type_name`` at ``path`` (member ``name``, schema
        place ``query``); raise _Problem at the first error."""
        walker = self.walker
        entry = walker.entry(type_name)
        meta = str(entry["meta-type"])
        jtype = _json_type(value)
        kind = str(entry["json-type"]) if meta == "builtin" else meta
        if jtype not in walker.accepts(type_name):
            raise _Problem(Answer(predict.wrong_type(path, kind), f"{query} takes {_article(kind)}"))
        if meta == "alternate":
            branch = next(str(b["type"]) for b in entry["members"]
                          if jtype in walker.accepts(str(b["type"])))
            self.value(branch, value, path, name, query)
        elif meta == "enum":
            if value not in walker.enum_values(type_name):
                raise _Problem(Answer(predict.bad_enum(name, str(value)), f"{query}/^{value} is false"))
        elif meta == "array":
            element = str(entry["element-type"])
            for i, item in enumerate(json_list(value)):
                self.value(element, item, f"{path}[{i}]", "", query)
        elif meta == "object":
            self.object(type_name, json_object(value), path, query)
        elif kind == "int" and jtype == "int" and value not in SAFE_INT:
            raise _Problem(Answer(None, f"{query} is an integer whose C type introspection "
                                  "does not show, so its range is unknown", decided=False))

    def object(self, type_name: str, value: JSONObject, path: str, query: str) -> None:
        """Visit an object's members in schema order (a union's branch after its
        base), then report its unknown members."""
        known: list[str] = []
        problems: list[_Problem] = []
        entry: Entry | None = self.walker.entry(type_name)
        where = query
        while entry is not None:
            branch: str | None = None
            case: JSON = None
            for member in entry.get("members") or ():
                mname = str(member["name"])
                known.append(mname)
                mpath = f"{path}.{mname}" if path else mname
                mquery = f"{where}/{mname}"
                try:
                    if mname not in value:
                        if "default" not in member:
                            raise _Problem(Answer(predict.missing(mpath), f"{mquery} is mandatory"))
                        continue
                    self.value(str(member["type"]), value[mname], mpath, mname, mquery)
                except _Problem as problem:
                    if self.ordered:
                        raise
                    problems.append(problem)
                if mname == entry.get("tag") and mname in value:
                    case = value[mname]
                    branch = next((str(v["type"]) for v in entry.get("variants") or ()
                                   if v["case"] == case), None)
            if len(problems) > 1 or (problems and not problems[0].answer.decided):
                raise _Problem(Answer(None, f"{query}: member order unknown, two problems",
                                      decided=False))
            if problems:
                raise problems[0]
            entry = self.walker.entry(branch) if branch else None
            where = f"{where}/+{case}" if branch else where
        unknown = [k for k in value if k not in known]
        if len(unknown) == 1:
            upath = f"{path}.{unknown[0]}" if path else unknown[0]
            raise _Problem(Answer(predict.unexpected(upath), f"{where} has no member {unknown[0]}"))
        if unknown:
            paths = [re.escape(f"{path}.{u}" if path else u) for u in sorted(unknown)]
            pred = Prediction(pattern=f"Parameter '(?:{'|'.join(paths)})' is unexpected",
                              why=MULTI_UNKNOWN_WHY)
            raise _Problem(Answer(pred, f"{where} has none of the members {', '.join(unknown)}"))


def _article(kind: str) -> str:
    word = {"int": "an integer", "enum": "an enum (a string)", "alternate": "an alternate",
            "object": "an object", "array": "an array", "value": "any value"}
    return word.get(kind, f"a {kind}")


def visit(index: SchemaIndex, command: str, arguments: JSONObject,
          ordered: bool = True) -> Answer:
    """The input visitor's answer to ``command`` with ``arguments`` in ``index``.
    SchemaError if the schema has no such command (QEMU would say CommandNotFound)."""
    walker = TypeWalker(index)
    try:
        _Visitor(walker, ordered).object(walker.arg_type(command), arguments, "",
                                         f"{command}/arg-type")
    except _Problem as problem:
        return problem.answer
    except RecursionError as exc:
        raise SchemaError(f"the argument tree of {command} nests too deeply", index.source) from exc
    return Answer(None, ACCEPTED_FACT)
