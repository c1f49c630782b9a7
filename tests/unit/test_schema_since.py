"""The Since: audit of QAPI source inputs against the schema history."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from qmpcompat.cli import main
from qmpcompat.schema.differ.since import parse_doc, since_audits
from qmpcompat.schema.sources.qapi_source import doc_blocks
from qmpcompat.schema.sources.resolve import load_input
from qmpcompat.schema.sources.snapshot import BASELINE_DIR, RELEASE_DIR

MIGRATE_DOC = """\
# @migrate-incoming:
#
# Start an incoming migration.
#
# @uri: The Uniform Resource Identifier identifying the source or
#     address to listen on
#
# @channels: list of migration stream channels with each stream in the
#     list connected to a destination interface endpoint.
#
# @exit-on-error: Exit on incoming migration failure.  Default true.
#     When set to false, the failure triggers a MIGRATION event.
#     (default: true, since {since})
#
# Features:
#
# @deprecated: nothing is.
#
# Since: 2.3
"""

SCHEMA = """\
{ 'include': 'migration.json' }
"""

MIGRATION = """\
##
# = Migration
##

##
%s
##
{ 'command': 'migrate-incoming',
  'data': {'*uri': 'str', '*channels': [ 'str' ], '*exit-on-error': 'bool' } }
"""


def tree(tmp_path: Path, version: str, since: str) -> Path:
    """A QEMU tree of ``version`` whose migrate-incoming doc dates exit-on-error ``since``."""
    (tmp_path / "qapi").mkdir(parents=True)
    (tmp_path / "VERSION").write_text(version + "\n")
    (tmp_path / "qapi" / "qapi-schema.json").write_text(SCHEMA)
    doc = "\n".join(MIGRATE_DOC.format(since=since).splitlines())
    (tmp_path / "qapi" / "migration.json").write_text(MIGRATION % doc)
    return tmp_path


def test_doc_comments_are_read() -> None:
    doc = parse_doc(MIGRATE_DOC.format(since="9.1"))
    assert doc is not None and doc.name == "migrate-incoming" and doc.since == "2.3"
    assert doc.members == {"uri": "", "channels": "", "exit-on-error": "9.1"}
    assert parse_doc("# = Migration") is None
    assert doc_blocks(MIGRATION % "# @x:")[8] == "# @x:"  # keyed by the definition's line


@pytest.mark.parametrize(("since", "found"), [("9.1", False), ("9.0", True), ("10.0", True)])
def test_a_wrong_member_tag_is_a_finding(tmp_path: Path, since: str, found: bool) -> None:
    schema = load_input(str(tree(tmp_path, "9.2.0", since)))
    audit = since_audits([schema])
    assert [(c.old, c.new, c.step) for c in audit] == [("history", "qapi", "since-audit")]
    paths = {f.path: f for f in audit[0].findings}
    assert ("migrate-incoming/arg-type/exit-on-error" in paths) is found
    # channels has no tag of its own, so it carries the command's 2.3: it came in 8.2
    channels = paths["migrate-incoming/arg-type/channels"]
    assert channels.rule == "SINCE_MISMATCH" and channels.level == "warning"
    assert channels.change == ("Since: 2.3 (migrate-incoming.channels), but first seen in 8.2.0"
                               " (not in 8.1.0)")


def test_a_tag_in_an_unrecorded_release_is_accepted(tmp_path: Path) -> None:
    """Between 10.0 and 11.1 no schema is known: a tag naming 10.1 for a thing
    first seen in 11.1 may be right."""
    schema = load_input(str(tree(tmp_path, "11.1.0", "9.1")))
    assert since_audits([schema])[0].findings  # channels, as above
    assert since_audits([load_input(str(BASELINE_DIR / "qemu-11.1.3.json"))]) == []  # no docs: no audit


def test_audit_in_the_differs_outputs(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    src = tree(tmp_path / "src", "9.2.0", "9.0")
    out = tmp_path / "out"
    args = ["diff", str(RELEASE_DIR / "qemu-9.1.0.json"), str(src), "--output", str(out)]
    assert main(args) == 1  # the small tree lacks most of 9.1.0's interface: breaking
    text = capsys.readouterr().out
    assert "history -> qapi (since-audit): 0 breaking, 2 warning, 0 info" in text
    data = json.loads((out / "schema-diff.json").read_text())
    audit = next(c for c in data["comparisons"] if c["step"] == "since-audit")
    assert {f["rule"] for f in audit["findings"]} == {"SINCE_MISMATCH"}
    assert "SINCE_MISMATCH" in (out / "schema-diff.md").read_text()
    assert main([*args, "--no-since-audit", "--no-files"]) == 1
    assert "since-audit" not in capsys.readouterr().out


def test_real_qemu_source_docs() -> None:
    """QEMU 10.0's own doc comments, held against the recorded releases."""
    audit = since_audits([load_input("debian:10.0")])[0]
    assert {(f.path, f.change.split(" (")[0]) for f in audit.findings} == {
        ("MigrationChannel", "Since: 8.1"),                      # introduced in 8.2
        ("migrate/arg-type/channels", "Since: 0.14"),            # no "(since 8.2)" of its own
        ("migrate-incoming/arg-type/channels", "Since: 2.3"),
        ("MigrationChannel/channel-type/^cpr", "Since: 8.1"),    # no "(since 10.0)" of its own
    }
