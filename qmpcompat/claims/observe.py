"""Recording observations: the versions a run saw doing what a claim says go into
that claim's ``observed-on``.

Three kinds of claims are recorded:

- a vector's expectation: a case that passed observes its build's version on
  the expectation it was judged against (the one whose range holds the version);
- a known defect: a case that showed it (``xfailed`` naming the defect)
  observes its build's version; for a pair vector's defect, the
  ``SOURCE->DESTINATION`` pair;
- a cross-version pair expectation: a pair of versions is observed when every
  cell of it the run made under that expectation (each form both sides
  support) passed; a known defect of the pair vector likewise when every such
  cell showed it;
- a consumer profile's expectation: a ``SOURCE->DESTINATION`` pair whose cell
  passed under it (a known defect of the profile: whose cell showed it).

A failure or a skip observes nothing. The results must come from a run of this
very vector set (the same ``vector_revision``), so no claim has changed since.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

from qmpcompat.errors import ReportError
from qmpcompat.resultdoc import ResultsJSON
from qmpcompat.types import Outcome, Version
from qmpcompat.vectors.lint import canonical_text
from qmpcompat.vectors.load import DEFECTS_FILE, VectorSet, profile_files, vector_files
from qmpcompat.vectors.versions import pair_label
from qmpcompat.vectors.yamlfile import editable_yaml


@dataclass(frozen=True)
class Observed:
    """One version (or ``SRC->DST`` pair) newly recorded on one claim: expectation
    ``index`` of vector (or pair vector) ``vector``, or the known defect ``vector``
    names when ``index`` is -1."""

    vector: str
    versions: str  # the claim's range, as written
    version: str
    index: int = 0

    def __str__(self) -> str:
        return f"{self.vector} ({self.versions}): observed on {self.version}"


def _sort_key(obs: Observed) -> tuple[str, int, tuple[Version, ...]]:
    return obs.vector, obs.index, tuple(Version.parse(v) for v in obs.version.split("->"))


def _vector_cases(doc: ResultsJSON, vs: VectorSet) -> Iterable[Observed]:
    by_id = {v.id: v for v in vs.vectors}
    defects = {d.id: d for d in vs.defects}
    for rec in doc["results"]:
        vec = by_id.get(rec["vector"])
        if vec is None:
            continue
        version = Version.parse(rec["qemu_version"])
        defect = defects.get(rec.get("defect") or "")
        if rec["outcome"] == Outcome.XFAILED and defect is not None and defect.destination is None:
            if not defect.seen_on(version):
                yield Observed(defect.id, str(defect.versions), version.label, -1)
            continue
        exp = vec.expectation_for(version)
        if rec["outcome"] != Outcome.PASSED or exp is None or exp.observed(version):
            continue
        yield Observed(vec.id, str(exp.versions), version.label, vec.expect.index(exp))


def _pair_cells(doc: ResultsJSON, vs: VectorSet) -> Iterable[Observed]:
    """Pairs whose every run cell under one claim passed (or showed the one defect)."""
    by_id = {p.id: p for p in vs.pairs}
    defects = {d.id: d for d in vs.defects}
    groups: dict[tuple[str, int, str, str], list[str]] = {}
    for rec in doc.get("pairs") or ():
        pv = by_id.get(rec["vector"])
        if pv is None or rec["outcome"] == Outcome.SKIPPED:
            continue
        src, dst = Version.parse(rec["source_version"]), Version.parse(rec["destination_version"])
        defect = defects.get(rec.get("defect") or "")
        exp = pv.expectation_for(src, dst, rec["form"])
        if defect is not None:
            key = (defect.id, -1, str(defect.versions), pair_label(src, dst))
        elif exp is not None:
            key = (pv.id, pv.expect.index(exp), f"sources {exp.source}, destinations "
                   f"{exp.destination}", pair_label(src, dst))
        else:
            continue
        groups.setdefault(key, []).append(rec["outcome"])
    for (claim, index, versions, pair), outcomes in groups.items():
        wanted = Outcome.XFAILED if index == -1 else Outcome.PASSED
        if any(o != wanted for o in outcomes):
            continue
        seen = defects[claim].observed_on if index == -1 else by_id[claim].expect[index].observed_on
        if pair not in seen:
            yield Observed(claim, versions, pair, index)


def _consumer_cells(doc: ResultsJSON, vs: VectorSet) -> Iterable[Observed]:
    """Consumer cells that passed under a profile's expectation (or showed its defect)."""
    by_id = {p.id: p for p in vs.profiles}
    defects = {d.id: d for d in vs.defects}
    for rec in doc.get("consumers") or ():
        profile = by_id.get(rec["profile"])
        if profile is None:
            continue
        src, dst = Version.parse(rec["source_version"]), Version.parse(rec["destination_version"])
        pair = pair_label(src, dst)
        defect = defects.get(rec.get("defect") or "")
        if rec["outcome"] == Outcome.XFAILED and defect is not None:
            if pair not in defect.observed_on:
                yield Observed(defect.id, str(defect.versions), pair, -1)
            continue
        exp = profile.expectation_for(src, dst)
        if rec["outcome"] == Outcome.PASSED and exp is not None and pair not in exp.observed_on:
            yield Observed(profile.id, f"sources {exp.source}, destinations {exp.destination}",
                           pair, profile.expect.index(exp))


