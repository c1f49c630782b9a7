"""The consumer matrices of a run (``consumers`` in results.json): per consumer
profile, what became of its migration on every build (the same build on both
sides) and across every ordered pair of builds. summary.md, index.html, the
JSON summary (``consumer_matrix``) and JUnit XML are all fed from here;
``merge_consumers`` combines the cells of several runs.

A cell's mark says what happened: ``migrated``, ``refused at STEP``,
``failed``, ``crash``, ``hang``, ``corrupt``; ``known KD-NNNN: ...`` when a
recorded known break showed, ``FAIL: ...`` when it was not what the profile
expects, ``n/a`` when the cell did not run (a side lacks the guest's machine).
"""

from __future__ import annotations

import xml.etree.ElementTree as ET

from qmpcompat.escape import markdown
from qmpcompat.report.junitcells import cell_suite
from qmpcompat.report.matrix import merge_cells
from qmpcompat.resultdoc import (
    ConsumerCellJSON,
    ConsumerDisagreementJSON,
    ConsumerJSON,
    ConsumerMatrixJSON,
    ResultsJSON,
)
from qmpcompat.types import json_text, label_order


def what_happened(rec: ConsumerJSON) -> str:
    """The consumer's migration in a few words, from the record's observation."""
    obs = rec.get("observed") or {}
    result = json_text(obs.get("result"))
    if result == "accept":
        ends = (json_text(obs.get("migration")), json_text(obs.get("peer_migration")))
        return "migrated" if ends == ("completed", "completed") else \
            f"failed (source {ends[0]}, destination {ends[1]})"
    if result == "reject":
        return f"refused at {json_text(obs.get('step'))}"
    return result or "not run"


def mark(rec: ConsumerJSON) -> str:
    """A cell's mark (see the module's description)."""
    outcome, what = rec["outcome"], what_happened(rec)
    if outcome == "passed":
        return what
    if outcome == "xfailed":
        return f"known {rec.get('defect')}: {what}"
    if outcome == "skipped":
        return "n/a"
    return f"FAIL: {what}"


def consumer_matrix(records: list[ConsumerJSON]) -> ConsumerMatrixJSON:
    """The profiles (id, consumer, version), the builds in version order, and one
    cell per profile, source and destination."""
    profiles: dict[str, dict[str, str]] = {}
    cells: list[ConsumerCellJSON] = []
    for rec in sorted(records, key=lambda r: (r["profile"], label_order(r["source"]),
                                              label_order(r["destination"]))):
        profiles.setdefault(rec["profile"], {"id": rec["profile"], "consumer": rec["consumer"],
                                             "version": rec["consumer_version"]})
        cells.append({"profile": rec["profile"], "consumer": rec["consumer"], "source": rec["source"],
                      "destination": rec["destination"], "mark": mark(rec), "outcome": rec["outcome"]})
    versions = sorted({v for r in records for v in (r["source"], r["destination"])}, key=label_order)
    return {"profiles": list(profiles.values()), "versions": versions, "cells": cells}


def consumer_key(rec: ConsumerJSON) -> tuple[str, str, str]:
    return rec["profile"], rec["source"], rec["destination"]


def merge_consumers(runs: list[tuple[str, ConsumerJSON]], label_of: dict[tuple[str, str], str]
                    ) -> tuple[list[ConsumerJSON], list[ConsumerDisagreementJSON]]:
    """The consumer records of several runs merged (``merge_cells``: the worse
    outcome stands), keyed by profile and both builds; the cells two runs observed
    otherwise."""
    merged, found = merge_cells(runs, label_of, consumer_key)
    return merged, [{"profile": k[0], "source": k[1], "destination": k[2], "runs": r}
                    for k, r in found]


def failed_consumers(doc: ResultsJSON) -> list[ConsumerJSON]:
    return [r for r in doc.get("consumers") or [] if r["outcome"] in ("failed", "error")]


def _cell(text: object) -> str:
    """Text from a profile or a run as a Markdown table cell (escape.markdown)."""
    return markdown(text if text is not None else "")


def render_markdown(doc: ResultsJSON) -> list[str]:
    """The consumer sections of summary.md (empty when no profile ran)."""
    records = doc.get("consumers") or []
    if not records:
        return []
    m = consumer_matrix(records)
    at = {(c["profile"], c["source"], c["destination"]): c["mark"] for c in m["cells"]}
    names = {p["id"]: f"{p['consumer']} {p['version']}" for p in m["profiles"]}
    lines = ["", "### Consumers x builds (the same build on both sides)", "",
             "Each consumer profile (vectors/consumers/) replayed with a real guest: each side's "
             "QEMU gets the consumer's own commands.", "",
             "| consumer | " + " | ".join(map(_cell, m["versions"])) + " |",
             "| --- |" + " --- |" * len(m["versions"])]
    for pid, name in names.items():
        lines.append(f"| {_cell(pid)} {_cell(name)} | "
                     + " | ".join(_cell(at.get((pid, v, v), "")) for v in m["versions"]) + " |")
    for pid, name in names.items():
        lines += ["", f"#### {_cell(pid)} across builds (rows: source, columns: destination)", "",
                  _cell(name), "",
                  "| source \\ destination | " + " | ".join(map(_cell, m["versions"])) + " |",
                  "| --- |" + " --- |" * len(m["versions"])]
        lines += [f"| **{_cell(src)}** | " + " | ".join(_cell(at.get((pid, src, dst), ""))
                                                  for dst in m["versions"]) + " |"
                  for src in m["versions"]]
    failed = failed_consumers(doc)
    if failed:
        lines += ["", "#### Consumer cells that failed", "",
                  "| profile | source | destination | step | why |", "| --- | --- | --- | --- | --- |"]
        lines += [f"| {_cell(r['profile'])} | {_cell(r['source'])} | {_cell(r['destination'])} | "
                  f"{_cell(str(r.get('location') or ''))} | "
                  f"{_cell((r.get('message') or '').splitlines()[0] if r.get('message') else '')} |"
                  for r in failed]
    return lines


def junit_suite(root: ET.Element, doc: ResultsJSON) -> None:
    """A ``consumers`` testsuite: one testcase per cell, named like the live run's
    test id (``test_consumer[CP-0002-10.0.13-to-11.1.3]``), with its mark."""
    cell_suite(root, "consumers", sorted(doc.get("consumers") or [], key=consumer_key),
               lambda r: f"test_consumer[{r['profile']}-{r['source']}-to-{r['destination']}]",
               ("profile", "consumer", "consumer_version", "source_version", "destination_version",
                "machine", "location", "outcome"), lambda r: [("mark", mark(r))])
