"""Normalization: source and introspection agree; names, order and docs never matter."""

from __future__ import annotations

import copy
import random
import shutil
from pathlib import Path
from typing import Any

import pytest
from helpers.defaults import default_versions

from qmpcompat.errors import SourceUnavailable
from qmpcompat.schema.differ.compare import load
from qmpcompat.schema.differ.diff import diff_models
from qmpcompat.schema.model.normalize import all_roots, normalize
from qmpcompat.schema.model.query import SchemaIndex
from qmpcompat.schema.sources.debsrc import debian_qapi_dir, source_version
from qmpcompat.schema.sources.input import SchemaInput
from qmpcompat.schema.sources.live import from_build
from qmpcompat.schema.sources.resolve import load_input, pick_build
from qmpcompat.schema.sources.snapshot import snapshot

VERSIONS = default_versions()


def source_or_skip(binary: str, builds: list[Any]) -> SchemaInput:
    """The Debian source package the build of version ``binary`` was built from,
    or a skip when the archive does not serve that source."""
    try:
        return load_input(f"debian:{source_version(pick_build(binary, builds).package)}")
    except SourceUnavailable as exc:
        pytest.skip(str(exc))


@pytest.mark.parametrize("binary", VERSIONS)
def test_source_and_introspection_agree(builds: list[Any], binary: str) -> None:
    introspected = load(from_build(pick_build(binary, builds)))
    parsed = load(source_or_skip(binary, builds))
    assert introspected.model == parsed.model
    assert diff_models(introspected.model, parsed.model) == []


def _scramble(entries: list[dict[str, Any]], seed: int) -> list[dict[str, Any]]:
    """The same schema with fresh masked names and shuffled members and entries."""
    rng = random.Random(seed)
    keep = {e["name"] for e in entries if e["meta-type"] in ("builtin", "command", "event")}
    others = [e["name"] for e in entries if e["name"] not in keep]
    fresh = [str(n) for n in rng.sample(range(10000, 99999), len(others))]
    names = dict(zip(others, fresh, strict=True)) | {n: n for n in keep}

    def rename(t: str) -> str:
        return f"[{rename(t[1:-1])}]" if t.startswith("[") and t not in names else names[t]

    out = []
    for entry in copy.deepcopy(entries):
        entry["name"] = rename(entry["name"])
        for key in ("arg-type", "ret-type", "element-type"):
            if key in entry:
                entry[key] = rename(entry[key])
        for item in entry.get("members", []) + entry.get("variants", []):
            if "type" in item:
                item["type"] = rename(item["type"])
        for key in ("members", "variants", "values"):
            if key in entry:
                rng.shuffle(entry[key])
        out.append(entry)
    rng.shuffle(out)
    return out


@pytest.mark.parametrize("version", ["7.2", "11.1"])
def test_renumbered_names_and_order_never_matter(builds: list[Any], version: str) -> None:
    real = from_build(pick_build(version, builds)).entries
    index = SchemaIndex(real)
    scrambled = SchemaIndex(_scramble(real, seed=len(real)))
    roots = all_roots(index)
    assert diff_models(normalize(index, roots), normalize(scrambled, roots)) == []


def test_doc_only_edits_never_show(tmp_path: Path) -> None:
    base = debian_qapi_dir("10.0")[0]
    edited = tmp_path / "qapi"
    shutil.copytree(base, edited)
    text = (edited / "migration.json").read_text()
    text = text.replace("# @channels:", "# @channels: (reworded doc)\n#").replace(
        "{ 'command': 'migrate',", "# a new comment\n\n{ 'command': 'migrate',")
    (edited / "migration.json").write_text(text)
    assert load(load_input(str(edited))).model == load(load_input(str(base))).model


def test_integer_types_become_int() -> None:
    model = load(load_input("debian:10.0")).model
    file_args = model["MigrationChannel"]["members"]["addr"]["type"]["variants"]["file"]
    assert file_args["members"]["offset"]["type"] == "int"  # uint64 in the source


def test_model_shape_of_migrate(builds: list[Any]) -> None:
    model = load(from_build(pick_build("11.1", builds))).model
    migrate = model["migrate"]
    assert migrate["kind"] == "command"
    channels = migrate["arg"]["members"]["channels"]
    assert channels["optional"] is True
    assert channels["type"] == {"kind": "array", "element": {"kind": "ref",
                                                              "root": "MigrationChannel"}}
    addr = model["MigrationChannel"]["members"]["addr"]["type"]
    assert addr["tag"] == "transport"
    assert {"socket", "exec", "rdma", "file"} == set(addr["variants"])


def test_unions_drop_implicit_empty_branches() -> None:
    entries = [
        {"name": "c", "meta-type": "command", "arg-type": "U", "ret-type": "E0"},
        {"name": "U", "meta-type": "object", "tag": "t",
         "members": [{"name": "t", "type": "K"}],
         "variants": [{"case": "a", "type": "A"}, {"case": "b", "type": "E0"}]},
        {"name": "K", "meta-type": "enum", "values": ["a", "b"]},
        {"name": "A", "meta-type": "object", "members": [{"name": "x", "type": "str"}]},
        {"name": "E0", "meta-type": "object", "members": []},
        {"name": "str", "meta-type": "builtin", "json-type": "string"},
    ]
    model = normalize(SchemaIndex(entries), ["c"])
    assert set(model["c"]["arg"]["variants"]) == {"a"}


def test_snapshot_input_round_trips(builds: list[Any]) -> None:

    live = from_build(pick_build("10.0", builds))
    snap = snapshot(live)
    again = SchemaInput("snap", "snap", "snapshot", snap["entries"])
    assert load(again).model == load(live).model


@pytest.mark.parametrize("binary", VERSIONS)
def test_whole_schema_source_and_introspection_agree(builds: list[Any], binary: str) -> None:
    live = SchemaIndex(from_build(pick_build(binary, builds)).entries)
    parsed = SchemaIndex(source_or_skip(binary, builds).entries)
    roots = sorted(set(all_roots(live)) | set(all_roots(parsed)))
    assert diff_models(normalize(live, roots), normalize(parsed, roots)) == []
