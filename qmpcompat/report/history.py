"""The schema differ's history of the run's binaries, for the HTML report."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from qmpcompat.errors import QmpCompatError
from qmpcompat.provision.build import QemuBuild


def schema_history(builds: Sequence[QemuBuild]) -> list[dict[str, Any]]:
    """Each consecutive step between the builds' migration interfaces, with its
    classified findings; empty when there are fewer than two builds or a
    schema cannot be read (the run's own tests report that)."""
    if len(builds) < 2:
        return []
    from qmpcompat.schema.compare import history, load
    from qmpcompat.schema.inputs import from_build

    try:
        comparisons = history([load(from_build(b, b.label)) for b in builds])
    except QmpCompatError:
        return []
    return [{"old": c.old, "new": c.new,
             "findings": [{k: f.to_json()[k] for k in ("level", "rule", "path", "change", "explanation")}
                          for f in c.findings]}
            for c in comparisons if c.step == "step"]
