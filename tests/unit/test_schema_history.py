"""``qmpcompat history`` and ``query --history`` on the committed release schemas (offline)."""

from __future__ import annotations

import json
from pathlib import Path

import jsonschema
import pytest

from qmpcompat.cli import main
from qmpcompat.errors import SchemaError
from qmpcompat.schema.differ.deprecations import inferred_events
from qmpcompat.schema.differ.timeline import Timeline, build, point, release_lines
from qmpcompat.schema.differ.timeline_out import html_page, markdown, text
from qmpcompat.schema.sources.input import SchemaInput
from qmpcompat.schema.sources.releases import known_schemas

SCHEMA = Path(__file__).resolve().parents[2] / "qmpcompat" / "data" / "history.schema.json"


@pytest.fixture(scope="module")
def timeline() -> Timeline:
    return build([point(k.schema) for k in known_schemas()])


def changes(timeline: Timeline) -> set[tuple[str, str, str]]:
    return {(e.version, e.path, e.change) for e in timeline.events}


def test_the_known_history_of_the_migration_commands(timeline: Timeline) -> None:
    found = changes(timeline)
    assert {
        ("8.2.0", "MigrationChannel", "added"),
        ("8.2.0", "migrate/arg-type/channels", "added"),
        ("8.2.0", "migrate-incoming/arg-type/uri", "became optional"),
        ("8.2.0", "migrate/arg-type/blk", "deprecated"),
        ("8.2.2", "migrate/arg-type/uri", "became optional"),
        ("9.1.0", "migrate/arg-type/blk", "removed"),
        ("9.1.0", "migrate-incoming/arg-type/exit-on-error", "added"),
        ("10.0.0", "MigrationChannel/channel-type/^cpr", "added"),
        ("10.1.0", "migrate/arg-type/detach", "deprecated"),
        ("10.1.0", "MigrationChannel/addr/+socket/+inet/keep-alive-count", "added"),
        ("11.0.0", "migrate/arg-type/detach", "removed"),
    } <= found
    # members of what was added come with it, not as events of their own
    assert not any(p.startswith("MigrationChannel/") and v == "8.2.0" for v, p, _ in found)


def test_no_release_line_is_unknown_between_8_2_and_11_1(timeline: Timeline) -> None:
    """10.1 and 11.0 are derived from their QAPI changes (evidence patch): every
    release line from 8.2 to 11.1 has a schema, and no event crosses a gap."""
    assert timeline.points[0].version == "4.2.0"
    assert timeline.unrecorded == []
    assert all(not e.unrecorded for e in timeline.events)
    removed = next(e for e in timeline.events if e.path == "migrate/arg-type/detach"
                   and e.change == "removed")
    assert (removed.version, removed.previous, removed.evidence) == ("11.0.0", "10.2.2", "patch")
    deprecated = next(e for e in timeline.events if e.path == "migrate/arg-type/detach"
                      and e.change == "deprecated")
    assert (deprecated.version, deprecated.evidence) == ("10.1.0", "patch")
    # each event of a derived release names the commit of its change
    assert (removed.note, deprecated.note) == ("commit fc37c122", "commit c2fb6eaeb9")
    assert "no schema known of" not in text(timeline)


def test_gaps_are_named() -> None:
    """Without the derived 10.1.0 and 11.0.0, the lines no schema covers are named at
    the top and on every event that crosses them."""
    timeline = build([point(k.schema) for k in known_schemas()
                      if k.version not in ("10.1.0", "11.0.0")])
    assert timeline.unrecorded == ["10.1", "11.0"]
    removed = next(e for e in timeline.events if e.path == "migrate/arg-type/detach"
                   and e.change == "removed")
    assert removed.unrecorded == ("11.0",) and removed.previous == "10.2.2"
    # 10.2.2 is read from QAPI source: what it shows is evidence "source", not observed
    deprecated = next(e for e in timeline.events if e.path == "migrate/arg-type/detach"
                      and e.change == "deprecated")
    assert (deprecated.version, deprecated.evidence, deprecated.unrecorded) == \
        ("10.2.2", "source", ("10.1",))
    assert all(not e.unrecorded for e in timeline.events if e.version not in ("10.2.2", "11.1.2"))
    assert "no schema known of: 10.1, 11.0" in text(timeline)
    assert "no schema is known of 11.0, where it may have happened" in text(timeline)


def test_release_lines_follow_qemus_numbering() -> None:
    def at(version: str) -> object:
        return point(SchemaInput(version, version, "snapshot", [], version))

    assert release_lines([at("7.1.0"), at("9.0.0")]) == [(7, 1), (7, 2), (8, 0), (8, 1), (8, 2),
                                                         (9, 0)]


def test_evidence_and_lifecycle(timeline: Timeline) -> None:
    data = timeline.to_json()
    jsonschema.validate(data, json.loads(SCHEMA.read_text()))
    origins = {r["version"]: (r["origin"], r["evidence"]) for r in data["releases"]}
    assert origins["8.2.0"] == ("recorded", "observed")
    assert origins["11.1.3"] == ("binary", "observed")
    assert origins["10.2.2"] == ("source", "source")
    # 8.2.2 was derived from a back-port (a patch) until its Ubuntu build was run;
    # a version committed both ways keeps the build's schema (the same slice).
    assert origins["8.2.2"] == ("binary", "observed")
    rows = {r["path"]: r for r in data["lifecycle"]}
    uri = rows["migrate/arg-type/uri"]
    assert uri["since_oldest"] and uri["current"] and uri["optional"] is True
    assert uri["changes"] == [{"version": "8.2.2", "change": "became optional"}]
    blk = rows["migrate/arg-type/blk"]
    assert (blk["last"], blk["current"]) == ("9.0.0", False)
    assert [c["change"] for c in blk["changes"]] == ["deprecated", "removed"]
    channels = rows["migrate/arg-type/channels"]
    assert channels["first"] == "8.2.0" and not channels["since_oldest"]


