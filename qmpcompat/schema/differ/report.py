"""Writing differ results: text for the terminal; JSON, Markdown and HTML files."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path

from qmpcompat import __version__, escape
from qmpcompat.ciformats import CiFinding
from qmpcompat.ciformats import render as render_ci
from qmpcompat.schema.differ.compare import Comparison
from qmpcompat.schema.differ.ignore import IgnoreEntry
from qmpcompat.schema.differ.locate import Location, Locator, shown_path
from qmpcompat.schema.differ.rules import RULES, Finding
from qmpcompat.types import LEVELS

FORMAT = "qmpcompat-schema-diff/1"
COLUMNS = ("level", "rule", "root", "path", "change", "direction")
TITLES = {"root": "type"}  # the root command, event or type a finding is under
FILES = ("schema-diff.json", "schema-diff.md", "schema-diff.html")
CI_FILES = {"sarif": "schema-diff.sarif", "gitlab": "schema-diff.codequality.json"}


@dataclass
class DiffReport:
    """Everything one ``qmpcompat diff`` run found."""

    inputs: list[dict[str, str]]
    roots: list[str]
    comparisons: list[Comparison]
    ignored: dict[Finding, IgnoreEntry] = field(default_factory=dict)
    stale: list[IgnoreEntry] = field(default_factory=list)
    overdue: list[IgnoreEntry] = field(default_factory=list)  # past their review-by release
    ignore_file: str = ""
    # Plain words on what the comparison could and could not tell (where the 'if'
    # conditions of binary inputs came from, or that none were at hand).
    notes: list[str] = field(default_factory=list)

    def worst(self) -> int:
        """Rank of the worst finding not ignored (-1 when there is none)."""
        return max((f.level.rank for c in self.comparisons for f in c.findings),
                   default=-1)

    def ignored_in(self, comparison: Comparison) -> list[tuple[Finding, IgnoreEntry]]:
        """The ignored findings of one comparison, with the entries that accepted them."""
        return [(f, e) for f, e in self.ignored.items()
                if (f.old, f.new) == (comparison.old, comparison.new)]

    def counts(self, comparison: Comparison) -> dict[str, int]:
        return {lvl: sum(f.level == lvl for f in comparison.findings) for lvl in reversed(LEVELS)}

    def to_json(self) -> dict[str, object]:
        return {
            "format": FORMAT, "inputs": self.inputs, "roots": self.roots, "notes": self.notes,
            "comparisons": [{
                "old": c.old, "new": c.new, "step": c.step, "counts": self.counts(c),
                "findings": [f.to_json() for f in c.findings],
                "ignored": [{**f.to_json(), "reason": e.reason} for f, e in self.ignored_in(c)],
            } for c in self.comparisons],
            "stale_ignores": [{"line": e.line, "rule": e.rule, "path": e.path,
                               "fingerprint": e.fingerprint, "reason": e.reason}
                              for e in self.stale],
            "overdue_ignores": [{"line": e.line, "rule": e.rule, "path": e.path,
                                 "fingerprint": e.fingerprint, "review_by": e.review_by}
                                for e in self.overdue],
        }


def _heading(report: DiffReport, comparison: Comparison) -> str:
    counts = ", ".join(f"{n} {lvl}" for lvl, n in report.counts(comparison).items())
    return f"{comparison.old} -> {comparison.new} ({comparison.step}): {counts}"


def text(report: DiffReport) -> str:
    """The terminal report: per comparison a heading and one aligned row per finding."""
    lines = [f"note: {note}" for note in report.notes] + ([""] if report.notes else [])
    for comparison in report.comparisons:
        lines.append(_heading(report, comparison))
        rows = [[str(getattr(f, c)) for c in COLUMNS] for f in comparison.findings]
        if not rows:
            lines.append("  no changes")
        widths = [max([len(c)] + [len(r[i]) for r in rows]) for i, c in enumerate(COLUMNS)]
        if rows:
            lines.append("  " + "  ".join(TITLES.get(c, c).upper().ljust(w) for c, w in zip(COLUMNS, widths,
                                                                              strict=True)))
        for row in rows:
            lines.append("  " + "  ".join(v.ljust(w) for v, w in zip(row, widths,
                                                                    strict=True)).rstrip())
        ignored = report.ignored_in(comparison)
        if ignored:
            lines.append(f"  ({len(ignored)} ignored by the ignore file)")
        lines.append("")
    for entry in report.stale:
        lines.append(f"stale ignore entry ({entry.describe()}): matches no change")
    return "\n".join(lines).rstrip() + "\n"


def markdown(report: DiffReport) -> str:
    md = escape.markdown
    out = ["# QAPI schema differences", "",
           "Inputs: " + ", ".join(f"{md(i['label'])} ({md(i['spec'])})" for i in report.inputs), "",
           "Roots: " + ", ".join(escape.code_span(r) for r in report.roots), ""]
    if report.notes:
        out += [f"- Note: {md(note)}" for note in report.notes] + [""]
    for comparison in report.comparisons:
        out += [f"## {md(_heading(report, comparison))}", ""]
        if not comparison.findings:
            out += ["No changes."]
        else:
            out += ["| " + " | ".join(TITLES.get(c, c).capitalize() for c in COLUMNS)
                    + " | Why |", "|" + "---|" * (len(COLUMNS) + 1)]
        for f in comparison.findings:
            cells = [md(getattr(f, c)) for c in COLUMNS]
            cells[3] = escape.code_span(getattr(f, COLUMNS[3]))
            out.append("| " + " | ".join(cells) + f" | {md(f.explanation)} |")
        out.append("")
        ignored = report.ignored_in(comparison)
        if ignored:
            out += ["Ignored:", ""] + [f"- {escape.code_span(f.path)} {md(f.rule)}: {md(e.reason)}"
                                       for f, e in ignored]
            out.append("")
    if report.stale:
        out += ["## Stale ignore entries", ""] + [f"- {escape.markdown_item(e.describe())}"
                                                     for e in report.stale]
    return "\n".join(out).rstrip() + "\n"


def _html_table(findings: list[Finding]) -> str:
    esc = escape.html_text
    rows = ["<table><tr>" + "".join(f"<th>{TITLES.get(c, c)}</th>" for c in COLUMNS)
            + "<th>why</th></tr>"]
    for f in findings:
        cells = "".join(f"<td>{esc(str(getattr(f, c)))}</td>" for c in COLUMNS)
        rows.append(f"<tr class='{f.level}'>{cells}<td>{esc(f.explanation)}</td></tr>")
    return "\n".join(rows) + "</table>"


def html_page(report: DiffReport) -> str:
    esc = escape.html_text
    parts = ["<!DOCTYPE html>", "<html><head><meta charset='utf-8'>",
             "<title>QAPI schema differences</title><style>",
             "body{font-family:sans-serif}table{border-collapse:collapse}"
             "td,th{border:1px solid #bbb;padding:2px 6px;text-align:left}"
             ".breaking{background:#fdd}.warning{background:#ffd}.info{background:#eef}",
             "</style></head><body><h1>QAPI schema differences</h1>",
             "<p>Inputs: " + ", ".join(esc(f"{i['label']} ({i['spec']})") for i in report.inputs)
             + "</p>"]
    if report.notes:
        parts.append("<ul>" + "".join(f"<li>{esc(n)}</li>" for n in report.notes) + "</ul>")
    for comparison in report.comparisons:
        parts.append(f"<h2>{esc(_heading(report, comparison))}</h2>")
        if comparison.findings:
            parts.append(_html_table(comparison.findings))
        else:
            parts.append("<p>No changes.</p>")
        ignored = report.ignored_in(comparison)
        if ignored:
            parts.append("<p>Ignored:</p><ul>" + "".join(
                f"<li><code>{esc(f.path)}</code> {esc(f.rule)}: {esc(e.reason)}</li>"
                for f, e in ignored) + "</ul>")
    if report.stale:
        parts.append("<h2>Stale ignore entries</h2><ul>"
                     + "".join(f"<li>{esc(e.describe())}</li>" for e in report.stale) + "</ul>")
    parts.append("</body></html>")
    return "\n".join(parts) + "\n"


def write_files(report: DiffReport, directory: Path,
                locators: dict[str, Locator] | None = None) -> list[Path]:
    """Write the JSON, Markdown, HTML, SARIF and GitLab code quality reports into ``directory``."""
    directory.mkdir(parents=True, exist_ok=True)
    bodies = (json.dumps(report.to_json(), indent=1, sort_keys=True) + "\n",
              markdown(report), html_page(report))
    paths = []
    for name, body in zip(FILES, bodies, strict=True):
        path = directory / name
        path.write_text(body)
        paths.append(path)
    for fmt, name in CI_FILES.items():
        (directory / name).write_text(render_ci_report(report, fmt, locators or {}))
        paths.append(directory / name)
    return paths


def ci_findings(report: DiffReport, locators: dict[str, Locator]) -> list[CiFinding]:
    """The findings of each consecutive step as CI findings; for a QAPI source
    input (``locators`` by input label) each points at the file and line of
    ``qapi/*.json`` that declares the changed member (for something removed,
    the definition that held it; the old source when the new one lacks it all)."""
    out = []
    for comparison in report.comparisons:
        if comparison.step != "step":
            continue
        for f in comparison.findings:
            where = None
            entry = next((e for e in report.overdue if f.rule == "IGNORE_REVIEW_OVERDUE"
                          and f.path == (e.path or e.fingerprint)), None)
            if entry is not None:  # an overdue ignore entry: its line in the ignore file
                where = Location(report.ignore_file, entry.line)
            for label in (comparison.new, comparison.old):
                if where is not None:
                    break
                if label in locators and (where := locators[label].locate(f.path)):
                    break
            out.append(CiFinding(
                f.rule, f.level, f"{f.path}: {f.change} ({f.old} -> {f.new})",
                f"{f.rule}: {f.explanation}", f.fingerprint,
                shown_path(where.file) if where else "", where.line if where else None))
    return out


def render_ci_report(report: DiffReport, fmt: str, locators: dict[str, Locator]) -> str:
    """The report in CI format ``fmt`` (github, gitlab, sarif)."""
    default = report.inputs[-1]["spec"] if report.inputs else "qmpcompat"
    return render_ci(fmt, ci_findings(report, locators), RULES, __version__, default)

