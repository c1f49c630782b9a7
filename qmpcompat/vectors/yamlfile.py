"""Reading YAML with line numbers, so every complaint can name file and line.

Vector files are JSON-like data: aliases (``&a`` / ``*a``, which can make a few
hundred bytes grow to gigabytes) are refused as a YAML error, mapping keys must
be strings, and a value JSON cannot hold (a date, binary, a set, NaN or an
infinity) is read as a ``NonJson`` that the vector reader refuses with the
file, line and vector id.
"""

from __future__ import annotations

import copy
import math
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import yaml

from qmpcompat import datafile
from qmpcompat.errors import VectorError


class LineDict(dict[str, object]):
    """A mapping that remembers the line it started on (1-based)."""

    line: int = 0


# libyaml's parser when PyYAML has it (it does in PyPI's wheels): about ten
# times faster; the constructors below stay ours.
_Base: type = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


@dataclass(frozen=True)
class NonJson:
    """A YAML value JSON cannot hold: its tag (e.g. ``timestamp``), text and line."""

    kind: str
    text: str
    line: int

    def __str__(self) -> str:
        return f"a YAML {self.kind} ({self.text!r}) is not JSON data"


class _Loader(_Base):  # type: ignore[misc]
    def construct_object(self, node: yaml.Node, deep: bool = False) -> object:
        if node in self.constructed_objects:  # a second use of one node: an alias
            raise yaml.constructor.ConstructorError(
                None, None, "YAML aliases (*name) are not allowed: write the value out",
                node.start_mark)
        return super().construct_object(node, deep)


def _non_json(kind: str) -> Callable[[_Loader, yaml.Node], NonJson]:
    def construct(loader: _Loader, node: yaml.Node) -> NonJson:
        text = node.value if isinstance(node, yaml.ScalarNode) else kind
        return NonJson(kind, str(text)[:40], node.start_mark.line + 1)
    return construct


def _construct_float(loader: _Loader, node: yaml.ScalarNode) -> float | NonJson:
    value = float(loader.construct_yaml_float(node))
    return value if math.isfinite(value) else _non_json("float")(loader, node)


for _tag in ("timestamp", "binary", "set", "omap", "pairs"):
    _Loader.add_constructor(f"tag:yaml.org,2002:{_tag}", _non_json(_tag))
_Loader.add_constructor("tag:yaml.org,2002:float", _construct_float)


def _construct_mapping(loader: _Loader, node: yaml.MappingNode) -> LineDict:
    for key, _value in node.value:
        if not (isinstance(key, yaml.ScalarNode) and key.tag == "tag:yaml.org,2002:str"):
            raise yaml.constructor.ConstructorError(
                None, None, "mapping keys must be strings (quote it)", key.start_mark)
    keys = [k.value for k, _v in node.value if isinstance(k, yaml.ScalarNode)]
    dupes = {k for k in keys if keys.count(k) > 1}
    if dupes:
        raise yaml.constructor.ConstructorError(
            None, None, f"duplicate key {sorted(dupes)[0]!r}", node.start_mark)
    loader.flatten_mapping(node)
    data = LineDict(loader.construct_pairs(node, deep=True))
    data.line = node.start_mark.line + 1
    return data


_Loader.add_constructor(yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG, _construct_mapping)


_CACHE: dict[tuple[str, int, int], object] = {}


def load_yaml(path: Path, shown: str | None = None) -> object:
    """Parse ``path`` (a document of any shape: callers check it, most through
    the vector format's JSON Schema); a syntax error becomes a VectorError naming
    ``shown`` (default: the path) and the line. A file is parsed once per process
    while it is unchanged: callers must not modify what this returns."""
    shown = shown or str(path)
    try:
        st = path.lstat()  # a link is refused by _parse, never served from the cache
        key = (str(path.absolute()), st.st_mtime_ns, st.st_size)
    except OSError:
        key = None
    if key in _CACHE:
        return _CACHE[key]
    data = _parse(path, shown)
    if key is not None:
        _CACHE[key] = data
    return data


def editable_yaml(path: Path, shown: str | None = None) -> object:
    """``load_yaml``'s parse of ``path`` as a copy of its own, for a caller that
    changes it and writes it back (the parse itself is shared in the process)."""
    return copy.deepcopy(load_yaml(path, shown))


def _parse(path: Path, shown: str) -> object:
    try:
        text = datafile.read_text(path)
    except OSError as exc:
        raise VectorError(f"cannot read: {exc.strerror}", shown) from exc
    except UnicodeDecodeError as exc:
        raise VectorError(f"not UTF-8 text (byte {exc.start})", shown) from exc
    try:
        return yaml.load(text, Loader=_Loader)
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        line = mark.line + 1 if mark else None
        raise VectorError(f"YAML error: {exc.problem or exc}", shown, line) from exc
    except yaml.YAMLError as exc:
        raise VectorError(f"YAML error: {exc}", shown) from exc
    except RecursionError as exc:
        raise VectorError("YAML nesting too deep to read", shown) from exc


def comment_lines(text: str) -> list[int]:
    """The lines (1-based) holding a YAML comment after the file's leading ``#``
    lines: what the canonical form cannot keep. Empty if the text does not parse."""
    try:
        tokens = list(yaml.scan(text, Loader=_Base))
    except yaml.YAMLError:
        return []
    covered = bytearray(len(text) + 1)
    for token in tokens:
        for i in range(token.start_mark.index, token.end_mark.index):
            covered[i] = 1
    header = 0
    for line in text.splitlines(keepends=True):
        if not line.startswith("#"):
            break
        header += len(line)
    out = []
    for i, char in enumerate(text):
        if char == "#" and i >= header and not covered[i] and (i == 0 or text[i - 1].isspace()):
            out.append(text.count("\n", 0, i) + 1)
    return sorted(set(out))


def line_of(obj: object) -> int | None:
    return getattr(obj, "line", None) or None


def dump_canonical(data: object) -> str:
    """The canonical text of a vector file: block style, keys in the order given,
    two-space indents, unicode kept, no line wrapping."""

    class Dumper(yaml.SafeDumper):
        def increase_indent(self, flow: bool = False, indentless: bool = False) -> None:
            super().increase_indent(flow, False)

    def represent_list(dumper: yaml.SafeDumper, data: list[object]) -> yaml.Node:
        flow = bool(data) and all(not isinstance(x, (dict, list)) for x in data)
        return dumper.represent_sequence("tag:yaml.org,2002:seq", data, flow_style=flow)

    Dumper.add_representer(list, represent_list)
    Dumper.add_representer(NonJson, lambda dumper, obj: dumper.represent_scalar(
        f"tag:yaml.org,2002:{obj.kind}", obj.text))

    def plain(obj: object) -> object:
        if isinstance(obj, dict):
            return {k: plain(v) for k, v in obj.items()}
        if isinstance(obj, list):
            return [plain(v) for v in obj]
        return obj

    return yaml.dump(plain(data), Dumper=Dumper, sort_keys=False, allow_unicode=True,
                     default_flow_style=False, width=1 << 16, indent=2)
