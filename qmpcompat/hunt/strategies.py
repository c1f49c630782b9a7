"""Hypothesis strategies for schema-valid argument trees of a command.

Every shape of every object (so every union branch), every enum value, optional
members absent and present, lists of zero, one and several elements and of one
element twice, and, for scalars, the boundary catalogue of
``qmpcompat.derive.values``: strings by member name (addresses only on loopback,
unix and file paths under the case's ``{tmpdir}``, exec argvs that are the
harness's sink commands or cannot run anything), empty, long, non-ASCII and
control-character strings, the limits of each integer width. Shrinking goes toward fewer optional members,
shorter lists, earlier branches and earlier catalogue entries.
"""

from __future__ import annotations

from hypothesis import strategies as st

from qmpcompat.derive.shapes import Shape, TypeWalker
from qmpcompat.derive.values import (
    ARGS_CATALOGUE,
    INT_BOUNDARIES,
    NUMBER_BOUNDARIES,
    PLAIN_STRINGS,
    STRING_CATALOGUE,
)
from qmpcompat.errors import SchemaError
from qmpcompat.types import JSON, JSONObject

MAX_LIST = 3
MAX_DEPTH = 12


class TreeStrategies:
    """Strategies over one schema, built once per (type, member name)."""

    def __init__(self, walker: TypeWalker) -> None:
        self.walker = walker
        self._memo: dict[tuple[str, str], st.SearchStrategy[JSON]] = {}
        self._objects: dict[tuple[str, str], st.SearchStrategy[JSONObject]] = {}  # objects

    def arguments(self, command: str) -> st.SearchStrategy[JSONObject]:
        """Schema-valid argument objects of ``command``."""
        return self._object(self.walker.arg_type(command), "", 0)

    def of(self, type_name: str, member: str, depth: int = 0) -> st.SearchStrategy[JSON]:
        """Valid values of ``type_name`` for a member called ``member``."""
        key = (type_name, member)
        if key not in self._memo:
            if depth > MAX_DEPTH:
                raise SchemaError(f"type {type_name!r} nests too deeply to explore")
            self._memo[key] = self._build(type_name, member, depth)
        return self._memo[key]

    def _build(self, type_name: str, member: str, depth: int) -> st.SearchStrategy[JSON]:
        entry = self.walker.entry(type_name)
        meta = entry["meta-type"]
        if meta == "builtin":
            return _scalar(str(entry["json-type"]), member)
        if meta == "enum":
            return st.sampled_from(self.walker.enum_values(type_name))
        if meta == "array":
            if member == "args":
                argvs: list[JSON] = [list(a) for a in ARGS_CATALOGUE]
                return st.sampled_from(argvs)
            element = self.of(str(entry["element-type"]), member, depth + 1)
            # empty, one, several, and one element twice (duplicates)
            return st.one_of(st.lists(element, max_size=MAX_LIST), element.map(lambda e: [e, e]))
        if meta == "alternate":
            return st.one_of([self.of(str(b["type"]), member, depth + 1)
                              for b in entry.get("members") or ()])
        return self._object(type_name, member, depth)

    def _object(self, type_name: str, member: str, depth: int) -> st.SearchStrategy[JSONObject]:
        """Valid values of the object type ``type_name``: every shape (each union branch)."""
        key = (type_name, member)
        if key not in self._objects:
            self._objects[key] = st.one_of([self._shape(s, depth)
                                            for s in self.walker.shapes(type_name)])
        return self._objects[key]

    def _shape(self, shape: Shape, depth: int) -> st.SearchStrategy[JSONObject]:
        tags = dict(shape.tags)
        required = {m.name: st.just(tags[m.name]) if m.name in tags
                    else self.of(m.type, m.name, depth + 1) for m in shape.required}
        optional = {m.name: self.of(m.type, m.name, depth + 1)
                    for m in shape.members if m.optional}
        return st.fixed_dictionaries(required, optional=optional)


def _scalar(json_type: str, member: str) -> st.SearchStrategy[JSON]:
    if json_type == "string":
        return st.sampled_from(STRING_CATALOGUE.get(member, PLAIN_STRINGS))
    if json_type == "int":
        return st.sampled_from(INT_BOUNDARIES) | st.integers(min_value=-2, max_value=70000)
    if json_type == "number":
        return st.sampled_from(NUMBER_BOUNDARIES) | st.integers(min_value=-2, max_value=2**40)
    if json_type == "boolean":
        return st.booleans()
    if json_type == "null":
        return st.none()
    return st.sampled_from(PLAIN_STRINGS)  # 'value' (any): a string is as good as any
