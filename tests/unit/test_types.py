"""The shared types: levels, outcomes, versions, case ids, the case record, and
the results document's shapes against its JSON Schema."""

from __future__ import annotations

import json
import typing
from pathlib import Path

import pytest

from qmpcompat.resultdoc import (
    BasisJSON,
    BinaryJSON,
    CaseJSON,
    CaseRecord,
    ConsumerJSON,
    ConsumerMatrixJSON,
    EnvironmentJSON,
    GateFindingJSON,
    HistoryStepJSON,
    IndexJSON,
    InterruptedJSON,
    KnownDefectJSON,
    MatrixJSON,
    PairJSON,
    ProblemJSON,
    ResultsJSON,
    RunModesJSON,
    RunningJSON,
    ShardJSON,
    ShardsJSON,
    UnsteadyJSON,
)
from qmpcompat.types import (
    LEVELS,
    OUTCOMES,
    Level,
    Outcome,
    Version,
    at_least,
    case_id,
    label_order,
    qemu_id,
    split_case_id,
    strip_qemu_id,
    version_prefix,
)


def test_levels_order_and_names() -> None:
    assert LEVELS == ("info", "warning", "breaking")
    assert Level.BREAKING.at_least("warning") and not Level.INFO.at_least(Level.WARNING)
    assert at_least("warning", "warning") and not at_least("nonsense", "info")
    assert json.dumps({"level": Level.WARNING}) == '{"level": "warning"}'


def test_outcomes() -> None:
    assert OUTCOMES == ("passed", "failed", "xfailed", "skipped", "error")
    assert [o.bad for o in Outcome] == [False, True, False, False, True]
    assert Outcome("xfailed") == "xfailed" and {"passed": 1}[Outcome.PASSED] == 1


def test_version_parse_order_label() -> None:
    assert Version.parse("1:10.0.2+ds-2") == (1, 10, 0)  # the epoch is a number too
    assert Version.parse("10.0.13") == (10, 0, 13) and Version.parse("11") == (11, 0, 0)
    assert Version(7, 2, 22) < Version.parse("10.0.2") and Version(10, 0, 2).label == "10.0.2"
    assert Version(10, 2, 50).line == (10, 2)
    labels = ["11.1.3", "10.0.13-2", "7.2.22", "10.0.13", "qemu-10.0.2"]
    assert sorted(labels, key=label_order) == ["7.2.22", "qemu-10.0.2", "10.0.13", "10.0.13-2", "11.1.3"]


def test_case_ids_round_trip() -> None:
    assert qemu_id("10.0.13") == "qemu-10.0.13" and strip_qemu_id("qemu-10.0.13") == "10.0.13"
    for case, label in (("MI-0003", "11.1.3"), ("D-migrate-missing-uri", "10.0.13-2"),
                        ("D-migrate-incoming-order-channels.0.addr+rdma-missing", "7.2.22")):
        assert split_case_id(case_id(case, label)) == (case, label)
    assert split_case_id("qemu-10.0.13") is None and split_case_id("/bin/true") is None


def test_case_record_keeps_the_results_key_order() -> None:
    rec = CaseRecord("MI-0003", "migrate", ["basic"], "d", "f.yaml:3", "11.1.3", "11.1.3", "", "/q",
                     Outcome.PASSED, "accept", "", None, {"result": "accept"}, 0.5)
    data = rec.to_json()
    assert list(data) == ["vector", "command", "flags", "description", "file", "qemu",
                          "qemu_version", "package", "binary", "outcome", "expected", "message",
                          "defect", "observed", "seconds", "basis"]
    assert json.loads(json.dumps(data))["outcome"] == "passed"


def test_version_prefix() -> None:
    assert version_prefix("10.0", "10.0.13") and version_prefix("10", "10.2.0")
    assert not version_prefix("10.0", "10.01.0") and not version_prefix("11.1.3", "11.1")


_SCHEMA = json.loads((Path(__file__).resolve().parents[2] / "qmpcompat" / "data"
                      / "results.schema.json").read_text())
_TOP = _SCHEMA["properties"]
_ENV = _TOP["environment"]["properties"]


_SHAPES = [
    (ResultsJSON, _SCHEMA), (EnvironmentJSON, _TOP["environment"]),
    (BinaryJSON, _ENV["binaries"]["items"]), (ProblemJSON, _ENV["problems"]["items"]),
    (IndexJSON, _ENV["indexes"]["items"]), (CaseJSON, _SCHEMA["$defs"]["record"]),
    (PairJSON, _SCHEMA["$defs"]["pair"]), (BasisJSON, _SCHEMA["$defs"]["basis"]),
    (KnownDefectJSON, _TOP["known_defects"]["items"]), (GateFindingJSON, _TOP["schema_gate"]["items"]),
    (HistoryStepJSON, _TOP["schema_history"]["items"]), (InterruptedJSON, _TOP["interrupted"]),
    (RunningJSON, _TOP["running"]), (MatrixJSON, _TOP["pair_matrix"]),
    (RunModesJSON, _TOP["run"]), (UnsteadyJSON, _TOP["run"]["properties"]["unsteady"]["items"]),
    (ConsumerJSON, _SCHEMA["$defs"]["consumer"]), (ConsumerMatrixJSON, _TOP["consumer_matrix"]),
    (ShardJSON, _TOP["shard"]), (ShardsJSON, _TOP["shards"]["items"]),
]


@pytest.mark.parametrize(("shape", "schema"), _SHAPES, ids=[shape.__name__ for shape, _s in _SHAPES])
def test_results_shapes_mirror_the_schema(shape: type, schema: dict[str, object]) -> None:
    """Each TypedDict of results.json requires what the JSON Schema requires, and
    names every member the schema names (it may name more, e.g. a build's features)."""
    properties = schema.get("properties")
    assert isinstance(properties, dict)
    assert _required(shape) == set(schema.get("required") or ())
    assert set(properties) <= shape.__required_keys__ | shape.__optional_keys__


def _required(shape: type) -> set[str]:
    """The keys ``shape`` requires. Its annotations are strings (postponed), which
    hide ``NotRequired[...]`` and ``Required[...]`` from ``__required_keys__``."""
    def marked(key: str) -> str:
        note = shape.__annotations__[key]
        text = note.__forward_arg__ if isinstance(note, typing.ForwardRef) else str(note)
        return text.split("[", 1)[0]
    keys = shape.__required_keys__ | shape.__optional_keys__
    return {k for k in keys if marked(k) == "Required"
            or (k in shape.__required_keys__ and marked(k) != "NotRequired")}
