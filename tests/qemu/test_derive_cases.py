"""Deriving cases from the real builds' schemas: the walk, the ids, the safety
of every tree, and the prediction rules (no case is run here)."""

from __future__ import annotations

import json
import re

import pytest

from qmpcompat.derive import predict
from qmpcompat.derive.cases import KINDS, derive
from qmpcompat.derive.shapes import TypeWalker
from qmpcompat.derive.values import UNKNOWN_MEMBER
from qmpcompat.provision import QemuBuild
from qmpcompat.safety import Policy, command_problems
from qmpcompat.schema.model.query import SchemaIndex
from qmpcompat.schema.sources.live import SchemaCache
from qmpcompat.vectors.model import COMMANDS

SCHEMAS = SchemaCache()


def _index(build: QemuBuild) -> SchemaIndex:
    return SchemaIndex(SCHEMAS.entries(build))


def test_derivation_is_deterministic_with_unique_ids(builds: list[QemuBuild]) -> None:
    for build in builds:
        first = derive(_index(build), COMMANDS)
        again = derive(_index(build), COMMANDS)
        assert [c.id for c in first] == [c.id for c in again]
        assert [json.dumps(c.arguments, sort_keys=True) for c in first] == \
               [json.dumps(c.arguments, sort_keys=True) for c in again]
        ids = [c.id for c in first]
        assert len(ids) == len(set(ids)), build.label
        assert all(re.fullmatch(r"D-[a-z-]+-[a-z]+-[\w.+=-]+", i) for i in ids), build.label
        assert {c.kind for c in first} <= set(KINDS)


def test_every_union_branch_and_required_member_is_reached(newest: QemuBuild) -> None:
    index = _index(newest)
    walker = TypeWalker(index)
    cases = derive(index, ["migrate"])
    channel = walker.entry(walker.entry(walker.entry(walker.arg_type("migrate"))["members"][1]
                                        ["type"])["element-type"])
    addr = next(m["type"] for m in channel["members"] if m["name"] == "addr")
    for shape in walker.shapes(addr):
        for member in shape.required:
            if member.name in dict(shape.tags):
                continue
            site = f"channels.0.addr{shape.label(member.name)}.{member.name}"
            assert f"D-migrate-missing-{site}" in {c.id for c in cases}, site
    transports = {case for shape in walker.shapes(addr) for tag, case in shape.tags
                  if tag == "transport"}
    assert transports == set(walker.enum_values(walker.entry(addr)["members"][0]["type"]))


def test_trees_are_safe_and_differ_from_valid_in_one_place(builds: list[QemuBuild]) -> None:
    for build in builds:
        for case in derive(_index(build), COMMANDS):
            text = json.dumps(case.arguments)
            problems = command_problems(case.command, case.arguments, Policy.template())
            if case.kind == "type" and re.search(r"\.args(\.0)?=", case.id):
                # an exec argv of the wrong type is refused by QEMU before it runs anything
                assert all("exec argv" in p for p in problems), (case.id, problems)
            else:
                assert not problems, (case.id, problems)
            if case.kind != "unexpected" and "missing+unexpected" not in case.id:
                assert UNKNOWN_MEMBER not in text, case.id


def test_prediction_rules() -> None:
    assert predict.missing("channels[0].addr.path").desc == \
        "Parameter 'channels[0].addr.path' is missing"
    assert predict.bad_enum("transport", "x").desc == \
        "Parameter 'transport' does not accept value 'x'"
    assert predict.wrong_type("uri", "string").desc == \
        "Invalid parameter type for 'uri', expected: string"
    assert predict.wrong_type("a.b", "enum").desc == "Invalid parameter type for 'a.b', expected: string"
    ints = predict.wrong_type("channels[0].addr.to", "int")
    assert ints.matches("GenericError", "Parameter 'channels[0].addr.to' expects uint64")
    assert ints.matches("GenericError",
                        "Invalid parameter type for 'channels[0].addr.to', expected: integer")
    assert not ints.matches("GenericError", "Parameter 'to' expects uint64")
    assert not ints.matches("CommandNotFound", "Parameter 'channels[0].addr.to' expects uint64")
    assert ints.why


@pytest.mark.parametrize("command", COMMANDS)
def test_case_counts_follow_the_schema(builds: list[QemuBuild], command: str) -> None:
    """A binary whose schema has more members gets more cases; 7.2 (uri only) the fewest."""
    counts = {b.label: len(derive(_index(b), [command])) for b in builds}
    oldest = builds[0].label
    assert all(counts[oldest] < n for label, n in counts.items() if label != oldest), counts


def test_the_safety_gate_knows_every_member_of_the_default_builds(builds: list[QemuBuild]) -> None:
    """Every shape of both commands in every default build passes the gate's
    allow-list, so no derived case is left out (a new build's new member shows
    up here, to be read and allowed)."""
    for build in builds:
        refused: list[str] = []
        assert derive(_index(build), COMMANDS, refused)
        assert refused == [], (build.label, refused)


def test_a_member_the_gate_does_not_know_gives_no_cases(newest: QemuBuild) -> None:
    entries = json.loads(json.dumps(SCHEMAS.entries(newest)))
    target = next(e for e in entries if e["meta-type"] == "object"
                  and {m["name"] for m in e.get("members", [])} >= {"path", "abstract", "tight"})
    target["members"].append({"name": "helper", "type": "str"})  # required, unknown to the gate
    refused: list[str] = []
    cases = derive(SchemaIndex(entries), ["migrate"], refused)
    assert any("member 'helper' is not on the safety allow-list" in r for r in refused), refused
    assert not any("helper" in json.dumps(c.arguments) for c in cases)
