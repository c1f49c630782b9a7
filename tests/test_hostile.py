"""Hostile inputs, as someone with write access to a vector directory, a results
file or the command line would try them: patterns that never end, text that
forges report lines, names that need DNS, options smuggled into external
commands, symlinked data files, replays that fill the disk, and verdicts that
another run or a malformed file could change. Each has its entry in
tests/bad-inputs/ (cases.yaml says what it must get)."""

from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
import yaml
from suite_runner import REPO, basic_vectors

from qmpcompat.vectors.pattern import check

BAD = Path(__file__).resolve().parent / "bad-inputs"
CORPUS = yaml.safe_load((BAD / "cases.yaml").read_text())


def _qmpcompat(*args: str, timeout: float = 120, cwd: Path = REPO) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "qmpcompat", *args], capture_output=True, text=True,
                          timeout=timeout, cwd=cwd)


# --- patterns that never end ------------------------------------------------


@pytest.mark.parametrize("name", sorted(CORPUS["runs"]))
def test_the_history_lint_runs_patterns_in_bounded_time(tmp_path: Path, name: str) -> None:
    root = basic_vectors(tmp_path)
    (root / "migrate" / name).write_text((BAD / name).read_text())
    proc = _qmpcompat("lint", "--vectors", str(root), timeout=60)  # a backtracking engine: hours
    assert proc.returncode == 1, proc.stderr
    assert f"vectors/migrate/{CORPUS['runs'][name]['lint']}" in proc.stdout


def test_patterns_match_in_linear_time() -> None:
    """desc-pattern and migration-error both, on a text long enough that a
    backtracking engine would not finish this year."""
    code = textwrap.dedent("""
        from qmpcompat.vectors.match import differences
        from qmpcompat.vectors.model import Expectation
        from qmpcompat.vectors.run import Observation
        from qmpcompat.vectors.versions import VersionRange
        every = VersionRange.parse("*")
        text = "x" * 60
        reject = Expectation(every, "reject", error_class="GenericError", desc_pattern="(x+x+)+y", why="w")
        print(differences(reject, Observation("reject", error_class="GenericError", desc=text)))
        failed = Expectation(every, "accept", migration="failed", migration_error="(x|xx)+y")
        print(differences(failed, Observation("accept", migration="failed", migration_error=text)))
    """)
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=30)
    assert proc.returncode == 0, proc.stderr
    assert "desc: expected /(x+x+)+y/" in proc.stdout and "migration error: expected" in proc.stdout


def test_patterns_outside_the_linear_subset_are_refused() -> None:
    assert check("(a)\\1") == "invalid escape sequence: \\1"
    assert check("x(?=y)") == "invalid perl operator: (?="
    assert check("a" * 3000) == "too long (3000 characters; at most 2000)"
    assert check("Failed to connect to '127\\.0\\.0\\.1:[0-9]+': Connection refused") is None
