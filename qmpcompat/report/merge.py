"""Merging the results of several runs (one per CI job, machine or QEMU build)
into one matrix, and finding where two runs of the same build disagree.
Cross-version cells (``pairs``) merge the same way, keyed by vector, form and
both builds, and consumer cells (``consumers``, with ``consumer_matrix`` rebuilt)
keyed by profile and both builds: a cell is only ever made by a job that had
both builds; two runs that observed a cell otherwise are a disagreement
(``pair_disagreements``, ``consumer_disagreements``)."""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

from qmpcompat.errors import ReportError
from qmpcompat.historydoc import EmptyJSON
from qmpcompat.report.consumers import consumer_matrix, merge_consumers
from qmpcompat.report.matrix import SEVERITY, merge_pairs
from qmpcompat.report.results import FORMAT, claim_totals, observed_key, totals
from qmpcompat.report.runmodes import run_facts
from qmpcompat.resultdoc import (
    BinaryJSON,
    BuildPairJSON,
    CaseJSON,
    ConsumerJSON,
    DisagreementJSON,
    EnvironmentJSON,
    IndexJSON,
    InterruptedJSON,
    LedgerJSON,
    PairJSON,
    ResultsJSON,
    RunJSON,
)
from qmpcompat.types import Version, strip_qemu_id


def build_identity(binary: BinaryJSON | None, version: str, package: str = "",
                   path: str = "") -> str:
    """The same build on two machines has the same identity: its version and
    package; a build with no package is known by its path. ``binary`` is the
    run's entry of the build, ``version``, ``package`` and ``path`` what a
    record says of it."""
    pkg = (binary.get("package") if binary else None) or package
    version = version or (binary["version"] if binary else "")
    return f"{version} {pkg}" if pkg else f"{version} {path}"


def _version(name: str) -> Version:
    """The version of a schema history step's input (``qemu-LABEL`` or a version)."""
    return Version.parse(strip_qemu_id(name))


def _same_vectors(docs: list[tuple[Path, ResultsJSON]]) -> None:
    """ReportError unless every run ran one vector set (and there is one at all)."""
    if not docs:
        raise ReportError("nothing to merge")
    first_path, first = docs[0]
    revision = first["environment"]["vector_revision"]
    for path, doc in docs[1:]:
        other = doc["environment"]["vector_revision"]
        if other != revision:
            raise ReportError(f"{path} ran vector set {other}, {first_path} ran {revision}: results of "
                              "different vector sets cannot be merged (re-run both on one revision)")


