"""The inference ledger (``vectors/inference-ledger.yaml``): how far the inferred
claims for a QEMU release held when a build of it was first run.

A claim a range makes for a release nobody ran is inferred; once a build of that
release runs, each case that was judged on an inferred claim either held (the
build did what the claim says, or showed the known defect it records) or did
not (the case failed). ``measure`` counts both from a run's results document,
``first_runs`` names the releases a run saw for the first time (no claim
records an observation of them yet), and the ledger keeps one entry per such
release, so that a reader can judge how far to trust what is still inferred.
The format is ``vectors/inference-ledger.schema.json``.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

import jsonschema

from qmpcompat import datafile
from qmpcompat.errors import VectorError
from qmpcompat.provision.build import package_text
from qmpcompat.resultdoc import CaseJSON, ConsumerJSON, LedgerJSON, PairJSON, ResultsJSON
from qmpcompat.types import JSONObject, Outcome, Version, json_list, json_object
from qmpcompat.vectors.load import LEDGER_FILE, LEDGER_SCHEMA, VectorSet
from qmpcompat.vectors.yamlfile import dump_canonical, load_yaml

DESCRIPTION = ("how far the inferred claims for a QEMU release held when a build of it was "
               "first run (qmpcompat observe writes an entry; the format is "
               "inference-ledger.schema.json)")

Record = CaseJSON | PairJSON | ConsumerJSON


@dataclass(frozen=True)
class Wrong:
    """A case whose inferred claim did not hold: what it claimed, what the build did."""

    case: str
    claimed: str
    did: str


@dataclass(frozen=True)
class Entry:
    """One release's first run: its inferred claims, those that held, those that did not."""

    release: str
    build: str
    date: str
    revision: str
    inferred: int
    held: int
    wrong: tuple[Wrong, ...] = ()

    @property
    def share(self) -> float:
        """The share of inferred claims that held (1.0 when there were none)."""
        return self.held / self.inferred if self.inferred else 1.0

    def summary(self) -> str:
        """``181 of 189 inferred claims held (96%) when BUILD was first run on DATE; wrong: ...``."""
        return (f"{self.held} of {self.inferred} inferred claims held ({self.share:.0%}) when "
                f"{self.build} was first run on {self.date[:10]}"
                + (f"; wrong: {', '.join(w.case for w in self.wrong)}" if self.wrong else ""))

    def line(self) -> str:
        """One line for a report: ``8.2.2: 181 of 189 inferred claims held ...``."""
        return f"{self.release}: {self.summary()}"

    def to_json(self) -> LedgerJSON:
        return {"release": self.release, "build": self.build, "date": self.date,
                "vector-revision": self.revision, "inferred": self.inferred, "held": self.held,
                "wrong": [{"case": w.case, "claimed": w.claimed, "did": w.did} for w in self.wrong]}

    @classmethod
    def from_json(cls, data: JSONObject) -> Entry:
        wrong = tuple(Wrong(str(json_object(w)["case"]), str(json_object(w)["claimed"]),
                            str(json_object(w)["did"])) for w in json_list(data.get("wrong") or []))
        return cls(str(data["release"]), str(data["build"]), str(data["date"]),
                   str(data["vector-revision"]), int(str(data["inferred"])),
                   int(str(data["held"])), wrong)


def _sides(rec: Record) -> tuple[str, ...]:
    """The versions a record counts for: a case's build; a cell's two sides."""
    if "qemu_version" in rec:
        return (str(rec["qemu_version"]),)
    return tuple(dict.fromkeys((str(rec["source_version"]), str(rec["destination_version"]))))


def _name(rec: Record) -> str:
    if "profile" in rec:
        return f"{rec['profile']} {rec['source_version']}->{rec['destination_version']}"
    if "form" in rec:
        return f"{rec['vector']} {rec['form']} {rec['source_version']}->{rec['destination_version']}"
    return str(rec["vector"])


