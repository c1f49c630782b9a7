"""Merging the shards of a sharded run (``--qmpcompat-shard K/N``) back into
the results of the whole run.

The shards of one run share a plan (``shard.plan``). Folded together they give
the whole run's document: every case, cross-version cell and consumer cell
once (a case two shards both ran is refused: the files are not the shards of
one run), the builds in the run's order, the schema history rebuilt from the
builds' schemas the shards recorded, the environment and run modes of each
shard in ``environment.runs``. A shard that never reported is no smaller run:
``shards[].missing`` names it and the verdict fails. Two files of one shard are
refused. Results of other runs (whole runs, or other sharded runs) are then
merged with it as separate runs are (``qmpcompat.report.merge``).
"""

from __future__ import annotations

import json
from collections.abc import Callable, Hashable, Iterable
from pathlib import Path
from typing import TypeVar, cast

from qmpcompat.errors import QmpCompatError, ReportError
from qmpcompat.historydoc import EmptyJSON, TimelineJSON
from qmpcompat.report.history import from_snapshot, history_of, timeline_of
from qmpcompat.report.matrix import pair_key
from qmpcompat.report.merge import combined_environment, ledger_of, merge, run_entry
from qmpcompat.report.results import claim_totals, totals
from qmpcompat.report.runmodes import run_facts
from qmpcompat.resultdoc import (
    BinaryJSON,
    ConsumerJSON,
    HistoryStepJSON,
    ResultsJSON,
    ShardsJSON,
)
from qmpcompat.types import Version

Doc = tuple[Path, ResultsJSON]
T = TypeVar("T")


def combine(docs: list[Doc]) -> ResultsJSON:
    """One results document from several: the shards of each sharded run folded
    into its whole run first, then every run merged (``merge``)."""
    if not docs:
        raise ReportError("nothing to merge")
    groups: dict[str, list[Doc]] = {}
    runs: list[Doc] = []
    for path, doc in docs:
        if "shard" in doc:
            groups.setdefault(doc["shard"]["plan"], []).append((path, doc))
        else:
            runs.append((path, doc))
    folded = [fold(group) for group in groups.values()]
    runs += [(Path(f"shards of plan {d['shards'][0]['plan']}"), d) for d in folded]
    if len(runs) == 1:
        return runs[0][1]
    out = merge(runs)
    out["shards"] = [s for d in folded for s in d["shards"]]
    return out


def _shards(group: list[Doc]) -> ShardsJSON:
    """Which shards of the group's plan reported (a file written as a shard
    started and never replaced by its results is no report); ReportError for two
    results files of one shard."""
    first = group[0][1]["shard"]
    seen: dict[int, Path] = {}
    for path, doc in group:
        shard = doc["shard"]
        if shard["total"] != first["total"]:  # the plan's identity covers N: never here
            raise ReportError(f"{path} is shard {shard['index']}/{shard['total']} of plan "
                              f"{shard['plan']}, {group[0][0]} of {first['total']} shards")
        if doc.get("running"):
            continue
        if shard["index"] in seen:
            raise ReportError(
                f"{seen[shard['index']]} and {path} are both shard {shard['index']}/{shard['total']} "
                f"of plan {shard['plan']}: merge one results file per shard (a shard run twice, "
                "say a retried CI job, leaves two; keep the one its job kept)")
        seen[shard["index"]] = path
    return {"plan": first["plan"], "total": first["total"], "reported": sorted(seen),
            "missing": [k for k in range(1, first["total"] + 1) if k not in seen],
            "files": [str(p) for p, _d in group]}


def _once(group: list[Doc], records: Callable[[ResultsJSON], Iterable[T]],
          key: Callable[[T], Hashable], what: str) -> list[T]:
    """Every record of the group's shards; ReportError when two shards have one case."""
    seen: dict[Hashable, Path] = {}
    out: list[T] = []
    for path, doc in group:
        for rec in records(doc):
            k = key(rec)
            if k in seen:
                raise ReportError(f"{seen[k]} and {path} both ran {what} {k}: they are not "
                                  "shards of one run (every case is in exactly one shard)")
            seen[k] = path
            out.append(rec)
    return out


def _binaries(group: list[Doc]) -> list[BinaryJSON]:
    """The builds of every shard, once each, in the whole run's order; ReportError
    when the shards labelled one build two ways or two builds one way."""
    keys = group[0][1]["shard"]["keys"]
    by_key: dict[str, BinaryJSON] = {}
    for path, doc in group:
        for binary in doc["environment"]["binaries"]:
            key = binary.get("request") or binary["binary"]
            label = binary.get("run_label") or binary["version"]
            had = by_key.setdefault(key, binary)
            if (had.get("run_label") or had["version"]) != label:
                raise ReportError(f"{path} labels the build {key} {label}, another shard "
                                  f"{had.get('run_label') or had['version']}: two builds of one "
                                  "version in a sharded run are labelled by what each shard has; "
                                  "run them as separate runs")
    labels = [b.get("run_label") or b["version"] for b in by_key.values()]
    if len(set(labels)) != len(labels):
        raise ReportError("two builds have one label in different shards; run builds of one "
                          "version as separate runs")
    return sorted(by_key.values(), key=_place(keys))


