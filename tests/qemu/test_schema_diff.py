"""The differ and classifier on the real history 7.2 -> 10.0 -> 11.1."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from deepdiff import DeepDiff

from qmpcompat.cli import main
from qmpcompat.errors import SchemaError, SourceUnavailable
from qmpcompat.schema.differ.compare import history, load
from qmpcompat.schema.differ.diff import RawChange, diff_models
from qmpcompat.schema.differ.ignore import apply_ignore, load_ignore
from qmpcompat.schema.differ.rules import RULES, classify
from qmpcompat.schema.model.normalize import all_roots, normalize
from qmpcompat.schema.model.query import SchemaIndex
from qmpcompat.schema.sources.input import SchemaInput
from qmpcompat.schema.sources.live import from_build
from qmpcompat.schema.sources.qapi_convert import Conditions
from qmpcompat.schema.sources.resolve import load_input, pick_build, provisioned_builds

# Observed on the Debian builds (and their QAPI source): (rule, path) per step.
STEP_72_100 = [
    ("TYPE_ADDED", "MigrationChannel"),
    ("INPUT_MEMBER_REMOVED", "migrate/arg-type/blk"),
    ("INPUT_OPTIONAL_MEMBER_ADDED", "migrate/arg-type/channels"),
    ("INPUT_MEMBER_REMOVED", "migrate/arg-type/inc"),
    ("INPUT_MEMBER_MADE_OPTIONAL", "migrate/arg-type/uri"),
    ("INPUT_OPTIONAL_MEMBER_ADDED", "migrate-incoming/arg-type/channels"),
    ("INPUT_OPTIONAL_MEMBER_ADDED", "migrate-incoming/arg-type/exit-on-error"),
    ("INPUT_MEMBER_MADE_OPTIONAL", "migrate-incoming/arg-type/uri"),
]
STEP_100_111 = [
    ("INPUT_OPTIONAL_MEMBER_ADDED", f"MigrationChannel/addr/{branch}/keep-alive-{what}")
    for branch in ("+rdma", "+socket/+inet") for what in ("count", "idle", "interval")
] + [("INPUT_MEMBER_REMOVED", "migrate/arg-type/detach")]


@pytest.fixture(scope="module")
def builds() -> list[Any]:

    return provisioned_builds()


def pairs(comparison: Any) -> list[tuple[str, str]]:
    return [(f.rule, f.path) for f in comparison.findings]


def test_real_history_lists_every_change(builds: list[Any]) -> None:
    loaded = [load(from_build(pick_build(v, builds))) for v in ("7.2", "10.0", "11.1")]
    step1, step2, transitive = history(loaded)
    assert pairs(step1) == STEP_72_100
    assert pairs(step2) == STEP_100_111
    assert transitive.step == "transitive"
    # 7.2 had no MigrationChannel, so the later keep-alive members are inside its addition.
    assert pairs(transitive) == sorted(
        [*STEP_72_100, ("INPUT_MEMBER_REMOVED", "migrate/arg-type/detach")],
        key=lambda p: (p[1].split("/")[0], p[1]))
    assert all(f.direction == "input" for f in step1.findings + step2.findings)


def test_source_history_agrees_with_introspection(builds: list[Any]) -> None:
    source = history([load(load_input(f"debian:{v}")) for v in ("7.2", "10.0")])
    binary = history([load(from_build(pick_build(v, builds))) for v in ("7.2", "10.0")])
    assert pairs(source[0]) == pairs(binary[0]) == STEP_72_100


def test_configuration_is_not_compatibility(builds: list[Any]) -> None:
    # The 10.0.13 binary (built with SPICE) against its own QAPI source read
    # as a build without SPICE: every difference is the condition, none breaks.
    binary = load(from_build(pick_build("10.0.13", builds)), ["query-spice", "chardev-add",
                                                              "SPICE_CONNECTED"])
    source = load(load_input("debian:10.0.13", conditions=Conditions(
        undefine=frozenset({"CONFIG_SPICE"}))), ["query-spice", "chardev-add", "SPICE_CONNECTED"])
    findings = history([binary, source])[0].findings
    assert findings and {f.rule for f in findings} == {"CONFIG_CONDITION"}
    spice = next(f for f in findings if f.path == "query-spice")
    assert spice.level == "info" and "if: CONFIG_SPICE, off in debian-10.0.13" in spice.change
    # Across versions a missing conditional thing is still a change.
    older = load(from_build(pick_build("7.2", builds)), ["chardev-add"])
    assert all(f.rule != "CONFIG_CONDITION" for f in history([older, source])[0].findings)


def test_same_interface_has_no_findings(builds: list[Any]) -> None:
    a, b = (load(from_build(pick_build(v, builds))) for v in ("11.1.2", "11.1.3"))
    assert history([a, b])[0].findings == []


def _change(op: str, path: tuple[str, ...], old: Any, new: Any) -> RawChange:
    return RawChange(op, path, old, new)


MEMBER_REQ = {"optional": False, "type": "string", "features": {}}
MEMBER_OPT = {"optional": True, "type": "string", "features": {}}


@pytest.mark.parametrize(("change", "kind", "direction", "rule"), [
    (_change("added", ("c", "arg", "members", "x"), None, MEMBER_REQ), "command", "",
     "INPUT_REQUIRED_MEMBER_ADDED"),
    (_change("added", ("c", "ret", "members", "x"), None, MEMBER_REQ), "command", "",
     "OUTPUT_MEMBER_ADDED"),
    (_change("removed", ("c", "ret", "members", "x"), MEMBER_REQ, None), "command", "",
     "OUTPUT_MEMBER_REMOVED"),
    (_change("changed", ("c", "ret", "members", "x", "optional"), False, True), "command", "",
     "OUTPUT_MEMBER_MADE_OPTIONAL"),
    (_change("added", ("E", "arg", "members", "s", "type", "values", "v"), None,
              {"features": {}}), "event", "", "OUTPUT_ENUM_VALUE_ADDED"),
    (_change("added", ("T", "members", "s", "type", "values", "v"), None, {"features": {}}),
     "object", "both", "OUTPUT_ENUM_VALUE_ADDED"),
    (_change("removed", ("T", "members", "s", "type", "values", "v"), {"features": {}}, None),
     "object", "both", "INPUT_ENUM_VALUE_REMOVED"),
    (_change("removed", ("c", "arg", "members", "x"),
              {**MEMBER_OPT, "features": {"deprecated": True}}, None), "command", "",
     "DEPRECATED_REMOVED"),
    (_change("changed", ("c", "arg", "members", "x", "type"), "string",
              {"kind": "alternate", "branches": {"string": "string", "null": "null"},
               "features": {}}), "command", "", "INPUT_TYPE_TO_ALTERNATE"),
    (_change("changed", ("c", "arg", "members", "x", "type"), "string",
              {"kind": "enum", "values": {}, "features": {}}), "command", "",
     "INPUT_STR_TO_ENUM"),
    (_change("changed", ("c", "arg", "members", "x", "type"), "string", "int"), "command", "",
     "TYPE_CHANGED"),
    (_change("added", ("c", "features", "deprecated"), None, True), "command", "",
     "FEATURE_DEPRECATED_ADDED"),
    (_change("removed", ("c",), {"kind": "command", "features": {}}, None), "command", "",
     "COMMAND_REMOVED"),
])
def test_rules(change: RawChange, kind: str, direction: str, rule: str) -> None:
    finding = classify(change, direction, kind, "a", "b")
    assert finding.rule == rule
    assert finding.level == RULES[rule][0]


def test_every_rule_has_level_and_explanation() -> None:
    for rule, (level, text) in RULES.items():
        assert rule.isupper() and level in ("breaking", "warning", "info") and text


def _write(path: Path, text: str) -> Path:
    path.write_text(text)
    return path


def test_ignore_file(tmp_path: Path, builds: list[Any]) -> None:
    entries = load_ignore(_write(tmp_path / "ok.yaml", """
