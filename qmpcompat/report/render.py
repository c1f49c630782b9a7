"""Write every report of a results document into a directory, all or nothing."""

from __future__ import annotations

from pathlib import Path

from qmpcompat.reaper import write_atomic
from qmpcompat.report.consumers import consumer_matrix
from qmpcompat.report.html import render_html
from qmpcompat.report.junit import render_junit
from qmpcompat.report.matrix import matrix
from qmpcompat.report.results import write_json
from qmpcompat.report.summary import render_summary
from qmpcompat.resultdoc import ResultsJSON

OUTPUTS = ("results.json", "summary.md", "index.html", "junit.xml")


def write_reports(doc: ResultsJSON, outdir: Path, fail_on: str = "breaking",
                  junit: bool = True) -> list[Path]:
    """Render every output first, then write each atomically; a failure while
    rendering writes nothing."""
    if doc.get("pairs"):
        doc = {**doc, "pair_matrix": matrix(doc["pairs"])}
    if doc.get("consumers"):
        doc = {**doc, "consumer_matrix": consumer_matrix(doc["consumers"])}
    texts = {"summary.md": render_summary(doc, fail_on), "index.html": render_html(doc, fail_on)}
    if junit:
        texts["junit.xml"] = render_junit(doc)
    outdir.mkdir(parents=True, exist_ok=True)
    written = [outdir / "results.json"]
    write_json(written[0], doc)
    for name, text in texts.items():
        write_atomic(outdir / name, text)
        written.append(outdir / name)
    return written
