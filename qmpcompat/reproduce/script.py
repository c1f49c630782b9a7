"""A known defect's reproducer as one standalone Python script.

The script is ``qmpcompat/data/reproducer.py`` (Python 3.10+ and the standard
library only: it starts each QEMU with the plan's options, listens on the
unix socket its ``-qmp`` names, plays the plan's QMP exchange, and says whether
the defect showed) with the plan embedded as JSON in place of ``__PLAN__``.
"""

from __future__ import annotations

import json
from pathlib import Path

from qmpcompat.reproduce.model import Plan

TEMPLATE = Path(__file__).resolve().parents[1] / "data" / "reproducer.py"
SLOT = 'r"""__PLAN__"""'
WIDTH = 88


def render_script(plan: Plan) -> str:
    """The reproducer script of ``plan``: the template with the plan in ``PLAN``, its
    JSON cut into string literals of ``WIDTH`` characters (a JSON string literal is a
    Python one, whatever it holds)."""
    text = TEMPLATE.read_text()
    data = json.dumps(plan.to_json())  # members in the order they are sent
    chunks = [data[i:i + WIDTH] for i in range(0, len(data), WIDTH)]
    literal = "(\n" + "\n".join(f"    {json.dumps(chunk)}" for chunk in chunks) + ")"
    if text.count(SLOT) != 1:
        raise ValueError(f"{TEMPLATE} must hold {SLOT} once")
    return text.replace(SLOT, literal)
