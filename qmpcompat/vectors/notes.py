"""Notes (``vectors/notes.yaml``): what a claim rests on, written once and referred
to by id, as Wycheproof defines its flags once.

A claim's ``inferred-from`` is either one text, or a list whose items are note
ids or texts of their own; ``resolve`` turns such a list into the one text the
rest of the package reads (the notes' texts and the other items, joined with
``; ``), when a file is loaded. The format is ``vectors/notes.schema.json``; a
list item that looks like an id (no spaces) must be a defined note (lint).
"""

from __future__ import annotations

import re
from functools import cache
from pathlib import Path

from qmpcompat.errors import VectorError
from qmpcompat.vectors.yamlfile import LineDict, load_yaml

NOTES_FILE = "notes.yaml"
NOTES_SCHEMA = "notes.schema.json"
KEY = "inferred-from"
_ID = re.compile(r"[a-z0-9][a-z0-9.-]*")


def is_note_id(item: str) -> bool:
    """Whether a list item of ``inferred-from`` is a note's id (else it is text)."""
    return bool(_ID.fullmatch(item))


@cache
def _notes_at(path: Path, mtime: float) -> dict[str, str]:
    data = load_yaml(path, f"{path.parent.name}/{NOTES_FILE}")
    notes = data.get("notes") if isinstance(data, dict) else None
    if not isinstance(notes, dict) or not all(
            isinstance(k, str) and isinstance(v, str) for k, v in notes.items()):
        raise VectorError("notes: a mapping of note ids to texts", f"{path.parent.name}/{NOTES_FILE}")
    return dict(notes)


def notes_for(path: Path) -> dict[str, str]:
    """The notes of the vector dir a data file belongs to (its own dir, or the one
    above it: ``vectors/migrate/x.yaml``); empty when there are none."""
    for root in (path.parent, path.parent.parent):
        found = root / NOTES_FILE
        if found.is_file():
            return _notes_at(found, found.stat().st_mtime)
    return {}


def resolve(data: object, notes: dict[str, str]) -> object:
    """``data`` (a parsed data file, left as it is) with every ``inferred-from`` list
    turned into its text: a note id's text, any other item as written."""
    if isinstance(data, dict):
        out = LineDict() if isinstance(data, LineDict) else {}
        if isinstance(data, LineDict) and isinstance(out, LineDict):
            out.line = data.line  # where it stands, for the messages that name it
        out.update({k: ("; ".join(notes.get(i, i) if isinstance(i, str) else str(i) for i in v)
                        if k == KEY and isinstance(v, list) else resolve(v, notes))
                    for k, v in data.items()})
        return out
    if isinstance(data, list):
        return [resolve(v, notes) for v in data]
    return data


def unknown_ids(data: object, notes: dict[str, str]) -> list[str]:
    """The note ids an ``inferred-from`` list of ``data`` names that are not defined."""
    out: list[str] = []
    if isinstance(data, dict):
        for k, v in data.items():
            if k == KEY and isinstance(v, list):
                out += [i for i in v if isinstance(i, str) and is_note_id(i) and i not in notes]
            else:
                out += unknown_ids(v, notes)
    elif isinstance(data, list):
        for v in data:
            out += unknown_ids(v, notes)
    return out


def used_ids(data: object) -> set[str]:
    """Every note id an ``inferred-from`` list of ``data`` names."""
    if isinstance(data, dict):
        return {i for k, v in data.items() if k == KEY and isinstance(v, list)
                for i in v if isinstance(i, str) and is_note_id(i)} | {
            i for k, v in data.items() if k != KEY for i in used_ids(v)}
    if isinstance(data, list):
        return {i for v in data for i in used_ids(v)}
    return set()
