"""Snapshots and the committed baselines in vectors/schema/."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from helpers.defaults import default_versions

from qmpcompat.cli import main
from qmpcompat.schema.differ.gate import IGNORE_FILE, findings, previous_line_baseline, previous_release
from qmpcompat.schema.sources.live import from_build
from qmpcompat.schema.sources.releases import known_schemas
from qmpcompat.schema.sources.resolve import load_input, pick_build
from qmpcompat.schema.sources.snapshot import BASELINE_DIR, baseline_path, check_canonical, dumps, snapshot
from qmpcompat.types import qemu_id


def test_every_provisioned_version_has_a_baseline(builds: list[Any]) -> None:
    assert builds, "no provisioned builds"
    missing = [b.version_str for b in builds if not baseline_path(b.version_str).exists()]
    assert not missing, f"no baseline for {missing}: run `qmpcompat snapshot --baselines`"
    # and no baseline (whose version parametrizes the tests of a build) outlives its build
    gone = sorted(set(default_versions()) - {b.version_str for b in builds})
    assert not gone, f"baselines of no provisioned build: {gone}: remove them, or snapshot again"


@pytest.mark.parametrize("path", sorted(BASELINE_DIR.glob("*.json")), ids=lambda p: p.name)
def test_baselines_are_canonical(path: Path) -> None:
    assert check_canonical(path) == []


@pytest.mark.parametrize("version", default_versions(), ids=qemu_id)
def test_baseline_matches_the_live_build(builds: list[Any], version: str) -> None:
    build = pick_build(version, builds)
    assert dumps(snapshot(from_build(build))) == baseline_path(build.version_str).read_text()


def test_source_snapshot_equals_introspection_snapshot(builds: list[Any]) -> None:
    live = snapshot(from_build(pick_build("10.0.13", builds)))
    source = snapshot(load_input("debian:10.0.13"))
    assert live["entries"] == source["entries"]


def test_not_canonical_is_caught(tmp_path: Path, builds: list[Any]) -> None:
    data = json.loads(baseline_path(builds[-1].version_str).read_text())
    data["entries"].reverse()
    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps(data, indent=1, sort_keys=True) + "\n")
    assert check_canonical(bad)
    assert main(["snapshot", "--check", str(bad)]) == 1


def test_snapshot_command(tmp_path: Path, builds: list[Any]) -> None:
    out = tmp_path / "s.json"
    assert main(["snapshot", "7.2", "-o", str(out)]) == 0
    assert out.read_text() == baseline_path(pick_build("7.2", builds).version_str).read_text()
    full = tmp_path / "full.json"
    assert main(["snapshot", "11.1", "--full", "-o", str(full)]) == 0
    data = json.loads(full.read_text())
    assert data["roots"] == "all" and len(data["entries"]) > 1000
    assert check_canonical(full) == []
    assert main(["query", str(full), "migrate/arg-type/channels/addr/+file"]) == 0


def test_release_gate_needs_the_ignore_file(builds: list[Any]) -> None:
    """The gate's previous release is the real one from the history: 10.0's is the
    recorded 9.2.0; 11.1's is 11.0.0, derived from 10.2.2 (read from QAPI source)
    and 11.0's QAPI changes; against 10.2.2 the removal of detach shows."""
    build = pick_build("10.0", builds)
    previous, gap = previous_release(build.version)
    assert previous is not None and previous.path.name == "qemu-9.2.0.json" and gap == []
    assert findings(previous.path, from_build(build), "warning") == []
    newest = pick_build("11.1", builds)
    previous, gap = previous_release(newest.version)
    assert previous is not None and previous.version == "11.0.0" and previous.origin == "patch"
    assert gap == []
    live = from_build(newest)
    assert findings(previous.path, live, "warning") == []  # 11.1 adds an optional member, an output one
    source = {k.version: k for k in known_schemas()}["10.2.2"].path
    # 10.1 deprecated detach, so its removal in 11.0 is a warning, not breaking
    assert findings(source, live, "breaking") == []
    assert [f.path for f in findings(source, live, "warning")][:1] == ["migrate/arg-type/detach"]
    against = {k.version: k for k in known_schemas()}["10.0.13"].path
    assert [f.path for f in findings(against, live, "breaking")] == ["migrate/arg-type/detach"]
    assert findings(against, live, "breaking", IGNORE_FILE) == []
    assert previous_line_baseline(newest.version) == previous.path