@dataclass
class _Runs:
    """What the runs hold, by build identity: the builds, each case's records in every
    run, the matrix and consumer cells with the file they came from, and the builds'
    identity by (file, label in that run)."""

    binaries: dict[str, BinaryJSON] = field(default_factory=dict)
    seen: dict[tuple[str, str], list[tuple[str, CaseJSON]]] = field(default_factory=dict)
    pairs: list[tuple[str, PairJSON]] = field(default_factory=list)
    consumers: list[tuple[str, ConsumerJSON]] = field(default_factory=list)
    cell_idents: dict[tuple[str, str], str] = field(default_factory=dict)

    def add(self, path: str, doc: ResultsJSON) -> None:
        by_label = {b.get("run_label") or b["version"]: b for b in doc["environment"]["binaries"]}
        for rec in doc["results"]:
            binary = by_label.get(rec["qemu"])
            ident = build_identity(binary, rec["qemu_version"], rec.get("package", ""), rec["binary"])
            if ident not in self.binaries:
                self.binaries[ident] = binary.copy() if binary else {
                    "binary": rec["binary"], "version": rec["qemu_version"], "version_line": ""}
            self.seen.setdefault((rec["vector"], ident), []).append((path, rec))
        self.pairs += [(path, cell) for cell in doc.get("pairs", [])]
        self.consumers += [(path, cell) for cell in doc.get("consumers") or []]
        for cell in [*doc.get("pairs", []), *(doc.get("consumers") or [])]:
            _cell_builds(path, cell, by_label, self.binaries, self.cell_idents)

    def labels(self) -> dict[str, str]:
        """Each build's label: its version, made unique in version order (and set
        as the build's run label)."""
        labels: dict[str, str] = {}
        for ident in sorted(self.binaries, key=lambda i: (Version.parse(i.split()[0]), i)):
            base = self.binaries[ident]["version"]
            label, n = base, 1
            while label in labels.values():
                n += 1
                label = f"{base}-{n}"
            labels[ident] = label
            self.binaries[ident]["run_label"] = label if label != base else ""
        return labels

    def cases(self, labels: dict[str, str]) -> tuple[list[CaseJSON], list[DisagreementJSON]]:
        """One record per case (the worst of its runs), and where the runs disagree."""
        merged: list[CaseJSON] = []
        disagreements: list[DisagreementJSON] = []
        for (vector, ident), runs in self.seen.items():
            worst = max(runs, key=lambda pr: SEVERITY.get(pr[1]["outcome"], 0))[1]
            merged.append({**worst, "qemu": labels[ident]})
            if len({observed_key(r) for _p, r in runs}) > 1:
                disagreements.append({
                    "vector": vector, "qemu": labels[ident],
                    "runs": [{"file": p, "outcome": r["outcome"], "observed": r.get("observed"),
                              "binary": r["binary"]} for p, r in runs]})
        return (sorted(merged, key=lambda r: (r["vector"], r["qemu"])),
                sorted(disagreements, key=lambda d: (d["vector"], d["qemu"])))


def combined_environment(docs: Sequence[tuple[Path, ResultsJSON]], binaries: list[BinaryJSON],
                         runs: list[RunJSON]) -> EnvironmentJSON:
    """The first run's environment (its members in its order) with every run's
    hosts, problems, warnings and archive indexes (one per suite), each once;
    ``binaries`` as the builds and ``runs`` as the runs it combines."""
    env = docs[0][1]["environment"].copy()
    env["host"] = ", ".join(sorted({d["environment"]["host"] for _p, d in docs}))
    env["binaries"] = binaries
    problems = {json.dumps(p, sort_keys=True) for _p, d in docs for p in d["environment"].get("problems", [])}
    env["problems"] = [json.loads(p) for p in sorted(problems)]
    warnings = list(dict.fromkeys(w for _p, d in docs for w in d["environment"].get("warnings", [])))
    env.pop("warnings", None)
    if warnings:
        env["warnings"] = warnings
    indexes: dict[str, IndexJSON] = {i["suite"]: i for _p, d in docs
                                     for i in d["environment"].get("indexes", [])}
    if indexes:
        env["indexes"] = [indexes[k] for k in sorted(indexes)]
    env["runs"] = runs
    return env


def _schema_members(out: ResultsJSON, docs: list[tuple[Path, ResultsJSON]]) -> None:
    """Into ``out``: what the runs said of the schemas and the known defects, each once."""
    gate = {json.dumps(g, sort_keys=True) for _p, d in docs for g in d.get("schema_gate", [])}
    defects = {k["id"]: k for _p, d in docs for k in d.get("known_defects", [])}
    steps = {(h["old"], h["new"]): h for _p, d in docs for h in d.get("schema_history", [])}
    no_timeline: EmptyJSON = {}
    out["schema_gate"] = [json.loads(g) for g in sorted(gate)]
    out["known_defects"] = [defects[k] for k in sorted(defects)]
    out["schema_history"] = [steps[k] for k in sorted(steps, key=lambda k: (_version(k[0]),
                                                                            _version(k[1])))]
    out["schema_timeline"] = max((d.get("schema_timeline") or no_timeline for _p, d in docs),
                                 key=lambda t: len(t["releases"]) if "releases" in t else 0)
    out["inference_ledger"] = ledger_of(docs)


