"""``index.html``: one self-contained page (no network, no server) with the
matrix of vectors against QEMU versions and the schema history beside it."""

from __future__ import annotations

from dataclasses import asdict
from pathlib import Path

from qmpcompat.escape import script_json
from qmpcompat.report import runmodes
from qmpcompat.report.changes import run_steps
from qmpcompat.report.changes_out import to_json
from qmpcompat.report.consumers import consumer_matrix
from qmpcompat.report.crashes import crash_rows, defect_rows
from qmpcompat.report.matrix import matrix
from qmpcompat.report.summary import verdict
from qmpcompat.resultdoc import ResultsJSON

TEMPLATE = Path(__file__).resolve().parents[1] / "data" / "report.html"


def render_html(doc: ResultsJSON, fail_on: str = "breaking") -> str:
    v = verdict(doc, fail_on)
    run = doc.get("run")
    data = {**doc, "verdict": {**asdict(v), "headline": v.headline, "crash_rows": crash_rows(doc),
                               "defect_rows": defect_rows(doc),
                               "run_line": runmodes.describe(run) if run else ""},
            "behaviour_changes": to_json(run_steps(doc))["steps"],
            "pair_matrix": matrix(doc.get("pairs") or []),
            "consumer_matrix": consumer_matrix(doc.get("consumers") or [])}
    return TEMPLATE.read_text().replace("__DATA__", script_json(data))
