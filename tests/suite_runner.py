"""Running the conformance suite in a subprocess, as a user would, and checking
that it leaves no QEMU process and no temp dir behind."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
SUITES = "bookworm,sid"  # the oldest and the newest line of the default set


def run_suite(tmp_path: Path, *args: str, vectors: Path | None = None,
              suites: str = SUITES) -> tuple[int, str, dict[str, Any]]:
    """Run ``pytest suites`` on the builds of ``suites``; return its exit status,
    its output and its results.json."""
    reports = tmp_path / "reports"
    tmpdir = Path(tempfile.mkdtemp(prefix="qs-"))  # short: QEMU's unix socket paths go here
    cmd = [sys.executable, "-m", "pytest", "suites", "-p", "no:cacheprovider", "-rfEx",
           "--qmpcompat-suites", suites, "--qmpcompat-reports", str(reports),
           "--junitxml", str(reports / "junit.xml"), *args]
    if vectors:
        cmd += ["--qmpcompat-vectors", str(vectors)]
    env = {**os.environ, "TMPDIR": str(tmpdir)}
    env.pop("QMPCOMPAT_QEMU", None)
    proc = subprocess.run(cmd, cwd=REPO, capture_output=True, text=True, env=env, timeout=600)
    left = [p.name for p in tmpdir.iterdir() if p.name.startswith("qmp")]
    assert left == [], "the run left temp dirs behind"
    assert not _processes_under(tmpdir), "the run left QEMU processes behind"
    shutil.rmtree(tmpdir)
    results = json.loads((reports / "results.json").read_text())
    return proc.returncode, proc.stdout + proc.stderr, results


def _processes_under(path: Path) -> list[int]:
    pids = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                cmdline = (entry / "cmdline").read_bytes()
            except OSError:
                continue
            if str(path).encode() in cmdline:
                pids.append(int(entry.name))
    return pids


def outcomes(results: dict[str, Any]) -> dict[tuple[str, str], str]:
    return {(r["vector"], r["qemu"]): r["outcome"] for r in results["results"]}


