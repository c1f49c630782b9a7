"""Accepted changes that expire: an ignore-file entry or a known defect with
``review-by: RELEASE`` accepts nothing on a QEMU past that release, and the
gate fails with a message that says so."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
import yaml
from helpers.suite_runner import REPO, run_suite
from test_crash_verdict import KNOWN_CRASH, crash_vectors

from qmpcompat.cli import main
from qmpcompat.schema.differ.gate import overdue
from qmpcompat.schema.differ.ignore import past_review

IGNORE = REPO / "vectors" / "schema" / "ignore.yaml"


def _ignore_file(tmp_path: Path, review_by: str) -> Path:
    """The project's ignore file, with review-by on the entry that accepts blk's removal."""
    entries = yaml.safe_load(IGNORE.read_text())
    for entry in entries:
        if entry["path"] == "migrate/arg-type/blk":
            entry["review-by"] = review_by
    path = tmp_path / "ignore.yaml"
    path.write_text(yaml.safe_dump(entries, sort_keys=False))
    return path


@pytest.mark.parametrize(("review_by", "late"), [("10.0", False), ("9.2", True)])
def test_ignore_entry_expires(tmp_path: Path, review_by: str, late: bool,
                              capsys: pytest.CaptureFixture[str]) -> None:
    ignore = _ignore_file(tmp_path, review_by)
    rc = main(["diff", "7.2", "10.0", "--ignore", str(ignore), "--no-files"])
    out = capsys.readouterr().out
    if late:
        assert rc == 1
        assert re.search(r"breaking +IGNORE_REVIEW_OVERDUE .*was to be reviewed by 9\.2; QEMU 10\.0\.\d+ "
                         r"is past it: .*renew review-by or remove the entry", out), out
        assert re.search(r"breaking +INPUT_MEMBER_REMOVED .* migrate/arg-type/blk", out), out  # back
        assert overdue(ignore, "10.0.13", "a", "b") and not overdue(ignore, "9.2.5", "a", "b")
        # in CI, the annotation points at the entry's line of the ignore file
        assert main(["diff", "7.2", "10.0", "--ignore", str(ignore), "--no-files", "--format", "github"]) == 1
        line = next(n for n, text in enumerate(ignore.read_text().splitlines(), 1) if "blk" in text)
        annotations = capsys.readouterr().out
        where = rf"^::error file={re.escape(str(ignore))},line={line - 1},"  # the entry starts a line up
        assert re.search(where + r"title=migrate/arg-type/blk%3A ignore entry line", annotations, re.M)
    else:
        assert rc == 0, out
        assert "migrate/arg-type/blk" not in out and "reviewed by" not in out


def test_bad_review_by(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    ignore = _ignore_file(tmp_path, "soon")
    assert main(["diff", "7.2", "10.0", "--ignore", str(ignore), "--no-files"]) == 2
    assert "review-by must be a release such as 11.2 (got 'soon')" in capsys.readouterr().err


def test_releases() -> None:
    assert not past_review("11.2", "11.2.5")
    assert past_review("11.2", "11.3.0") and past_review("11.2", "12.0.0")
    assert past_review("11.10", "11.11.0") and not past_review("11.10", "11.9.0")
    assert not past_review("", "12.0.0") and not past_review("11.2", "")


@pytest.mark.parametrize(("review_by", "outcome"), [("11.1", "xfailed"), ("10.2", "failed")])
def test_known_defect_expires(tmp_path: Path, review_by: str, outcome: str) -> None:
    vectors = crash_vectors(tmp_path)
    data = yaml.safe_load((vectors / "known-defects.yaml").read_text())
    for defect in data["defects"]:
        if defect["vector"] == KNOWN_CRASH:
            defect["review-by"] = review_by
    (vectors / "known-defects.yaml").write_text(yaml.safe_dump(data, sort_keys=False))
    rc, out, doc = run_suite(tmp_path, "-k", KNOWN_CRASH, suites="sid", vectors=vectors)
    rec = next(r for r in doc["results"] if r["vector"] == KNOWN_CRASH)
    assert rec["outcome"] == outcome, out
    if outcome == "failed":
        assert rc == 1
        assert f"known defect KD-0001 was to be reviewed by 10.2; QEMU {rec['qemu_version']} is past it" \
            in rec["message"]
    else:
        assert rc == 0, out
