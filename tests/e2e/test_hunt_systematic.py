"""The hunt's systematic pass: deterministic, safe on every build, holds what
the recorded crashes need, and a short seeded hunt on a real QEMU finds a
recorded crash by itself and names its known-defect id."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

from qmpcompat.derive.shapes import TypeWalker
from qmpcompat.hunt.run import share
from qmpcompat.hunt.systematic import plan
from qmpcompat.provision import QemuBuild
from qmpcompat.safety import Policy
from qmpcompat.schema.model.query import SchemaIndex
from qmpcompat.schema.sources.live import SchemaCache
from qmpcompat.vectors.transcript import steps_problems

SCHEMAS = SchemaCache()


def step(command: str, arguments: dict[str, Any]) -> dict[str, Any]:
    return {"execute": command, "arguments": arguments}


def _plan(build: QemuBuild) -> list[list[dict[str, Any]]]:
    return plan(TypeWalker(SchemaIndex(SCHEMAS.entries(build))), ["migrate", "migrate-incoming"])


def test_the_pass_is_safe_and_the_same_every_time(builds: list[QemuBuild]) -> None:
    for build in builds:
        cases = _plan(build)
        assert cases == _plan(build)
        assert len({json.dumps(c, sort_keys=True) for c in cases}) == len(cases)
        refused = [c for c in cases if steps_problems(c, Policy.template())]
        assert not refused, (build.label, refused[:3])
        assert any(len(c) > 1 for c in cases) and any(len(c) == 1 for c in cases)


def test_the_pass_holds_what_the_recorded_crashes_need(newest: QemuBuild) -> None:
    """An exec channel with an empty argv (KD-0001/2), a lone cpr channel
    (KD-0003/5/10/12), cpr-transfer mode before migrate with a uri (KD-0008)."""
    cases = [json.dumps(c, sort_keys=True) for c in _plan(newest)]
    for command in ("migrate", "migrate-incoming"):
        empty_argv = [step(command, {"channels": [{"channel-type": "main", "addr": {
            "transport": "exec", "args": []}}]})]
        lone_cpr = [step(command, {"channels": [{"channel-type": "cpr", "addr": {
            "transport": "socket", "type": "inet", "host": "127.0.0.1", "port": "{port}"}}]})]
        for case in (empty_argv, lone_cpr):
            assert json.dumps(case, sort_keys=True) in cases, case
    cpr_uri = [step("migrate-set-parameters", {"mode": "cpr-transfer"}),
               step("migrate", {"uri": "unix:{tmpdir}/derived.sock"})]
    assert json.dumps(cpr_uri, sort_keys=True) in cases
    # each enum value, edge string and integer reaches its member: a few samples
    for needle in ('"offset": 18446744073709551615', '"channel-type": "cpr"',
                   '"host": "::1"', '"resume": true',
                   '"capability": "postcopy-ram"', '"exit-on-error": false'):
        assert any(needle in c for c in cases), needle


def test_worker_shares_add_up() -> None:
    assert [share(7, 3, w) for w in range(3)] == [3, 2, 2]
    assert share(None, 2, 0) is None


def short_hunt(newest: QemuBuild, out: Path, *extra: str) -> subprocess.CompletedProcess[str]:
    cmd = [sys.executable, "-m", "qmpcompat", "hunt", "--only", newest.label, "--budget", "5m",
           "--max-cases", "80", "--workers", "1", "--command", "migrate", "--seed", "0",
           "--out", str(out), "--no-backtrace", "--floor-every", "0", *extra]
    return subprocess.run(cmd, capture_output=True, text=True, timeout=600, cwd=out.parent,
                          env={**os.environ, "TMPDIR": str(out.parent)})


def test_a_short_seeded_hunt_finds_a_recorded_crash_and_names_it(newest: QemuBuild,
                                                                 tmp_path: Path) -> None:
    """One worker, 80 cases of migrate: the systematic pass sends a lone cpr
    channel early, every build from 10.0 dies on it (KD-0003, KD-0010), and the
    run says which recorded defect it found again, after how many cases; a
    finding that is a recorded defect fails the run only with --fail-on-known."""
    assert newest.version >= (10, 0)
    out = tmp_path / "out"
    proc = short_hunt(newest, out)
    summary = json.loads((out / "hunt.json").read_text())
    new = [r["signature"] for r in summary["reports"] if not r["recorded"]]
    assert proc.returncode == (1 if new else 0), proc.stdout + proc.stderr
    (row,) = summary["builds"]
    assert summary["max_cases"] == 80 and 80 <= row["cases"] < 200, row["cases"]
    found = {k["defect"]: k for k in summary["known_defects"]["found"]}
    assert "KD-0003" in found, summary["known_defects"]
    first = found["KD-0003"]
    assert first["how"] == "explored" and first["systematic"] and first["after_cases"] <= 80
    assert "found again: KD-0003 (M-0050)" in proc.stdout
    lone = [r for r in summary["reports"] if r["signature"].startswith("crash | signal 11 | - |")]
    assert lone and lone[0]["affected"] == [newest.version_str], summary["reports"]
    assert "KD-0003" in lone[0]["recorded"], lone[0]
    # the same seed, stopped at the case that found it: only recorded defects, and exit 1
    again = short_hunt(newest, tmp_path / "again", "--fail-on-known",
                       "--max-cases", str(first["after_cases"]))
    assert again.returncode == 1 and "found again: KD-0003" in again.stdout, again.stdout + again.stderr
