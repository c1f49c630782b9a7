"""``index.html``: one self-contained page (no network, no server) with the
matrix of vectors against QEMU versions and the schema history beside it."""

from __future__ import annotations

import json
from dataclasses import asdict
from pathlib import Path
from typing import Any

from qmpcompat.report.summary import verdict

TEMPLATE = Path(__file__).resolve().parents[1] / "data" / "report.html"


def render_html(doc: dict[str, Any], fail_on: str = "breaking") -> str:
    data = {**doc, "verdict": asdict(verdict(doc, fail_on))}
    # Inside <script>, "</" would end the element: escape it (and "<!--").
    payload = json.dumps(data, separators=(",", ":")).replace("</", "<\\/").replace("<!--", "<\\!--")
    return TEMPLATE.read_text().replace("__DATA__", payload)
