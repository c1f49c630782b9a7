"""Snapshots and the committed baselines in vectors/schema/."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from qmpcompat.cli import main
from qmpcompat.schema.inputs import from_build, load_input, pick_build, provisioned_builds
from qmpcompat.schema.snapshot import BASELINE_DIR, baseline_path, check_canonical, dumps, snapshot

BUILDS = provisioned_builds()


def test_every_provisioned_version_has_a_baseline() -> None:
    assert BUILDS, "no provisioned builds"
    missing = [b.version_str for b in BUILDS if not baseline_path(b.version_str).exists()]
    assert not missing, f"no baseline for {missing}: run `qmpcompat snapshot --baselines`"


@pytest.mark.parametrize("path", sorted(BASELINE_DIR.glob("*.json")), ids=lambda p: p.name)
def test_baselines_are_canonical(path: Path) -> None:
    assert check_canonical(path) == []


@pytest.mark.parametrize("build", BUILDS, ids=lambda b: f"qemu-{b.version_str}")
def test_baseline_matches_the_live_build(build: Any) -> None:
    path = baseline_path(build.version_str)
    assert dumps(snapshot(from_build(build))) == path.read_text()


def test_source_snapshot_equals_introspection_snapshot() -> None:
    live = snapshot(from_build(pick_build("10.0.13", BUILDS)))
    source = snapshot(load_input("debian:10.0.13"))
    assert live["entries"] == source["entries"]


def test_not_canonical_is_caught(tmp_path: Path) -> None:
    data = json.loads(baseline_path(BUILDS[-1].version_str).read_text())
    data["entries"].reverse()
    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps(data, indent=1, sort_keys=True) + "\n")
    assert check_canonical(bad)
    assert main(["snapshot", "--check", str(bad)]) == 1


def test_snapshot_command(tmp_path: Path) -> None:
    out = tmp_path / "s.json"
    assert main(["snapshot", "7.2", "-o", str(out)]) == 0
    assert out.read_text() == baseline_path(pick_build("7.2", BUILDS).version_str).read_text()
    full = tmp_path / "full.json"
    assert main(["snapshot", "11.1", "--full", "-o", str(full)]) == 0
    data = json.loads(full.read_text())
    assert data["roots"] == "all" and len(data["entries"]) > 1000
    assert check_canonical(full) == []
    assert main(["query", str(full), "migrate/arg-type/channels/addr/+file"]) == 0


def test_release_gate_needs_the_ignore_file() -> None:
    from qmpcompat.schema.gate import IGNORE_FILE, findings, previous_line_baseline

    build = pick_build("10.0", BUILDS)
    baseline = previous_line_baseline(build.version)
    assert baseline is not None and baseline.name.startswith("qemu-7.2")
    live = from_build(build)
    assert [f.path for f in findings(baseline, live, "breaking")] == [
        "migrate/arg-type/blk", "migrate/arg-type/inc"]
    assert findings(baseline, live, "breaking", IGNORE_FILE) == []
    assert len(findings(baseline, live, "info", IGNORE_FILE)) == 6
