"""``results.json``: the machine-readable record of a run.

Its format is versioned (``format``) and described by
``qmpcompat/data/results.schema.json``.
"""

from __future__ import annotations

import json
import os
import platform
import socket
import tempfile
import time
from collections import Counter
from pathlib import Path
from typing import Any

from qmpcompat import __version__

FORMAT = 1
OUTCOMES = ("passed", "failed", "xfailed", "skipped", "error")


def environment(builds: list[dict[str, Any]], vector_revision: str,
                problems: list[dict[str, str]]) -> dict[str, Any]:
    """Where and with what a run ran."""
    os_release = {}
    try:
        for line in Path("/etc/os-release").read_text().splitlines():
            key, _, value = line.partition("=")
            os_release[key] = value.strip('"')
    except OSError:
        pass
    return {
        "host": socket.gethostname(),
        "os": os_release.get("PRETTY_NAME", platform.platform()),
        "python": platform.python_version(),
        "qmpcompat": __version__,
        "vector_revision": vector_revision,
        "binaries": builds,
        "problems": problems,
    }


def totals(records: list[dict[str, Any]]) -> dict[str, dict[str, int]]:
    """Per QEMU label: how many of each outcome."""
    out: dict[str, Counter[str]] = {}
    for rec in records:
        out.setdefault(rec["qemu"], Counter())[rec["outcome"]] += 1
    return {label: {o: counts.get(o, 0) for o in OUTCOMES} for label, counts in sorted(out.items())}


def results_document(env: dict[str, Any], records: list[dict[str, Any]], started: float,
                     extra: dict[str, Any] | None = None) -> dict[str, Any]:
    records = sorted(records, key=lambda r: (r.get("vector", ""), r.get("qemu", "")))
    return {
        "format": FORMAT,
        "started": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(started)),
        "seconds": round(time.time() - started, 3),
        "environment": env,
        "totals": totals(records),
        "results": records,
        **(extra or {}),
    }


def write_json(path: Path, data: Any) -> None:
    """Write ``data`` atomically: readers never see half a file."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")
    with os.fdopen(fd, "w") as fh:
        json.dump(data, fh, indent=1, sort_keys=False)
        fh.write("\n")
    os.replace(tmp, path)
