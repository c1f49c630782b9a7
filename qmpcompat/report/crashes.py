"""The crashes and hangs of a run, known or not, and the known defects they
were: what every verdict (summary.md, index.html, the terminal) says beside
PASS or FAIL, so that a PASS never stands alone above a crash."""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field
from typing import TypedDict

from qmpcompat.resultdoc import CaseJSON, KnownDefectJSON, ResultsJSON
from qmpcompat.types import json_text, label_order

CRASHES = ("crash", "hang")


class DefectRow(TypedDict):
    """A known defect the run saw, as the reports list it."""

    id: str
    summary: str
    recorded_for: str  # the range it is recorded for
    observed: str  # what QEMU did, e.g. "crash"
    vectors: list[str]
    qemu: list[str]  # the labels it showed on, in version order
    cases: int


class CrashRow(TypedDict):
    """A vector and kind of failure that crashed or hung QEMU, as the reports list it."""

    vector: str
    result: str  # crash or hang
    defect: str  # its known defect, "" when none
    qemu: list[str]
    detail: str  # the first line QEMU's end left


def observed_result(rec: CaseJSON) -> str | None:
    observed = rec.get("observed")
    return json_text(observed.get("result")) if observed else None


@dataclass
class Tally:
    """How many cases crashed or hung QEMU, and which of them are known defects."""

    crashed: int = 0
    hung: int = 0
    known: int = 0
    defects: list[str] = field(default_factory=list)

    @property
    def total(self) -> int:
        return self.crashed + self.hung

    @property
    def unknown(self) -> int:
        return self.total - self.known

    def line(self) -> str:
        """One sentence, e.g. ``QEMU crashed in 26 cases: 26 known defects (KD-0001, ...), 0 unknown``;
        empty when nothing crashed or hung."""
        if not self.total:
            return ""
        what = " and ".join(p for p in (f"crashed in {self.crashed} case{'s' * (self.crashed != 1)}"
                                        if self.crashed else "",
                                        f"hung in {self.hung} case{'s' * (self.hung != 1)}"
                                        if self.hung else "") if p)
        known = (f"{self.known} known defect{'s' * (self.known != 1)} ({', '.join(self.defects)})"
                 if self.known else "0 known defects")
        return f"QEMU {what}: {known}, {self.unknown} unknown"


def tally(doc: ResultsJSON) -> Tally:
    out = Tally()
    seen: set[str] = set()
    for rec in doc["results"]:
        result = observed_result(rec)
        if result not in CRASHES:
            continue
        if result == "crash":
            out.crashed += 1
        else:
            out.hung += 1
        if defect := rec.get("defect"):
            out.known += 1
            seen.add(defect)
    out.defects = sorted(seen)
    return out


def _summary_of(doc: ResultsJSON, defect: str, records: list[CaseJSON]) -> KnownDefectJSON:
    """The recorded facts of ``defect``; from its cases' messages for results files
    written before results.json carried ``known_defects``."""
    for entry in doc.get("known_defects", []):
        if entry["id"] == defect:
            return entry
    message = next((r.get("message") or "" for r in records), "")
    return {"id": defect, "summary": message.split(": ", 1)[-1], "versions": ""}


def defect_rows(doc: ResultsJSON) -> list[DefectRow]:
    """One row per known defect seen in the run: its summary, what QEMU did, the
    versions of the run it showed on, the range it is recorded for, and how many cases."""
    by_defect: dict[str, list[CaseJSON]] = defaultdict(list)
    for rec in doc["results"]:
        if defect := rec.get("defect"):
            by_defect[defect].append(rec)
    rows: list[DefectRow] = []
    for defect, records in sorted(by_defect.items()):
        facts = _summary_of(doc, defect, records)
        rows.append({
            "id": defect, "summary": facts.get("summary", ""), "recorded_for": facts.get("versions", ""),
            "observed": ", ".join(sorted({observed_result(r) or "?" for r in records})),
            "vectors": sorted({r["vector"] for r in records}),
            "qemu": sorted({r["qemu"] for r in records}, key=label_order),
            "cases": len(records),
        })
    return rows


def crash_rows(doc: ResultsJSON) -> list[CrashRow]:
    """One row per vector and kind of failure that crashed or hung QEMU, with the
    versions it happened on, its known defect (or none) and the first line QEMU's
    end left (signal, assertion)."""
    groups: dict[tuple[str, str, str], list[CaseJSON]] = defaultdict(list)
    for rec in doc["results"]:
        result = observed_result(rec)
        if result in CRASHES:
            groups[(rec["vector"], result or "", rec.get("defect") or "")].append(rec)
    rows: list[CrashRow] = []
    for (vector, result, defect), records in sorted(groups.items()):
        detail = json_text((records[0].get("observed") or {}).get("detail")) or ""
        first = detail.splitlines()[0] if detail else ""
        rows.append({"vector": vector, "result": result, "defect": defect,
                     "qemu": sorted({r["qemu"] for r in records}, key=label_order),
                     "detail": first.split(": ", 1)[-1]})
    return rows