- rule: INPUT_MEMBER_REMOVED
  path: migrate/arg-type/blk
  reason: block migration was withdrawn; nobody passes blk any more
- rule: INPUT_MEMBER_REMOVED
  path: migrate/arg-type/nosuch
  reason: stale on purpose
"""))
    loaded = [load(from_build(pick_build(v, builds))) for v in ("7.2", "10.0")]
    [step] = history(loaded)
    kept, ignored, used = apply_ignore(step.findings, entries)
    assert [f.path for f in ignored] == ["migrate/arg-type/blk"]
    assert len(kept) == len(step.findings) - 1
    assert next(e for e in entries if e not in used).path == "migrate/arg-type/nosuch"


@pytest.mark.parametrize(("text", "line"), [
    ("- rule: INPUT_MEMBER_REMOVED\n  path: a\n", 1),
    ("- rule: INPUT_MEMBER_REMOVED\n  path: a\n  reason: ok\n- rule: NOPE\n  path: b\n"
     "  reason: x\n", 4),
    ("- {rule: TYPE_CHANGED, path: a, reason: r, extra: 1}\n", 1),
])
def test_bad_ignore_files(tmp_path: Path, text: str, line: int) -> None:
    with pytest.raises(SchemaError) as err:
        load_ignore(_write(tmp_path / "bad.yaml", text))
    assert err.value.line == line


def test_cli_exit_codes_and_files(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "out"
    assert main(["diff", "7.2", "10.0", "--output", str(out)]) == 1
    text = capsys.readouterr().out
    assert "INPUT_MEMBER_REMOVED" in text and "migrate/arg-type/blk" in text
    data = json.loads((out / "schema-diff.json").read_text())
    assert [(f["rule"], f["path"]) for f in data["comparisons"][0]["findings"]] == STEP_72_100
    assert "migrate/arg-type/blk" in (out / "schema-diff.md").read_text()
    assert "<table>" in (out / "schema-diff.html").read_text()
    assert main(["diff", "11.1.2", "11.1.3", "--no-files", "--fail-on", "info"]) == 0
    ignore = _write(tmp_path / "ig.yaml", "".join(
        f"- {{rule: {r}, path: '{p}', reason: accepted}}\n" for r, p in STEP_100_111))
    assert main(["diff", "10.0", "11.1", "--no-files", "--fail-on", "info",
                 "--ignore", str(ignore)]) == 0
    assert main(["diff", "10.0", "11.1", "--no-files", "--fail-on", "warning"]) == 1
    assert main(["diff", "7.2", "--no-files"]) == 2
    assert main(["diff", "7.2", "99.9", "--no-files"]) == 2
    assert main(["query", "7.2", "migrate//x"]) == 2


def test_type_option_picks_other_roots(builds: list[Any]) -> None:
    schemas = [from_build(pick_build(v, builds)) for v in ("10.0", "11.1")]
    loaded = [load(s, ["query-migrate"]) for s in schemas]
    [step] = history(loaded)
    assert step.findings, "query-migrate's reply changed between 10.0 and 11.1"
    assert all(f.root == "query-migrate" for f in step.findings)
    assert {f.direction for f in step.findings} == {"output"}
    with pytest.raises(SchemaError):
        load(SchemaInput("x", "x", "qemu", schemas[0].entries), ["NoSuchType"])


def test_docs_list_every_rule() -> None:
    doc = (Path(__file__).resolve().parents[2] / "docs" / "differ.md").read_text()
    for rule, (level, _text) in RULES.items():
        assert f"| `{rule}` | {level} |" in doc, rule


def test_deprecated_then_removed_is_a_warning(builds: list[Any]) -> None:
    # The 10.2 source package marks migrate's detach deprecated; 11.1 removed it.
    try:
        source = load_input("debian:10.2")
    except SourceUnavailable as exc:
        pytest.skip(str(exc))
    [step] = history([load(source), load(from_build(pick_build("11.1", builds)))])
    assert pairs(step) == [("DEPRECATED_REMOVED", "migrate/arg-type/detach")]
    assert step.findings[0].level == "warning"


def _same_where_equal(old: Any, new: Any) -> tuple[Any, bool]:
    """``new`` with each subtree that is exactly the one at the same place in
    ``old`` (the same types, keys and values) replaced by ``old``'s object, and
    whether all of it was. Plain deepdiff stops at two identical objects, where it
    would have walked two equal trees to find nothing: its findings are the same,
    in a fraction of the time (it copies its path at every node it visits)."""
    if type(old) is not type(new):
        return new, False
    if isinstance(new, dict):
        out, same = {}, old.keys() == new.keys()
        for key, value in new.items():
            out[key], equal = _same_where_equal(old[key], value) if key in old else (value, False)
            same = same and equal
        return (old, True) if same else (out, False)
    if isinstance(new, (list, tuple)):
        items = [_same_where_equal(a, b) for a, b in zip(old, new, strict=False)]
        if len(old) == len(new) and all(equal for _item, equal in items):
            return old, True
        return type(new)([item for item, _equal in items] + list(new[len(old):])), False
    return (old, True) if old == new else (new, False)


def test_pruned_diff_finds_what_plain_deepdiff_finds(builds: list[Any]) -> None:
    """The hash pruning and flattening lose nothing: every difference plain
    deepdiff reports lies at or under a reported change."""
    a, b = (SchemaIndex(from_build(pick_build(v, builds)).entries) for v in ("7.2", "11.1"))
    roots = sorted(set(all_roots(a)) | set(all_roots(b)))
    old, new = normalize(a, roots), normalize(b, roots)
    reported = {c.path for c in diff_models(old, new)}
    plain = DeepDiff(old, _same_where_equal(old, new)[0], view="tree", threshold_to_diff_deeper=0)
    paths = {tuple(map(str, level.path(output_format="list")))
             for levels in plain.values() for level in levels}
    assert len(reported) > 500
    assert all(any(p[:len(r)] == r for r in reported) for p in paths)
    assert all(any(p[:len(r)] == r for p in paths) for r in reported)