def _records(doc: ResultsJSON) -> list[Record]:
    return [*doc["results"], *(doc.get("pairs") or ()), *(doc.get("consumers") or ())]


def _inferred(rec: Record) -> bool:
    basis = rec.get("basis")
    return basis is not None and basis["kind"] == "inferred"


def measure(doc: ResultsJSON, release: str) -> Entry:
    """The ledger entry of ``release`` from a run's results: every case on it judged
    on an inferred claim, held (passed, or the known defect it records) or not."""
    inferred = [r for r in _records(doc) if release in _sides(r) and _inferred(r)]
    held = [r for r in inferred if r["outcome"] in (Outcome.PASSED, Outcome.XFAILED)]
    wrong = tuple(Wrong(_name(r), str(r.get("expected") or ""), str(r.get("message") or ""))
                  for r in inferred if Outcome(r["outcome"]).bad)
    build = next((package_text(b.get("package", ""), b.get("distribution", ""))
                  for b in doc["environment"]["binaries"] if b["version"] == release), release)
    return Entry(release, build, doc["started"], doc["environment"]["vector_revision"],
                 len(held) + len(wrong), len(held), wrong)


def _observed_versions(vs: VectorSet) -> set[str]:
    """Every version (each side of a pair) some claim records an observation of."""
    seen: set[str] = set()
    claims: Iterable[tuple[str, ...]] = [
        *(e.observed_on for v in vs.vectors for e in v.expect),
        *(e.observed_on for p in vs.pairs for e in p.expect),
        *(e.observed_on for p in vs.profiles for e in p.expect),
        *(d.observed_on for d in vs.defects)]
    for observed in claims:
        for item in observed:
            seen.update(item.split("->"))
    return seen


def first_runs(doc: ResultsJSON, vs: VectorSet) -> list[str]:
    """The releases ``doc``'s run saw that no claim of ``vs`` records an observation
    of yet (a release moving from inferred to observed), in version order."""
    ran = {b["version"] for b in doc["environment"]["binaries"]}
    return sorted(ran - _observed_versions(vs), key=Version.parse)


def by_release(entries: Iterable[Entry]) -> dict[str, str]:
    """Each entry's summary by release (the history view's annotation)."""
    return {e.release: e.summary() for e in entries}


def load_ledger(root: Path) -> list[Entry]:
    """The ledger of the vector dir ``root`` (empty when it has none); VectorError
    naming the file when it breaks its schema."""
    path = root / LEDGER_FILE
    if not path.exists():
        return []
    rel = f"{root.name}/{LEDGER_FILE}"
    data = load_yaml(path, rel)
    schema = datafile.load_json(root / LEDGER_SCHEMA)
    if not isinstance(schema, dict) or not isinstance(data, dict):
        raise VectorError(f"not an inference ledger (or {LEDGER_SCHEMA} is no schema)", rel)
    err = jsonschema.exceptions.best_match(jsonschema.Draft202012Validator(schema).iter_errors(data))
    if err is not None:
        where = "/".join(map(str, err.absolute_path)) or "(top)"
        raise VectorError(f"schema: {where}: {err.message}", rel)
    return [Entry.from_json(json_object(e)) for e in json_list(data["entries"])]


def add(root: Path, entries: Iterable[Entry]) -> list[Entry]:
    """Add ``entries`` to the ledger of ``root`` (one per release: a release already
    there keeps its first entry; one whose run judged no inferred claim measures
    nothing and is not written); the entries added."""
    have = load_ledger(root)
    known = {e.release for e in have}
    new = [e for e in entries if e.release not in known and e.inferred]
    if new:
        every = sorted([*have, *new], key=lambda e: Version.parse(e.release))
        (root / LEDGER_FILE).write_text(dump_canonical(
            {"description": DESCRIPTION, "entries": [dict(e.to_json()) for e in every]}))
    return new