def ledger_of(docs: Sequence[tuple[Path, ResultsJSON]]) -> list[LedgerJSON]:
    """The inference ledger the runs carried, each entry once (runs of one vector
    set carry the same)."""
    seen = {json.dumps(e, sort_keys=True): e for _p, d in docs for e in d.get("inference_ledger", [])}
    return [seen[k] for k in sorted(seen)]


def merge(docs: list[tuple[Path, ResultsJSON]]) -> ResultsJSON:
    """One results document from several; ReportError if they cannot be merged."""
    _same_vectors(docs)
    runs = _Runs()
    for path, doc in docs:
        runs.add(str(path), doc)
    labels = runs.labels()
    records, disagreements = runs.cases(labels)
    label_of = {key: labels[ident] for key, ident in runs.cell_idents.items()}
    pairs, pair_disagreements = merge_pairs(runs.pairs, label_of)
    consumers, consumer_disagreements = merge_consumers(runs.consumers, label_of)
    out: ResultsJSON = {
        "format": FORMAT,
        "started": min(d["started"] for _p, d in docs),
        "seconds": round(sum(d["seconds"] for _p, d in docs), 3),
        "environment": combined_environment(
            docs, sorted(runs.binaries.values(), key=lambda b: Version.parse(b["version"])),
            [run_entry(p, d) for p, d in docs]),
        "totals": totals(records),
        "claims": claim_totals(records, pairs, consumers),
        "results": records,
        "disagreements": disagreements,
        "pairs": pairs,
        "pair_disagreements": pair_disagreements,
    }
    _schema_members(out, docs)
    if consumers:
        out.update({"consumers": consumers, "consumer_matrix": consumer_matrix(consumers),
                    "consumer_disagreements": consumer_disagreements})
    stopped = unfinished(docs)
    if stopped:
        out["interrupted"] = stopped
    modes = [d["run"] for _p, d in docs if "run" in d]
    if modes:
        out["run"] = run_facts([*records, *pairs, *consumers], any(m["persistent"] for m in modes),
                               any(m["fork_server"] for m in modes),
                               [{"exec_reasons": {**m.get("fork_unavailable", {})}} for m in modes])
    return out


def _cell_builds(path: str, cell: BuildPairJSON, by_label: dict[str, BinaryJSON],
                 binaries: dict[str, BinaryJSON], idents: dict[tuple[str, str], str]) -> None:
    """Note the two builds of a cross-version or consumer cell of the run in ``path``:
    their identity by (file, label), and each build the merge has not seen yet."""
    for label, version, package in (
            (cell["source"], cell["source_version"], cell.get("source_package", "")),
            (cell["destination"], cell["destination_version"], cell.get("destination_package", ""))):
        binary = by_label.get(label)
        ident = build_identity(binary, version, package)
        binaries.setdefault(ident, binary.copy() if binary else {"binary": "", "version_line": "",
                                                                 "version": version})
        idents[(path, label)] = ident


def run_entry(path: Path, doc: ResultsJSON, **more: object) -> RunJSON:
    """A run as a combined file lists it: its file, its environment, ``more``
    (a shard's index and seconds) and how its cases ran (``modes``)."""
    run: RunJSON = {"file": str(path), **doc["environment"], **more}  # type: ignore[typeddict-item]
    run.pop("runs", None)
    if "run" in doc:
        run["modes"] = doc["run"]
    return run


def unfinished(docs: list[tuple[Path, ResultsJSON]]) -> InterruptedJSON | None:
    """What the merged runs that were interrupted, or never finished, add up to
    (None when every run finished): a merge never hides a stopped run."""
    stopped = [(p, d) for p, d in docs if d.get("interrupted") or d.get("running")]
    if not stopped:
        return None
    return {
        "cases_expected": sum(d.get("interrupted", {}).get("cases_expected", 0) for _p, d in stopped),
        "cases_recorded": sum(len(d["results"]) + len(d.get("pairs", [])) + len(d.get("consumers", []))
                              for _p, d in stopped),
        "runs": [f"{p} ({'interrupted' if d.get('interrupted') else 'never finished'})"
                 for p, d in stopped],
    }
