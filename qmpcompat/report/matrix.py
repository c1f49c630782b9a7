"""The cross-version matrix of a run (``pairs`` in results.json) as a source x
destination table: one cell per ordered pair of builds, summing every pair
vector and form of that pair. summary.md, index.html, the JSON summary and
JUnit XML are all fed from it; ``merge_pairs`` combines the cells of several runs."""

from __future__ import annotations

import xml.etree.ElementTree as ET
from collections import Counter
from collections.abc import Callable
from typing import TypeVar, cast

from qmpcompat.escape import markdown
from qmpcompat.report.junitcells import cell_suite
from qmpcompat.report.results import observed_key
from qmpcompat.resultdoc import (
    CellJSON,
    ConsumerJSON,
    MatrixJSON,
    PairDisagreementJSON,
    PairJSON,
    ResultsJSON,
    RunOutcomeJSON,
)
from qmpcompat.types import Outcome, label_order

OUTCOMES = tuple(o.value for o in Outcome)
# When two runs disagree about a case or cell, the merged one shows the worst.
SEVERITY: dict[str, int] = {Outcome.PASSED: 0, Outcome.SKIPPED: 1, Outcome.XFAILED: 2, Outcome.ERROR: 3,
                            Outcome.FAILED: 4}


def pair_key(rec: PairJSON) -> tuple[str, str, str, str]:
    return rec["vector"], rec["form"], rec["source"], rec["destination"]


def mark(counts: dict[str, int]) -> str:
    """One word for a cell: FAIL (anything unexpected), known (a known defect, no
    failure), ok (something passed), n/a (nothing both sides support)."""
    if counts.get("failed", 0) or counts.get("error", 0):
        return "FAIL"
    if counts.get("xfailed", 0):
        return "known"
    return "ok" if counts.get("passed", 0) else "n/a"


def matrix(pairs: list[PairJSON]) -> MatrixJSON:
    """``{"versions": [labels in version order], "cells": [{source, destination,
    mark, passed, failed, xfailed, skipped, error, defects}]}``."""
    counts: dict[tuple[str, str], Counter[str]] = {}
    defects: dict[tuple[str, str], set[str]] = {}
    for rec in pairs:
        key = (rec["source"], rec["destination"])
        counts.setdefault(key, Counter())[rec["outcome"]] += 1
        if defect := rec.get("defect"):
            defects.setdefault(key, set()).add(defect)
    versions = sorted({v for key in counts for v in key}, key=label_order)
    cells: list[CellJSON] = []
    for src in versions:
        for dst in versions:
            c = counts.get((src, dst), Counter())
            row = {o: c.get(o, 0) for o in OUTCOMES}
            cells.append({"source": src, "destination": dst, "mark": mark(row),
                          "passed": row["passed"], "failed": row["failed"], "xfailed": row["xfailed"],
                          "skipped": row["skipped"], "error": row["error"],
                          "defects": sorted(defects.get((src, dst), ()))})
    return {"versions": versions, "cells": cells}


def failed_pairs(doc: ResultsJSON) -> list[PairJSON]:
    return [r for r in doc.get("pairs", []) if r["outcome"] in ("failed", "error")]


def _cell_text(cell: CellJSON) -> str:
    ran = cell["passed"] + cell["failed"] + cell["error"] + cell["xfailed"]
    if cell["mark"] == "n/a":
        return "n/a"
    text = f"{markdown(cell['mark'])} {cell['passed']}/{ran}"
    return text + (f" ({markdown(', '.join(cell['defects']))})" if cell["defects"] else "")


def _first_line(text: object) -> str:
    lines = str(text or "").splitlines()
    return markdown(lines[0]) if lines else ""


def render_markdown(doc: ResultsJSON) -> list[str]:
    """The matrix section of summary.md (empty when the run had no pair vectors)."""
    pairs = doc.get("pairs") or []
    if not pairs:
        return []
    m = matrix(pairs)
    cells = {(c["source"], c["destination"]): c for c in m["cells"]}
    lines = ["", "### Cross-version matrix (rows: source, columns: destination)", "",
             "Each cell: passed / cases run over every pair vector and form both sides support; "
             "`known` marks a recorded known defect, `n/a` a pair with no form both support.", "",
             "| source \\ destination | " + " | ".join(map(markdown, m["versions"])) + " |",
             "| --- |" + " ---: |" * len(m["versions"])]
    for src in m["versions"]:
        lines.append(f"| **{markdown(src)}** | " + " | ".join(_cell_text(cells[(src, dst)])
                                                   for dst in m["versions"]) + " |")
    failed = failed_pairs(doc)
    if failed:
        lines += ["", "#### Matrix cells that failed", "", "| vector | form | source | destination | why |",
                  "| --- | --- | --- | --- | --- |"]
        lines += [f"| {markdown(r['vector'])} | {markdown(r['form'])} | {markdown(r['source'])} | "
                  f"{markdown(r['destination'])} | "
                  f"{_first_line(r.get('message'))} |" for r in failed]
    return lines


def junit_suite(root: ET.Element, doc: ResultsJSON) -> None:
    """A ``cross-version`` testsuite: one testcase per cell, named like the live
    run's test id (``test_pair[XV-0001-uri-uri-7.2.22-to-11.1.3]``), with both
    versions as properties."""
    cell_suite(root, "cross-version", sorted(doc.get("pairs") or [], key=pair_key),
               lambda r: f"test_pair[{r['vector']}-{r['form'].replace('/', '-')}-{r['source']}-to-"
                         f"{r['destination']}]",
               ("vector", "form", "source_version", "destination_version", "machine", "outcome"))


Cell = TypeVar("Cell", PairJSON, ConsumerJSON)


Disagreement = tuple[tuple[str, ...], list[RunOutcomeJSON]]  # a cell's key, each run's outcome


def merge_cells(runs: list[tuple[str, Cell]], label_of: dict[tuple[str, str], str],
                key: Callable[[Cell], tuple[str, ...]]) -> tuple[list[Cell], list[Disagreement]]:
    """Combine the cells (pair or consumer records) of several runs: ``runs`` holds
    (file, record), ``label_of`` maps (file, label in that run) to the merged label
    and ``key`` names a cell. Where two runs have the same cell, the worse outcome
    stands, and when they observed otherwise the cell is a disagreement (its key
    and each run's file and outcome)."""
    seen: dict[tuple[str, ...], list[tuple[str, Cell]]] = {}
    for path, rec in runs:
        moved = cast(Cell, {**rec, "source": label_of.get((path, rec["source"]), rec["source"]),
                            "destination": label_of.get((path, rec["destination"]),
                                                        rec["destination"])})
        seen.setdefault(key(moved), []).append((path, moved))
    merged: list[Cell] = []
    disagreements: list[Disagreement] = []
    for cell, found in sorted(seen.items()):
        merged.append(max(found, key=lambda pr: SEVERITY.get(pr[1]["outcome"], 0))[1])
        if len({observed_key(r) for _p, r in found}) > 1:
            disagreements.append((cell, [{"file": p, "outcome": r["outcome"]} for p, r in found]))
    return merged, disagreements


def merge_pairs(runs: list[tuple[str, PairJSON]],
                label_of: dict[tuple[str, str], str]) -> tuple[list[PairJSON],
                                                               list[PairDisagreementJSON]]:
    """The pair records of several runs merged (``merge_cells``), keyed by vector,
    form and both builds."""
    merged, found = merge_cells(runs, label_of, pair_key)
    return merged, [{"vector": k[0], "form": k[1], "source": k[2], "destination": k[3], "runs": r}
                    for k, r in found]
