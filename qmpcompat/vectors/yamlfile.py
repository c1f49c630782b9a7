"""Reading YAML with line numbers, so every complaint can name file and line."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

from qmpcompat.errors import VectorError


class LineDict(dict[str, Any]):
    """A mapping that remembers the line it started on (1-based)."""

    line: int = 0


# libyaml's parser when PyYAML has it (it does in PyPI's wheels): about ten
# times faster; the constructors below stay ours.
_Base: type = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


class _Loader(_Base):  # type: ignore[misc,valid-type]
    pass


def _construct_mapping(loader: Any, node: yaml.MappingNode) -> LineDict:
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


_CACHE: dict[tuple[str, int, int], Any] = {}


def load_yaml(path: Path, shown: str | None = None) -> Any:
    """Parse ``path``; a syntax error becomes a VectorError naming ``shown``
    (default: the path) and the line. A file is parsed once per process while
    it is unchanged: callers must not modify what this returns."""
    shown = shown or str(path)
    try:
        st = path.stat()
        key = (str(path.resolve()), st.st_mtime_ns, st.st_size)
    except OSError:
        key = None
    if key in _CACHE:
        return _CACHE[key]
    data = _parse(path, shown)
    if key is not None:
        _CACHE[key] = data
    return data


def _parse(path: Path, shown: str) -> Any:
    try:
        text = path.read_text()
    except OSError as exc:
        raise VectorError(f"cannot read: {exc.strerror}", shown) from exc
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


def line_of(obj: object) -> int | None:
    return getattr(obj, "line", None) or None


def dump_canonical(data: Any) -> str:
    """The canonical text of a vector file: block style, keys in the order given,
    two-space indents, unicode kept, no line wrapping."""

    class Dumper(yaml.SafeDumper):
        def increase_indent(self, flow: bool = False, indentless: bool = False) -> None:
            super().increase_indent(flow, False)

    def represent_list(dumper: yaml.SafeDumper, data: list[Any]) -> yaml.Node:
        flow = bool(data) and all(not isinstance(x, (dict, list)) for x in data)
        return dumper.represent_sequence("tag:yaml.org,2002:seq", data, flow_style=flow)

    Dumper.add_representer(list, represent_list)

    def plain(obj: Any) -> Any:
        if isinstance(obj, dict):
            return {k: plain(v) for k, v in obj.items()}
        if isinstance(obj, list):
            return [plain(v) for v in obj]
        return obj

    return yaml.dump(plain(data), Dumper=Dumper, sort_keys=False, allow_unicode=True,
                     default_flow_style=False, width=1 << 16, indent=2)
