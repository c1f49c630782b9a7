"""Deeply nested types: the differ works up to its bound and refuses beyond it
with one clear error, never Python's recursion limit."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from qmpcompat.cli import main
from qmpcompat.errors import SchemaError
from qmpcompat.schema.differ.compare import compare, load
from qmpcompat.schema.differ.timeline import facts
from qmpcompat.schema.model.normalize import MAX_DEPTH
from qmpcompat.schema.sources.input import SchemaInput


def nested(levels: int, leaf: str = "leaf") -> list[dict[str, Any]]:
    """``migrate`` whose argument nests ``levels`` object types, the last holding ``leaf``."""
    entries: list[dict[str, Any]] = [
        {"name": "migrate", "meta-type": "command", "arg-type": "t0", "ret-type": "empty"},
        {"name": "empty", "meta-type": "object", "members": []},
        {"name": "str", "meta-type": "builtin", "json-type": "string"}]
    entries += [{"name": f"t{i}", "meta-type": "object", "members": [{"name": "x", "type": f"t{i + 1}"}]}
                for i in range(levels - 1)]
    entries.append({"name": f"t{levels - 1}", "meta-type": "object",
                    "members": [{"name": leaf, "type": "str"}]})
    return entries


def schema(entries: list[dict[str, Any]]) -> SchemaInput:
    return SchemaInput("nested", "nested", "snapshot", entries, "1.0.0")


def test_deep_but_allowed_nesting_is_compared() -> None:
    levels = MAX_DEPTH - 2  # the command and the builtin leaf take a level each
    old, new = load(schema(nested(levels))), load(schema(nested(levels, "other")))
    paths = {f.path for f in compare(old, new).findings}
    deep = "migrate/arg-type/" + "x/" * (levels - 1)
    assert paths == {deep + "leaf", deep + "other"}
    assert deep + "other" in facts(new.model)


@pytest.mark.parametrize("levels", [MAX_DEPTH - 1, 200, 5000])
def test_deeper_nesting_is_one_clear_error(levels: int) -> None:
    with pytest.raises(SchemaError, match=f"types nest more than {MAX_DEPTH} levels deep"
                                          r" \(migrate -> t0 -> t1 -> \.\.\."):
        load(schema(nested(levels)))


def test_cli_refuses_it(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    for name in ("a", "b"):
        (tmp_path / f"{name}.json").write_text(json.dumps(nested(300, name)))
    assert main(["diff", str(tmp_path / "a.json"), str(tmp_path / "b.json"), "--no-files"]) == 2
    err = capsys.readouterr().err
    assert "types nest more than" in err and "Traceback" not in err
