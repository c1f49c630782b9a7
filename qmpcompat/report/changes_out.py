"""Writing behaviour changes: text for the terminal, Markdown, JSON (format
``qmpcompat-behaviour-changes/1``, schema in
``qmpcompat/data/behaviour-changes.schema.json``) and HTML, all from one list
of steps and their changes."""

from __future__ import annotations

import json
from pathlib import Path

from qmpcompat import escape
from qmpcompat.ciformats import FORMATS, CiFinding
from qmpcompat.ciformats import render as render_ci
from qmpcompat.report.change_rules import BEHAVIOUR_RULES
from qmpcompat.report.changes import Change, Step
from qmpcompat.types import Level

FORMAT = "qmpcompat-behaviour-changes/1"
SCHEMA = Path(__file__).resolve().parents[1] / "data" / "behaviour-changes.schema.json"
COLUMNS = ("level", "rule", "case", "before", "after")


def to_json(steps: list[Step]) -> dict[str, object]:
    return {"format": FORMAT,
            "rules": {rid: {"level": lvl, "explanation": why} for rid, (lvl, why) in BEHAVIOUR_RULES.items()},
            "steps": [{"base": s.base, "new": s.new, "sources": s.sources, "counts": s.counts(),
                       "changes": [c.to_json() for c in s.changes]} for s in steps]}


def _defect(c: Change) -> str:
    return f" (known defect {c.defect})" if c.defect else ""


def text(steps: list[Step]) -> str:
    """Per step a heading, then one block per change, worst first."""
    lines: list[str] = []
    for step in steps:
        lines.append(step.heading())
        if not step.changes:
            lines.append("  no behaviour changes")
        for c in sorted(step.changes, key=lambda c: (-Level(c.level).rank, c.rule, c.case)):
            lines.append(f"  {c.level:8} {c.rule:24} {c.case}{_defect(c)}")
            lines.append(f"           before: {c.before}")
            lines.append(f"           after:  {c.after}")
        lines.append("")
    return "\n".join(lines).rstrip() + "\n"


_cell = escape.markdown


def markdown_rows(changes: list[Change]) -> list[str]:
    """A Markdown table of ``changes`` (also used by summary.md)."""
    out = ["| level | rule | case | before | after |", "| --- | --- | --- | --- | --- |"]
    for c in sorted(changes, key=lambda c: (-Level(c.level).rank, c.rule, c.case)):
        out.append(f"| {_cell(c.level)} | {_cell(c.rule)} | {_cell(c.case + _defect(c))} | "
                   f"{_cell(c.before)} | {_cell(c.after)} |")
    return out


def markdown(steps: list[Step]) -> str:
    out = ["# Behaviour changes", ""]
    for step in steps:
        out += [f"## {_cell(step.heading())}", ""]
        out += markdown_rows(step.changes) if step.changes else ["No behaviour changes."]
        out.append("")
    return "\n".join(out).rstrip() + "\n"


def html_page(steps: list[Step]) -> str:
    esc = escape.html_text
    parts = ["<!DOCTYPE html>", "<html><head><meta charset='utf-8'><title>Behaviour changes</title><style>",
             "body{font-family:sans-serif}table{border-collapse:collapse}"
             "td,th{border:1px solid #bbb;padding:2px 6px;text-align:left;vertical-align:top}"
             ".breaking{background:#fdd}.warning{background:#ffd}.info{background:#eef}",
             "</style></head><body><h1>Behaviour changes</h1>"]
    for step in steps:
        parts.append(f"<h2>{esc(step.heading())}</h2>")
        if not step.changes:
            parts.append("<p>No behaviour changes.</p>")
            continue
        parts.append("<table><tr>" + "".join(f"<th>{c}</th>" for c in COLUMNS) + "<th>why</th></tr>")
        for c in sorted(step.changes, key=lambda c: (-Level(c.level).rank, c.rule, c.case)):
            cells = "".join(f"<td>{esc(str(getattr(c, k)) + (_defect(c) if k == 'case' else ''))}</td>"
                            for k in COLUMNS)
            parts.append(f"<tr class='{esc(c.level)}'>{cells}<td>{esc(c.explanation)}</td></tr>")
        parts.append("</table>")
    parts.append("</body></html>")
    return "\n".join(parts) + "\n"


def render(steps: list[Step], fmt: str) -> str:
    """``steps`` in format ``fmt`` (text, markdown, json, html)."""
    if fmt == "json":
        return json.dumps(to_json(steps), indent=1) + "\n"
    return {"text": text, "markdown": markdown, "html": html_page}[fmt](steps)


def ci_findings(steps: list[Step]) -> list[CiFinding]:
    """The changes as CI findings, each pointing at its vector's file and line
    (a derived case has none: it comes from the binary's own schema)."""
    out = []
    for step in steps:
        for c in sorted(step.changes, key=lambda c: (-Level(c.level).rank, c.rule, c.case)):
            path, _, line = c.file.rpartition(":")
            located = bool(path) and line.isdigit()
            out.append(CiFinding(
                c.rule, c.level, f"{c.case}: {c.rule} ({c.base} -> {c.new})",
                f"{c.before} -> {c.after}{_defect(c)}. {c.explanation}", c.fingerprint,
                path if located else "", int(line) if located else None))
    return out


def render_any(steps: list[Step], fmt: str, version: str, default_path: str) -> str:
    """``steps`` in any format: text, markdown, json, html, or a CI format."""
    if fmt in FORMATS:
        return render_ci(fmt, ci_findings(steps), BEHAVIOUR_RULES, version, default_path)
    return render(steps, fmt)
