"""Recording observations: the versions a run saw doing what an expectation says
go into that expectation's ``observed-on``.

Only a case that passed counts, and only on the expectation it was judged
against (the one whose range holds the binary's version); a known defect, a
failure or a skip observes nothing. The results must come from a run of this
very vector set (the same ``vector_revision``), so no expectation has changed
since.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from qmpcompat.errors import ReportError
from qmpcompat.types import Outcome, Version
from qmpcompat.vectors.lint import canonical_text
from qmpcompat.vectors.load import VectorSet, vector_files
from qmpcompat.vectors.yamlfile import load_yaml


@dataclass(frozen=True)
class Observed:
    """One version newly recorded on one expectation."""

    vector: str
    versions: str  # the expectation's range
    version: str

    def __str__(self) -> str:
        return f"{self.vector} ({self.versions}): observed on {self.version}"


def observations(doc: dict[str, Any], vs: VectorSet) -> list[Observed]:
    """What ``doc`` (a results document of a run of ``vs``) observed that the
    vectors do not record yet. ReportError if it is of another vector set."""
    revision = doc["environment"].get("vector_revision")
    if revision != vs.revision():
        raise ReportError(f"the results are of vector set {revision}, the vectors are "
                          f"{vs.revision()}: run the suite on these vectors first")
    by_id = {v.id: v for v in vs.vectors}
    found: dict[tuple[str, int, str], Observed] = {}
    for rec in doc["results"]:
        vec = by_id.get(rec["vector"])
        if vec is None or rec["outcome"] != Outcome.PASSED:
            continue
        version = Version.parse(rec["qemu_version"])
        exp = vec.expectation_for(version)
        if exp is None or exp.observed(version):
            continue
        key = (vec.id, vec.expect.index(exp), version.label)
        found[key] = Observed(vec.id, str(exp.versions), version.label)
    return [found[k] for k in sorted(found, key=lambda k: (k[0], k[1], Version.parse(k[2])))]


def record(vs: VectorSet, seen: list[Observed]) -> list[Path]:
    """Add ``seen`` to the vector files of ``vs`` (canonical form kept); the
    files it changed."""
    by_id = {v.id: v for v in vs.vectors}
    wanted: dict[tuple[str, int], set[str]] = {}
    for obs in seen:
        vec = by_id[obs.vector]
        index = next(i for i, e in enumerate(vec.expect) if str(e.versions) == obs.versions)
        wanted.setdefault((obs.vector, index), set()).add(obs.version)
    changed = []
    for path in vector_files(vs.root):
        data = load_yaml(path)
        touched = False
        for raw in data.get("vectors") or []:
            for i, exp in enumerate(raw.get("expect") or []):
                new = wanted.get((raw.get("id"), i))
                if not new:
                    continue
                versions = set(exp.get("observed-on") or ()) | new
                exp["observed-on"] = sorted(versions, key=Version.parse)
                touched = True
        if touched:
            path.write_text(canonical_text(path, data))
            changed.append(path)
    return changed
