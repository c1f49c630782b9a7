"""What QEMU's own documents say about the migration interface: inferred events.

``docs/about/deprecated.rst`` names the release each deprecation came in
(``(since 10.1)``), ``docs/about/removed-features.rst`` the release of each
removal (``(removed in 9.1)``). Their QMP sections' headings that name a root
command of the history (``migrate``) and, optionally, its members
(```migrate`` argument ``detach`` (since 10.1)``) become events of the
history with evidence ``inferred``: read, not observed. They fill the release
lines no schema is known of, and show where the documents and the observed
schemas disagree.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path

from qmpcompat.schema.differ.timeline import Event, Timeline

_UNDERLINE = re.compile(r"^([-'~^=\"])\1{3,}\s*$")
_WHEN = {"deprecated.rst": (re.compile(r"\(since\s+(\d+\.\d+)(?:\.\d+)?\)"), "deprecated"),
         "removed-features.rst": (re.compile(r"\(removed in\s+(\d+\.\d+)(?:\.\d+)?\)"), "removed")}


def headings(text: str) -> Iterator[tuple[str, str]]:
    """(section, heading) of every subsection heading of an rst text: the
    section is the title of the ``---`` heading above it."""
    lines = text.splitlines()
    section = ""
    for i in range(1, len(lines)):
        match = _UNDERLINE.match(lines[i])
        title = lines[i - 1].strip()
        if not match or not title or len(lines[i].strip()) < len(title):
            continue
        if match.group(1) == "-":
            section = title
        elif match.group(1) == "'":
            yield section, title


def inferred_events(docs: Path, timeline: Timeline, source: str) -> list[Event]:
    """The events the documents in ``docs`` give for the roots of ``timeline``;
    ``source`` names where the documents came from."""
    commands = {p for f in timeline.facts for p, fact in f.items() if fact["what"] == "command"}
    paths = {p for f in timeline.facts for p in f}
    out = []
    for name, (when, change) in _WHEN.items():
        path = docs / name
        if not path.is_file():
            continue
        for section, title in headings(path.read_text(errors="replace")):
            found = when.search(title)
            tokens = re.findall(r"``([^`]+)``", title)
            if not found or "QMP" not in section or not tokens or tokens[0] not in commands:
                continue
            members = [f"{tokens[0]}/arg-type/{t}" for t in tokens[1:]
                       if f"{tokens[0]}/arg-type/{t}" in paths]
            if len(tokens) > 1 and not members:
                continue  # about a return value or something the history does not follow
            for target in members or [tokens[0]]:
                out.append(Event(found.group(1), "", target,
                                 "member" if target != tokens[0] else "command", change,
                                 evidence="inferred", note=f"{name} ({source}): {title}"))
    return sorted(out, key=lambda e: (tuple(int(x) for x in e.version.split(".")), e.path))
