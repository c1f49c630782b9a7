"""Writing the schema history: text, Markdown, JSON and a self-contained HTML page.

Every format is fed from ``Timeline.to_json()``: the releases and where each
was seen, the release lines nobody recorded, the events by release, the
inferred notes from QEMU's documents, and the lifecycle of every path.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

from qmpcompat import escape
from qmpcompat.historydoc import EventJSON, ReleaseJSON, TimelineJSON
from qmpcompat.schema.differ.timeline import Timeline

FILES = ("schema-history.json", "schema-history.md", "schema-history.html")


def _event_text(event: EventJSON) -> str:
    text = f"{event['path']}: {event['change']}"
    if event.get("old") or event.get("new"):
        text += f" ({event.get('old', '')} -> {event.get('new', '')})"
    if event.get("note"):
        text += f" [{event['note']}]"
    return text


def _gap_text(event: EventJSON) -> str:
    if not event["unrecorded"]:
        return ""
    return (f"seen between {event['previous']} and {event['version']}; no schema is known of"
            f" {', '.join(event['unrecorded'])}, where it may have happened")


def _by_release(data: TimelineJSON) -> Iterator[tuple[ReleaseJSON, list[EventJSON]]]:
    for release in data["releases"]:
        yield release, [e for e in data["events"] if e["version"] == release["version"]]


def text(timeline: Timeline) -> str:
    """The terminal view: one block per release with changes."""
    data = timeline.to_json()
    releases = data["releases"]
    lines = [f"history of {', '.join(data['roots'])} over {len(releases)} schemas,"
             f" {releases[0]['version']} to {releases[-1]['version']}"]
    if data["unrecorded"]:
        lines.append(f"no schema known of: {', '.join(data['unrecorded'])}")
    first = releases[0]
    lines.append(f"{first['version']}: the oldest known ({first['where']})")
    for release, events in _by_release(data):
        if not events and "inference" not in release:
            continue
        lines.append(f"{release['version']} ({release['evidence']}: {release['where']}):")
        if "inference" in release:
            lines.append(f"  [first run: {release['inference']}]")
        gaps = {_gap_text(e) for e in events} - {""}
        lines += [f"  ({g})" for g in sorted(gaps)]
        lines += [f"  {_event_text(e)}" for e in events]
    quiet = [r["version"] for r, ev in _by_release(data)
             if not ev and r is not first and "inference" not in r]
    if quiet:
        lines.append(f"no change in: {', '.join(quiet)}")
    for note in data["inferred"]:
        lines.append(f"inferred {note['version']}: {_event_text(note)}")
    return "\n".join(lines) + "\n"


_md = escape.markdown


def markdown(timeline: Timeline) -> str:
    """The Markdown view: the releases, the events, the lifecycle table."""
    data = timeline.to_json()
    out = [f"# Schema history of {_md(', '.join(data['roots']))}", ""]
    if data["unrecorded"]:
        out += [f"No schema is known of QEMU {_md(', '.join(data['unrecorded']))}: a change first"
                " seen after such a gap may have come in any release of it.", ""]
    out += ["| release | evidence | seen as | changes | inferred claims when first run |",
            "| --- | --- | --- | --- | --- |"]
    for release, events in _by_release(data):
        out.append(f"| {_md(release['version'])} | {_md(release['evidence'])} | {_md(release['where'])} |"
                   f" {len(events)} | {_md(release.get('inference', ''))} |")
    out += ["", "## Changes", "", "| release | path | change | evidence | note |",
            "| --- | --- | --- | --- | --- |"]
    for event in data["events"] + data["inferred"]:
        change = event["change"] + (f" ({event.get('old', '')} -> {event.get('new', '')})"
                                    if event.get("old") or event.get("new") else "")
        note = "; ".join(x for x in (_gap_text(event), event.get("note", "")) if x)
        out.append(f"| {_md(event['version'])} | {escape.code_span(event['path'])} | {_md(change)} |"
                   f" {_md(event['evidence'])} | {_md(note)} |")
    out += ["", "## Every path", "", "| path | what | first seen | last seen | optional |"
            " features | changes |", "| --- | --- | --- | --- | --- | --- | --- |"]
    for row in data["lifecycle"]:
        first = ("<= " if row["since_oldest"] else "") + row["first"]
        last = "current" if row["current"] else row["last"]
        optional = {True: "yes", False: "no", None: ""}[row["optional"]]
        changes = ", ".join(f"{c['change']} {c['version']}" for c in row["changes"])
        out.append(f"| {escape.code_span(row['path'])} | {_md(row['what'])} | {_md(first)} | {_md(last)} |"
                   f" {optional} | {_md(', '.join(row['features']))} | {_md(changes)} |")
    return "\n".join(out) + "\n"


def html_page(timeline: Timeline) -> str:
    """A self-contained HTML page (no scripts, no network)."""
    return "<!doctype html>\n<meta charset=utf-8>\n<title>qmpcompat schema history</title>\n" \
        "<style>body{font:14px sans-serif;margin:2em}table{border-collapse:collapse}" \
        "td,th{border:1px solid #ccc;padding:2px 6px;text-align:left}code{font-size:13px}" \
        ".inferred{color:#a60}.source{color:#06a}</style>\n" + html_section(timeline) + "\n"


def html_section(timeline: Timeline) -> str:
    """The history as an HTML fragment (for the conformance report too)."""
    data = timeline.to_json()
    esc = escape.html_text
    parts = [f"<h2>Schema history of {esc(', '.join(data['roots']))}</h2>"]
    if data["unrecorded"]:
        parts.append(f"<p>No schema is known of QEMU {esc(', '.join(data['unrecorded']))}: a"
                     " change first seen after such a gap may have come in any of them.</p>")
    rows = []
    for release, events in _by_release(data):
        items = "".join(f"<li><code>{esc(e['path'])}</code> {esc(e['change'])}"
                        + (f" ({esc(e.get('old', ''))} &rarr; {esc(e.get('new', ''))})"
                           if e.get("old") or e.get("new") else "")
                        + (f" <em>{esc(_gap_text(e))}</em>" if e["unrecorded"] else "") + "</li>"
                        for e in events)
        cell = f"<ul>{items}</ul>" if items else "no change"
        if "inference" in release:
            cell += f"<p><em>first run: {esc(release['inference'])}</em></p>"
        rows.append(f"<tr class='{esc(release['evidence'])}'><td>{esc(release['version'])}</td>"
                    f"<td>{esc(release['evidence'])}</td><td>{esc(release['where'])}</td>"
                    f"<td>{cell}</td></tr>")
    parts.append("<table><tr><th>release</th><th>evidence</th><th>seen as</th><th>changes</th>"
                 "</tr>" + "".join(rows) + "</table>")
    if data["inferred"]:
        notes = "".join(f"<li class=inferred>{esc(n['version'])}: {esc(_event_text(n))}"
                        " (inferred)</li>" for n in data["inferred"])
        parts.append(f"<h3>Inferred from QEMU's documents</h3><ul>{notes}</ul>")
    return "\n".join(parts)


def write_files(timeline: Timeline, directory: Path) -> list[Path]:
    """Write the JSON, Markdown and HTML files into ``directory``."""
    directory.mkdir(parents=True, exist_ok=True)
    texts = (json.dumps(timeline.to_json(), indent=1) + "\n", markdown(timeline),
             html_page(timeline))
    paths = []
    for name, body in zip(FILES, texts, strict=True):
        path = directory / name
        path.write_text(body)
        paths.append(path)
    return paths