def test_every_format(timeline: Timeline, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert "| 8.2.2 | `migrate/arg-type/uri` | became optional | observed |" in markdown(timeline)
    page = html_page(timeline)
    assert "<script" not in page and "migrate/arg-type/uri</code> became optional" in page
    assert main(["history", "--output", str(tmp_path), "--format", "json"]) == 0
    printed = json.loads(capsys.readouterr().out)
    written = json.loads((tmp_path / "schema-history.json").read_text())
    assert printed == written and written["releases"][0]["version"] == "4.2.0"
    assert (tmp_path / "schema-history.md").exists() and (tmp_path / "schema-history.html").exists()


def test_named_inputs_join_the_history(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """An input of a version the committed set lacks becomes a point of its own."""
    newest = known_schemas()[-1]
    data = json.loads(newest.path.read_text())
    data["qemu"], data["label"] = "12.0.0", "qemu-12.0.0"
    data.pop("source")
    uri = next(e for e in data["entries"] if e["name"] == "migrate/arg-type")
    uri["members"] = [m for m in uri["members"] if m["name"] != "uri"]
    path = tmp_path / "future.json"
    path.write_text(json.dumps(data))
    assert main(["history", str(path), "--no-files"]) == 0
    out = capsys.readouterr().out
    assert "12.0.0 (unknown: snapshot" in out and "migrate/arg-type/uri: removed" in out
    assert "no schema known of: 11.2" in out
    bare = tmp_path / "bare.json"
    bare.write_text("[]")
    assert main(["history", str(bare), "--no-files"]) == 2
    assert "names no QEMU version" in capsys.readouterr().err


def test_query_history(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["query", "--history", "migrate/arg-type/*uri"]) == 0
    out = capsys.readouterr().out.splitlines()
    assert out[0] == "migrate/arg-type/*uri"
    assert out[1].startswith("  false: 4.2.0 .. 8.2.0 (14 schemas: 4.2.0, 5.0.0,")
    assert out[2].startswith("  true : 8.2.2 .. 11.1.3 (")
    assert not any("no schema known" in line for line in out)
    assert main(["query", "--history", "migrate/arg-type/blk", "-q"]) == 1
    assert main(["query", "--history"]) == 2
    assert main(["query", "migrate/arg-type/uri"]) == 2


def test_a_history_needs_a_schema() -> None:
    with pytest.raises(SchemaError, match="no schema to build a history from"):
        build([])


RST = """\
QEMU Machine Protocol (QMP) commands
------------------------------------

``migrate`` argument ``detach`` (since 10.1)
''''''''''''''''''''''''''''''''''''''''''''

The argument is ignored.

``query-migrate`` return value member ``skipped`` (removed in 9.1)
''''''''''''''''''''''''''''''''''''''''''''''''''''''''''''''''''

Not a member the history follows.

Human Monitor Protocol (HMP) commands
-------------------------------------

``migrate`` command ``-b`` option (removed in 9.1)
''''''''''''''''''''''''''''''''''''''''''''''''''

HMP, not QMP.
"""


def test_documents_give_inferred_events(timeline: Timeline, tmp_path: Path) -> None:
    (tmp_path / "deprecated.rst").write_text(RST)
    removed = "``migrate`` argument ``detach`` (removed in 11.1)"
    (tmp_path / "removed-features.rst").write_text(
        RST.replace("``migrate`` argument ``detach`` (since 10.1)\n" + "'" * 44,
                    removed + "\n" + "'" * len(removed)))
    events = inferred_events(tmp_path, timeline, "test")
    assert [(e.version, e.path, e.change, e.evidence) for e in events] == [
        ("10.1", "migrate/arg-type/detach", "deprecated", "inferred"),
        ("11.1", "migrate/arg-type/detach", "removed", "inferred")]
    assert events[0].note == "deprecated.rst (test): ``migrate`` argument ``detach`` (since 10.1)"


def test_history_with_qemus_own_documents(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    """The deprecation documents of QEMU 10.0's source package (fetched once, cached)."""
    assert main(["history", "--docs", "debian:10.0", "--output", str(tmp_path)]) == 0
    out = capsys.readouterr().out
    assert "inferred 9.1: migrate/arg-type/blk: removed [removed-features.rst (Debian qemu" in out
    data = json.loads((tmp_path / "schema-history.json").read_text())
    jsonschema.validate(data, json.loads(SCHEMA.read_text()))
    assert {(e["version"], e["path"]) for e in data["inferred"]} >= {
        ("9.1", "migrate/arg-type/blk"), ("9.1", "migrate/arg-type/inc")}
    assert all(e["evidence"] == "inferred" for e in data["inferred"])
    assert main(["history", "--docs", str(tmp_path), "--no-files"]) == 2
