"""A run's lint is remembered by what it reads (qmpcompat.vectors.lintmemo): the
same files give the earlier problems without linting again; any change of a
file, of the options or of the tree's kind lints afresh."""

from __future__ import annotations

import functools
import json
import os
from pathlib import Path

import pytest
from helpers.suite_runner import basic_vectors

import qmpcompat
from qmpcompat import memo
from qmpcompat.reaper import owner
from qmpcompat.vectors import lintmemo
from qmpcompat.vectors.lint import Problem, lint


class Counted:
    """The real lint of a vector set, counting its calls."""

    def __init__(self, root: Path) -> None:
        self.root, self.calls = root, 0

    def __call__(self) -> list[Problem]:
        self.calls += 1
        return lint(self.root)


def _broken(tmp_path: Path) -> Path:
    """The basic set with one problem the lint names (an unknown flag)."""
    root = basic_vectors(tmp_path)
    mig = root / "migrate" / "basic.yaml"
    text = mig.read_text()
    assert "flags: [uri, end-to-end]" in text
    mig.write_text(text.replace("flags: [uri, end-to-end]", "flags: [uri, end-to-end, no-such-flag]", 1))
    return root


def test_the_same_set_is_linted_once(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    written: list[str] = []  # the temp files renamed into place: the reaper's, if a writer is killed
    rename = os.replace
    monkeypatch.setattr(os, "replace", lambda a, b: (written.append(Path(a).name), rename(a, b))[1])
    root = _broken(tmp_path)
    counted = Counted(root)
    first = lintmemo.remembered(root, "x", tmp_path / "cache", counted)
    again = lintmemo.remembered(root, "x", tmp_path / "cache", counted)
    assert counted.calls == 1
    assert first == again == lint(root) and first  # the problems, as linted (a line, an id)
    assert any(p.line and p.vector_id for p in again)
    assert len(written) == 1 and written[0].startswith(f".qmpw-{owner()}-"), written


def test_a_changed_file_or_option_lints_again(tmp_path: Path) -> None:
    root = basic_vectors(tmp_path)
    counted = Counted(root)
    lintmemo.remembered(root, "x", tmp_path / "cache", counted)
    lintmemo.remembered(root, "y", tmp_path / "cache", counted)
    notes = root / "notes.yaml"
    notes.write_text(notes.read_text() + "\n")
    assert lintmemo.remembered(root, "x", tmp_path / "cache", counted) == lint(root)
    (root / "migrate" / "extra.yaml").write_text("not: [a vector file")
    assert lintmemo.remembered(root, "x", tmp_path / "cache", counted) == lint(root) != []
    assert counted.calls == 4


def test_a_tree_with_a_link_is_never_remembered(tmp_path: Path) -> None:
    root = basic_vectors(tmp_path)
    (root / "elsewhere").symlink_to(tmp_path)
    counted = Counted(root)
    for _ in range(2):
        lintmemo.remembered(root, "x", tmp_path / "cache", counted)
    assert counted.calls == 2 and not (tmp_path / "cache").exists()
    (root / "elsewhere").unlink()
    os.mkfifo(root / "fifo")
    lintmemo.remembered(root, "x", tmp_path / "cache", counted)
    assert counted.calls == 3 and lintmemo.key(root, "x") is None


def test_an_entry_that_does_not_read_is_linted_again(tmp_path: Path) -> None:
    root = basic_vectors(tmp_path)
    counted = Counted(root)
    lintmemo.remembered(root, "x", tmp_path / "cache", counted)
    [entry] = (tmp_path / "cache").glob("*.json")
    for bad in ("{", json.dumps([{"file": "f"}]), json.dumps({"a": 1})):
        entry.write_text(bad)
        assert lintmemo.remembered(root, "x", tmp_path / "cache", counted) == lint(root)
    assert counted.calls == 4


def test_the_oldest_entries_go(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(lintmemo, "KEEP", 2)
    root = basic_vectors(tmp_path)
    names = []
    for option in ("a", "b", "c"):
        lintmemo.remembered(root, option, tmp_path / "cache", Counted(root))
        names.append(f"{lintmemo.key(root, option)}.json")
    assert sorted(p.name for p in (tmp_path / "cache").glob("*.json")) == sorted(names[1:])


def test_the_key_covers_the_code_but_not_its_bytecode(tmp_path: Path,
                                                      monkeypatch: pytest.MonkeyPatch) -> None:
    root = basic_vectors(tmp_path)
    package = tmp_path / "package"
    (package / "__pycache__").mkdir(parents=True)
    (package / "lint.py").write_text("RULES = 1\n")
    monkeypatch.setattr(qmpcompat, "__file__", str(package / "__init__.py"))
    monkeypatch.setattr(memo, "package_digest", functools.cache(memo.package_digest.__wrapped__))

    def key() -> str | None:
        memo.package_digest.cache_clear()  # as a new process reads it
        return lintmemo.key(root, "x")

    before = key()
    (package / "__pycache__" / "lint.cpython-311.pyc").write_bytes(b"\0")
    assert key() == before
    (package / "lint.py").write_text("RULES = 2\n")
    assert key() != before


@pytest.mark.parametrize("limit", ["MAX_FILES", "MAX_BYTES"])
def test_a_tree_past_the_limits_is_linted_afresh(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                 limit: str) -> None:
    root = basic_vectors(tmp_path)
    assert lintmemo.key(root, "x") is not None
    monkeypatch.setattr(memo if limit == "MAX_FILES" else lintmemo, limit,
                        {"MAX_FILES": 3, "MAX_BYTES": 10_000}[limit])
    assert lintmemo.key(root, "x") is None