def observations(doc: ResultsJSON, vs: VectorSet) -> list[Observed]:
    """What ``doc`` (a results document of a run of ``vs``) observed that the
    vectors, pair vectors and known defects do not record yet. ReportError if it
    is of another vector set."""
    revision = doc["environment"].get("vector_revision")
    if revision != vs.revision():
        raise ReportError(f"the results are of vector set {revision}, the vectors are "
                          f"{vs.revision()}: run the suite on these vectors first")
    found = {(o.vector, o.index, o.version): o
             for o in [*_vector_cases(doc, vs), *_pair_cells(doc, vs), *_consumer_cells(doc, vs)]}
    return sorted(found.values(), key=_sort_key)


def _add(item: dict[str, object], versions: set[str]) -> None:
    """Add ``versions`` to ``item``'s ``observed-on`` (a new key goes before
    ``inferred-from`` and ``review-by``, where the format's examples have it).
    ``item`` is an expectation or a known defect as its file holds it."""
    listed = item.get("observed-on")
    seen = sorted((set(listed) if isinstance(listed, list) else set()) | versions,
                  key=lambda v: tuple(Version.parse(p) for p in v.split("->")))
    if "observed-on" not in item:
        later: dict[str, object] = {k: item.pop(k) for k in ("inferred-from", "review-by") if k in item}
        item["observed-on"] = seen
        item.update(later)
    item["observed-on"] = seen


def record(vs: VectorSet, seen: list[Observed]) -> list[Path]:
    """Add ``seen`` to the vector files and the known defects of ``vs`` (canonical
    form kept); the files it changed."""
    wanted: dict[tuple[str, int], set[str]] = {}
    for obs in seen:
        wanted.setdefault((obs.vector, obs.index), set()).add(obs.version)
    changed = []
    for path in vector_files(vs.root):
        data = editable_yaml(path)
        if not isinstance(data, dict):
            continue  # not a vector file (lint says so)
        touched = False
        for raw in [*(data.get("vectors") or []), *(data.get("pairs") or [])]:
            for i, exp in enumerate(raw.get("expect") or []):
                if new := wanted.get((raw.get("id"), i)):
                    _add(exp, new)
                    touched = True
        if touched:
            path.write_text(canonical_text(path, data))
            changed.append(path)
    for path in profile_files(vs.root):
        data = editable_yaml(path)
        if not isinstance(data, dict):
            continue
        touched = False
        for i, exp in enumerate(data.get("expect") or []):
            if new := wanted.get((str(data.get("id")), i)):
                _add(exp, new)
                touched = True
        if touched:
            path.write_text(canonical_text(path, data))
            changed.append(path)
    path = vs.root / DEFECTS_FILE
    if any(i == -1 for _v, i in wanted) and path.exists():
        data = editable_yaml(path)
        for raw in (data.get("defects") or []) if isinstance(data, dict) else []:
            if new := wanted.get((raw.get("id"), -1)):
                _add(raw, new)
        path.write_text(canonical_text(path, data))
        changed.append(path)
    return changed
