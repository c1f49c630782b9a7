"""Notes (vectors/notes.yaml): a long ``inferred-from`` reason written once and
named by id; a claim that names notes reads as their texts joined, lint knows
every id and every note is used."""

from __future__ import annotations

import shutil
from pathlib import Path

from qmpcompat.vectors.lint import lint
from qmpcompat.vectors.load import default_root, load, load_data
from qmpcompat.vectors.notes import is_note_id, notes_for, resolve


def _copy(tmp_path: Path) -> Path:
    root = tmp_path / "vectors"
    shutil.copytree(default_root(), root)
    return root


def test_a_list_reads_as_its_notes_texts() -> None:
    notes = {"a-1": "first reason", "b.2": "second reason"}
    data = {"expect": [{"inferred-from": ["a-1", "a text of its own", "b.2"]},
                       {"inferred-from": "one text"}]}
    assert resolve(data, notes) == {"expect": [
        {"inferred-from": "first reason; a text of its own; second reason"},
        {"inferred-from": "one text"}]}
    assert is_note_id("10.1-11.0-as-the-range") and not is_note_id("a text of its own")


def test_the_vectors_name_notes_and_read_whole() -> None:
    root = default_root()
    notes = notes_for(root / "migrate" / "uri.yaml")
    assert len(notes) >= 20
    text = (root / "migrate" / "uri.yaml").read_text()
    assert "10.2.2-between-run-builds" in text and notes["10.2.2-between-run-builds"] not in text
    vec = next(v for v in load().vectors if v.id == "M-0003")
    assert notes["10.2.2-between-run-builds"] in (vec.expect[0].inferred_from or "")


def test_lint_knows_every_note(tmp_path: Path) -> None:
    root = _copy(tmp_path)
    uri = root / "migrate" / "uri.yaml"
    uri.write_text(uri.read_text().replace("10.2.2-between-run-builds", "10.2.2-no-such-note", 1))
    found = [str(p) for p in lint(root)]
    assert any("names note '10.2.2-no-such-note'" in p for p in found), found
    notes = root / "notes.yaml"
    notes.write_text(notes.read_text() + "  never-named: a note no claim names at all\n")
    assert any("note 'never-named' is named by no claim" in str(p) for p in lint(root))
    assert load_data(uri, "uri.yaml")  # a file naming an unknown note still loads (lint says why)