def _place(keys: list[str]) -> Callable[[BinaryJSON], tuple[int, int, Version, bool, str]]:
    """Where a build stands in the whole run, as ``select`` orders it: the named
    binaries and source builds in the plan's order, then the provisioned ones
    (Debian's and the default foreign build) by version, x86_64 first."""
    order = {k: n for n, k in enumerate(keys)}

    def place(b: BinaryJSON) -> tuple[int, int, Version, bool, str]:
        key = b.get("request", "")
        if key.startswith(("qemu ", "source ")):
            return (0, order.get(key, len(order)), Version(0, 0, 0), False, "")
        arch = b.get("arch") or "x86_64"
        return (1, 0, Version.parse(b["version"]), arch != "x86_64", arch)

    return place


def _history(group: list[Doc], binaries: list[BinaryJSON]) -> tuple[list[HistoryStepJSON],
                                                                     TimelineJSON | EmptyJSON]:
    """The whole run's schema history, from the schemas the shards recorded
    (none when a build's is missing: a shard could not read it)."""
    recorded = {label: data for _p, d in group
                for label, data in d["shard"].get("schemas", {}).items()}
    labels = [b.get("run_label") or b["version"] for b in binaries]
    if any(label not in recorded for label in labels):
        return [], {}
    inference = {r["version"]: r["inference"] for _p, d in group
                 for r in cast(TimelineJSON, d.get("schema_timeline") or {}).get("releases", [])
                 if "inference" in r}
    try:
        steps = history_of([from_snapshot(b, recorded[lb], lb) for b, lb in zip(binaries, labels,
                                                                                strict=True)])
        timeline = timeline_of([from_snapshot(b, recorded[lb], b["version"])
                                for b, lb in zip(binaries, labels, strict=True)], inference)
    except QmpCompatError:
        return [], {}
    return (steps if len(binaries) > 1 else []), timeline


def _unique(items: Iterable[T]) -> list[T]:
    """``items`` once each (JSON-equal ones are one), sorted by their JSON."""
    return [json.loads(t) for t in sorted({json.dumps(i, sort_keys=True) for i in items})]


def fold(group: list[Doc]) -> ResultsJSON:
    """The whole run the shards of one plan make; ``shards`` says which reported,
    ``interrupted`` which were stopped or never finished."""
    shards = _shards(group)
    unfinished = [(p, d) for p, d in group
                  if d.get("running") and d["shard"]["index"] not in shards["reported"]]
    group = [(p, d) for p, d in group if not d.get("running")] or unfinished or group
    revisions = {d["environment"]["vector_revision"] for _p, d in group}
    if len(revisions) > 1:  # the plan's identity covers the vector set: never here
        raise ReportError(f"the shards ran different vector sets ({', '.join(sorted(revisions))})")
    group = sorted(group, key=lambda pd: pd[1]["shard"]["index"])
    records = sorted(_once(group, lambda d: d["results"], lambda r: (r["vector"], r["qemu"]), "case"),
                     key=lambda r: (r["vector"], r["qemu"]))
    pairs = sorted(_once(group, lambda d: d.get("pairs", []), pair_key, "cross-version cell"),
                   key=pair_key)
    consumers: list[ConsumerJSON] = sorted(
        _once(group, lambda d: d.get("consumers", []),
              lambda c: (c["profile"], c["source"], c["destination"]), "consumer cell"),
        key=lambda c: (c["profile"], c["source"], c["destination"]))
    binaries = _binaries(group)
    steps, timeline = _history(group, binaries)
    env = combined_environment(group, binaries, [
        run_entry(p, d, shard=d["shard"]["index"], seconds=d["seconds"]) for p, d in group])
    modes = [d["run"] for _p, d in group if "run" in d]
    out: ResultsJSON = {
        "format": group[0][1]["format"],
        "started": min(d["started"] for _p, d in group),
        "seconds": max(d["seconds"] for _p, d in group),
        "environment": env,
        "totals": totals(records),
        "claims": claim_totals(records, pairs, consumers),
        "results": records,
        "schema_gate": _unique(g for _p, d in group for g in d.get("schema_gate", [])),
        "pairs": pairs,
        "consumers": consumers,
        "schema_history": steps,
        "schema_timeline": timeline,
        "inference_ledger": ledger_of(group),
        "known_defects": sorted({k["id"]: k for _p, d in group for k in d.get("known_defects", [])}
                                .values(), key=lambda k: k["id"]),
        "shards": [shards],
    }
    stopped = [d["interrupted"] for _p, d in group if "interrupted" in d]
    if stopped or unfinished:
        out["interrupted"] = {"cases_expected": sum(i.get("cases_expected", 0) for i in stopped),
                              "cases_recorded": sum(i.get("cases_recorded", 0) for i in stopped),
                              "runs": [f"{p} (interrupted)" for p, d in group if "interrupted" in d]
                              + [f"{p} (never finished)" for p, _d in unfinished]}
    if modes:
        out["run"] = run_facts([*records, *pairs, *consumers], any(m["persistent"] for m in modes),
                               any(m["fork_server"] for m in modes),
                               [{"exec_reasons": {**m.get("fork_unavailable", {})}} for m in modes])
    return out
