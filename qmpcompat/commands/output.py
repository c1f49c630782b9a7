"""Where a command's text output goes: ``-`` for stdout, else a file (said on stderr)."""

from __future__ import annotations

import sys
from pathlib import Path


def write_out(target: str, text: str) -> None:
    """Write ``text`` to stdout when ``target`` is ``-``, else to the file ``target``."""
    if target == "-":
        sys.stdout.write(text)
        return
    Path(target).write_text(text)
    print(f"wrote {target}", file=sys.stderr)
