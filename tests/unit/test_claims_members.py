"""The history lint decides what the schema decides: every member of a claim's
arguments is checked. A value the schema cannot judge (an integer whose range
introspection does not show) makes only that member undecided; a member the
release does not know (or a mandatory one missing, a wrong type) anywhere in
the arguments rejects them whatever that value, and so decides an accept
claim. The answer does not depend on the order in which members are checked."""

from __future__ import annotations

import copy
import shutil
from pathlib import Path
from typing import Any

import pytest

from qmpcompat.claims.history import Finding, Release, check_history, known_releases
from qmpcompat.derive.visit import visit
from qmpcompat.schema.model.query import SchemaIndex
from qmpcompat.vectors.load import default_root, load
from qmpcompat.vectors.yamlfile import dump_canonical

RELEASES = {r.label: r for r in known_releases()}
BIG = 4096  # a uint64 takes it, a uint8 would not: introspection says only "int"


def file_channel(**addr: Any) -> dict[str, Any]:
    return {"channel-type": "main", "addr": {"transport": "file", **addr}}


def findings(tmp_path: Path, arguments: dict[str, Any], claim: dict[str, Any],
             releases: list[Release]) -> list[Finding]:
    """The findings of one planted migrate vector against ``releases``."""
    root = tmp_path / "vectors"
    if not root.exists():
        shutil.copytree(default_root(), root, ignore=shutil.ignore_patterns("schema"))
    (root / "migrate" / "planted.yaml").write_text(dump_canonical({"command": "migrate", "vectors": [
        {"id": "M-0999", "description": "planted", "flags": ["channels"], "arguments": arguments,
         "expect": [claim]}]}))
    vec = next(v for v in load(root).vectors if v.id == "M-0999")
    return check_history([vec], releases)


def reversed_members(rel: Release) -> Release:
    """``rel`` with every object's members in the opposite order."""
    entries = copy.deepcopy(list(rel.index.entries.values()))
    for entry in entries:
        if entry.get("meta-type") == "object" and entry.get("members"):
            entry["members"] = list(reversed(entry["members"]))
    return Release(rel.version, f"{rel.source}, members reversed",
                   SchemaIndex(entries, rel.index.source))


ACCEPT = {"result": "accept", "migration": "completed", "inferred-from": "planted for this test"}


def test_an_unknown_member_decides_an_accept_whatever_the_undecided_value(tmp_path: Path) -> None:
    """11.1 has no detach: migrate rejects the arguments whatever offset's C type
    is, though offset comes first and its range is unknown."""
    args = {"channels": [file_channel(filename="{tmpdir}/f", offset=BIG)], "detach": True}
    found = findings(tmp_path, args, {**ACCEPT, "versions": ">=11.1"}, [RELEASES["11.1.3"]])
    assert [f.kind for f in found] == ["contradiction"], found
    assert "migrate/arg-type has no member detach" in found[0].message
    assert "whatever the values it cannot judge" in found[0].message
    answer = visit(RELEASES["11.1.3"].index, "migrate", args)
    assert answer.refused and answer.rejects and not answer.decided
    assert answer.prediction is not None
    assert answer.prediction.matches("GenericError", "Parameter 'detach' is unexpected")
    assert answer.prediction.matches("GenericError", "Parameter 'offset' expects uint8_t")


def test_a_reject_claim_the_schema_cannot_pin_down(tmp_path: Path) -> None:
    """The unknown member's error is what QEMU says if offset is in range: not
    contradicted, but not decided either (it needs observed-on or inferred-from);
    a command's own error is contradicted, since the visitor answers first."""
    args = {"channels": [file_channel(filename="{tmpdir}/f", offset=BIG)], "detach": True}
    rel = [RELEASES["11.1.3"]]
    unexpected = {"result": "reject", "error-class": "GenericError",
                  "desc": "Parameter 'detach' is unexpected", "versions": ">=11.1"}
    assert findings(tmp_path, args, {**unexpected, "inferred-from": "planted"}, rel) == []
    found = findings(tmp_path, args, {**unexpected, "observed-on": ["11.1.2"]}, rel)
    assert [f.kind for f in found] == ["unmarked"]
    command_error = {**unexpected, "desc": "need either 'uri' or 'channels' argument",
                     "inferred-from": "planted"}
    assert [f.kind for f in findings(tmp_path, args, command_error, rel)] == ["contradiction"]


def test_an_undecided_value_alone_leaves_the_claim_undecided(tmp_path: Path) -> None:
    args = {"channels": [file_channel(filename="{tmpdir}/f", offset=BIG)]}
    answer = visit(RELEASES["11.1.3"].index, "migrate", args)
    assert not answer.decided and not answer.refused and "range is unknown" in answer.fact
    assert findings(tmp_path, args, {**ACCEPT, "versions": ">=11.1"}, [RELEASES["11.1.3"]]) == []


@pytest.mark.parametrize(("arguments", "claim"), [
    ({"channels": [file_channel(offset=BIG)]}, ACCEPT),  # filename missing
    ({"channels": [file_channel(offset=BIG, filename=7)]}, ACCEPT),  # filename of the wrong type
    ({"channels": [{**file_channel(filename="{tmpdir}/f", offset=BIG), "x": 1}]}, ACCEPT),
    ({"channels": [file_channel(filename="{tmpdir}/f", offset=BIG)]}, ACCEPT),  # undecided
    ({"channels": [file_channel(offset=BIG)]},
     {"result": "reject", "error-class": "GenericError",
      "desc": "Parameter 'channels[0].addr.filename' is missing", "inferred-from": "planted"}),
])
def test_the_answer_does_not_depend_on_member_order(tmp_path: Path, arguments: dict[str, Any],
                                                    claim: dict[str, Any]) -> None:
    """The same claim held against a release with its members in QEMU's order and
    in the opposite one is contradicted on both or on neither."""
    rel = RELEASES["10.0.13"]
    kinds = [{f.kind for f in findings(tmp_path, arguments, claim, [r])}
             for r in (rel, reversed_members(rel))]
    assert kinds[0] == kinds[1], kinds
    first = visit(rel.index, "migrate", arguments)
    again = visit(reversed_members(rel).index, "migrate", arguments)
    assert first.refused == again.refused and first.accepted == again.accepted
