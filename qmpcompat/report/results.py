"""``results.json``: the machine-readable record of a run.

Its format is versioned (``format``) and described by
``qmpcompat/data/results.schema.json``.
"""

from __future__ import annotations

import json
import platform
import socket
import time
from collections import Counter
from pathlib import Path
from typing import cast

import jsonschema

from qmpcompat import __version__, datafile
from qmpcompat.errors import ReportError
from qmpcompat.reaper import write_atomic
from qmpcompat.resultdoc import (
    BinaryJSON,
    CaseJSON,
    ConsumerJSON,
    EnvironmentJSON,
    IndexJSON,
    JudgedJSON,
    PairJSON,
    ProblemJSON,
    ResultsJSON,
    ResultsMembers,
)
from qmpcompat.types import OUTCOMES, JSONObject, label_order

FORMAT = 1


def environment(builds: list[BinaryJSON], vector_revision: str,
                problems: list[ProblemJSON], warnings: list[str] | None = None,
                indexes: list[IndexJSON] | None = None) -> EnvironmentJSON:
    """Where and with what a run ran; ``warnings`` are what every report must show
    (e.g. the safety gate widened by --qmpcompat-allow-exec, a stale archive
    index); ``indexes``: the Debian archive indexes the builds were chosen
    from, with their dates."""
    os_release = {}
    try:
        for line in Path("/etc/os-release").read_text().splitlines():
            key, _, value = line.partition("=")
            os_release[key] = value.strip('"')
    except OSError:
        pass
    env: EnvironmentJSON = {
        "host": socket.gethostname(),
        "os": os_release.get("PRETTY_NAME", platform.platform()),
        "python": platform.python_version(),
        "qmpcompat": __version__,
        "vector_revision": vector_revision,
        "binaries": builds,
        "problems": problems,
    }
    if warnings:
        env["warnings"] = warnings
    env["indexes"] = indexes or []
    return env


def totals(records: list[CaseJSON]) -> dict[str, dict[str, int]]:
    """Per QEMU label: how many of each outcome."""
    out: dict[str, Counter[str]] = {}
    for rec in records:
        out.setdefault(rec["qemu"], Counter())[rec["outcome"]] += 1
    return {label: {o: out[label].get(o, 0) for o in OUTCOMES} for label in sorted(out, key=label_order)}


BASIS_KINDS = ("observed", "schema", "inferred")


def claim_labels(rec: CaseJSON | PairJSON | ConsumerJSON) -> list[str]:
    """The QEMU labels a record counts for: a case's build; a cross-version (or
    consumer-profile) cell's source and destination (once when they are the same build)."""
    if "qemu" in rec:
        return [rec["qemu"]]
    return list(dict.fromkeys([rec["source"], rec["destination"]]))


def claim_totals(records: list[CaseJSON], pairs: list[PairJSON] | None = None,
                 consumers: list[ConsumerJSON] | None = None) -> dict[str, dict[str, int]]:
    """Per QEMU label: how many cases were judged on an observed, a schema-decided
    and an inferred claim (cases judged on no claim, e.g. skipped, are left out).
    A case judged on a known defect counts by the defect's claim; a cross-version
    cell counts for both its builds (``claim_labels``)."""
    out: dict[str, Counter[str]] = {}
    for rec in [*records, *(pairs or ()), *(consumers or ())]:
        basis = rec.get("basis")
        kind = basis["kind"] if basis else None
        if kind in BASIS_KINDS:
            for label in claim_labels(rec):
                out.setdefault(label, Counter())[kind] += 1
    return {label: {k: out[label].get(k, 0) for k in BASIS_KINDS}
            for label in sorted(out, key=label_order)}


# What differs between two runs of the same case by design: its time, a real
# guest's per-case pattern (memory digests, bytes transferred), the kind of
# QEMU it ran on, and a consumer cell's replies step by step (query-migrate's
# total-time, setup-time and byte counts change every run; the step a cell
# ended at, its result and QEMU's error stay in the comparison).
RUN_SPECIFIC = ("seconds", "guest", "qemu", "rerun", "replies")


def observed_key(rec: JudgedJSON) -> str:
    """A case's outcome and observation without what differs between runs: two runs
    of one case agree when their keys are equal."""
    obs = {k: v for k, v in (rec.get("observed") or {}).items() if k not in RUN_SPECIFIC}
    return json.dumps([rec["outcome"], obs], sort_keys=True)


def results_document(env: EnvironmentJSON, records: list[CaseJSON], started: float,
                     extra: ResultsMembers | None = None) -> ResultsJSON:
    """The results document of a run that started at ``started`` (epoch seconds),
    its records sorted by case and build; ``extra`` are its other members."""
    records = sorted(records, key=lambda r: (r["vector"], r["qemu"]))
    extra = extra or {}
    return {
        "format": FORMAT,
        "started": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(started)),
        "seconds": round(time.time() - started, 3),
        "environment": env,
        "totals": totals(records),
        "claims": claim_totals(records, extra.get("pairs"), extra.get("consumers")),
        "results": records,
        **extra,
    }


def write_json(path: Path, data: object) -> None:
    """Write ``data`` atomically: readers never see half a file."""
    write_atomic(path, json.dumps(data, indent=1, sort_keys=False) + "\n")


def _schema() -> JSONObject:
    schema: JSONObject = json.loads(
        (Path(__file__).resolve().parents[1] / "data" / "results.schema.json").read_text())
    return schema


def read_results(path: Path) -> ResultsJSON:
    """Load and validate a results file; ReportError names the file and what is wrong."""
    try:
        text = datafile.read_text(path)
    except OSError as exc:
        raise ReportError(f"{path}: cannot read: {exc.strerror}") from exc
    except UnicodeDecodeError as exc:
        raise ReportError(f"{path}: not JSON (not UTF-8 at byte {exc.start})") from exc
    try:
        doc = datafile.parse_json(text)
    except ValueError as exc:
        # a parse that ran out of text was cut short; one that met a wrong character was not JSON
        ended = isinstance(exc, json.JSONDecodeError) and exc.pos >= len(text.rstrip())
        what = "truncated" if text.strip() and (ended or not text.rstrip().endswith("}")) \
            else "not JSON"
        raise ReportError(f"{path}: {what} ({exc})") from exc
    if not isinstance(doc, dict):
        raise ReportError(f"{path}: not a qmpcompat results file")
    if doc.get("format") != FORMAT:
        raise ReportError(f"{path}: results format {doc.get('format')!r}; this qmpcompat reads "
                          f"format {FORMAT} (re-run, or render it with the qmpcompat that wrote it)")
    err = jsonschema.exceptions.best_match(
        jsonschema.Draft202012Validator(_schema()).iter_errors(doc))
    if err is not None:
        where = "/".join(map(str, err.absolute_path)) or "(top)"
        raise ReportError(f"{path}: not a valid results file: {where}: {err.message}")
    return cast(ResultsJSON, doc)  # the schema holds: of the shape ResultsJSON mirrors
