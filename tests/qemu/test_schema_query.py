"""libvirt-style schema queries on the real provisioned builds."""

from __future__ import annotations

from typing import Any

import pytest

from qmpcompat.cli import main
from qmpcompat.errors import SchemaError
from qmpcompat.schema import SchemaIndex, parse_query, schema_get, schema_has
from qmpcompat.schema.sources.live import introspect
from qmpcompat.schema.sources.resolve import pick_build, provisioned_builds


@pytest.fixture(scope="module")
def builds() -> list[Any]:
    found = provisioned_builds()
    if not found:
        pytest.skip("no provisioned QEMU builds")
    return found


def index_of(builds: list[Any], version: str) -> SchemaIndex:
    return SchemaIndex(introspect(pick_build(version, builds)), version)


# (query, holds on 7.2, holds on 10.0, holds on 11.1), as observed on the Debian builds.
OBSERVED = [
    ("migrate-incoming/arg-type/channels", False, True, True),
    ("migrate-incoming/arg-type/*uri", False, True, True),
    ("migrate-incoming/arg-type/uri", True, True, True),
    ("migrate/arg-type/*uri", False, True, True),
    ("migrate/arg-type/channels/channel-type/^main", False, True, True),
    ("migrate/arg-type/channels/addr/+file", False, True, True),
    ("migrate/arg-type/channels/addr/+socket/+unix", False, True, True),
    ("migrate-incoming/arg-type/channels/channel-type/^cpr", False, True, True),
    ("migrate/arg-type/channels/addr/+socket/+unix/path/!string", False, True, True),
    ("migrate/arg-type/channels/addr/+socket/+unix/path/!int", False, False, False),
    ("migrate/arg-type/*blk", True, False, False),
    ("migrate/arg-type/nosuchmember", False, False, False),
    ("no-such-command/arg-type", False, False, False),
]


@pytest.mark.parametrize(("query", "v72", "v100", "v111"), OBSERVED, ids=[q[0] for q in OBSERVED])
def test_queries_on_real_builds(builds: list[Any], query: str, v72: bool, v100: bool,
                                v111: bool) -> None:
    for version, want in (("7.2", v72), ("10.0", v100), ("11.1", v111)):
        assert schema_has(index_of(builds, version), query) is want, version


def test_get_returns_the_entry_reached(builds: list[Any]) -> None:
    index = index_of(builds, "11.1")
    entry = schema_get(index, "migrate/arg-type/channels/channel-type")
    assert entry is not None and entry["meta-type"] == "enum"
    assert "main" in entry["values"]
    array = schema_get(index, "migrate/arg-type")
    assert array is not None and array["meta-type"] == "object"
    assert schema_get(index, "migrate") == index.get("migrate")


def test_optional_marker_requires_default(builds: list[Any]) -> None:
    # 7.2: migrate-incoming's uri is mandatory, migrate's blk optional.
    index = index_of(builds, "7.2")
    assert schema_has(index, "migrate-incoming/arg-type/uri")
    assert not schema_has(index, "migrate-incoming/arg-type/*uri")


def test_features_on_entries_and_members(builds: list[Any]) -> None:
    index = index_of(builds, "11.1")
    deprecated = [e for e in index.entries.values() if e.get("meta-type") == "command"
                  and "deprecated" in (e.get("features") or ())]
    assert deprecated, "11.1 has deprecated commands"
    assert schema_has(index, f"{deprecated[0]['name']}/$deprecated")
    assert not schema_has(index, "migrate/$deprecated")


def test_alternates_are_tried_branch_by_branch() -> None:
    entries = [
        {"name": "cmd", "meta-type": "command", "arg-type": "A", "ret-type": "B"},
        {"name": "A", "meta-type": "object", "members": [{"name": "x", "type": "ALT"}]},
        {"name": "ALT", "meta-type": "alternate", "members": [{"type": "str"}, {"type": "E"}]},
        {"name": "E", "meta-type": "enum", "values": ["on"]},
        {"name": "str", "meta-type": "builtin", "json-type": "string"},
        {"name": "B", "meta-type": "object", "members": []},
    ]
    index = SchemaIndex(entries)
    assert schema_has(index, "cmd/arg-type/x/^on")
    assert not schema_has(index, "cmd/arg-type/x/^off")
    assert schema_has(index, "cmd/arg-type/x/!string")


@pytest.mark.parametrize("query", ["", "/arg-type", "migrate//uri", "migrate/arg-type/^x/y",
                                   "migrate/arg-type/#x", "migrate/arg-type/+"])
def test_bad_syntax_raises(query: str) -> None:
    with pytest.raises(SchemaError):
        parse_query(query)


def test_space_escapes_a_leading_non_letter() -> None:
    root, steps = parse_query("cmd/arg-type/ 9p")
    assert root == "cmd" and steps[-1].name == "9p" and steps[-1].kind == ""


def test_cli_query_on_binary_path_and_exit_codes(builds: list[Any],
                                                 capsys: pytest.CaptureFixture[str]) -> None:

    binary = pick_build("7.2", builds).binary
    assert main(["query", binary, "migrate/arg-type/*blk"]) == 0
    assert main(["query", binary, "migrate/arg-type/channels"]) == 1
    assert capsys.readouterr().out.splitlines()[-1] == "migrate/arg-type/channels: false"
    assert main(["query", "11.1", "migrate/arg-type/^x/y"]) == 2
