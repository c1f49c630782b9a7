"""What the expectation a case is judged against rests on, for the build's version.

- ``observed``: the build's version is in the expectation's ``observed-on``: a
  real binary of that version was seen doing exactly this;
- ``schema``: not observed on that version, but the build's own schema decides
  it (the input visitor must give that error, see ``qmpcompat.derive.visit``);
- ``inferred``: neither; the expectation's ``inferred-from`` says what it rests on.

A case that showed a known defect is judged on the defect's claim: observed
when the build's version is in the defect's ``observed-on``, else inferred
(``defect_basis``). A cross-version cell is observed when its source->destination
pair is in the expectation's (or the defect's) ``observed-on``, else inferred
(``pair_basis``): no schema decides how a migration ends.

Under ``--qmpcompat-strict`` a case may pass (or show a known defect) only on an
observed or a schema claim: one that passes on an inferred claim fails instead
(``refuse_inferred``).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Protocol

from qmpcompat.provision import QemuBuild
from qmpcompat.resultdoc import BasisJSON
from qmpcompat.types import Outcome, Version
from qmpcompat.vectors.match import Verdict
from qmpcompat.vectors.model import Expectation, KnownDefect, Vector
from qmpcompat.vectors.versions import pair_label

KINDS = ("observed", "schema", "inferred")

# Given a vector, its expectation for a build and the build: the schema fact that
# decides the claim on that build, or None.
SchemaDecides = Callable[[Vector, Expectation, QemuBuild], str | None]


@dataclass(frozen=True)
class Basis:
    """``kind`` is one of KINDS; ``source`` says from what (a version, a schema
    fact, or the expectation's ``inferred-from``)."""

    kind: str
    source: str

    def to_json(self) -> BasisJSON:
        return {"kind": self.kind, "source": self.source}


def basis_of(vec: Vector, exp: Expectation, build: QemuBuild,
             decides: SchemaDecides | None = None) -> Basis:
    """The basis of ``exp`` (``vec``'s expectation for ``build``) on ``build``."""
    if exp.observed(build.version):
        return Basis("observed", f"observed on {build.version_str}")
    fact = decides(vec, exp, build) if decides is not None else None
    if fact:
        return Basis("schema", f"decided by the binary's own schema: {fact}")
    seen = ", ".join(exp.observed_on) or "no version"
    why = exp.inferred_from or "the expectation does not say"
    return Basis("inferred", f"not observed on {build.version_str} (observed on {seen}); "
                 f"inferred from: {why}")


def _inferred(what: str, where: str, seen: tuple[str, ...], why: str | None) -> Basis:
    return Basis("inferred", f"{what} not observed on {where} (observed on "
                 f"{', '.join(seen) or 'nothing'}); inferred from: "
                 f"{why or 'it does not say'}")


def defect_basis(defect: KnownDefect, version: Version,
                 destination: Version | None = None) -> Basis:
    """The basis of a case that showed ``defect`` on a build of ``version`` (or
    from it to one of ``destination``, for a pair vector's defect)."""
    where = pair_label(version, destination) if destination is not None \
        and defect.destination is not None else Version(*version).label
    if defect.seen_on(version, destination):
        return Basis("observed", f"known defect {defect.id} observed on {where}")
    return _inferred(f"known defect {defect.id}", where, defect.observed_on, defect.inferred_from)


class PairClaim(Protocol):
    """A claim on source->destination pairs: a pair vector's expectation or a
    consumer profile's."""

    @property
    def observed_on(self) -> tuple[str, ...]: ...
    @property
    def inferred_from(self) -> str | None: ...
    def observed(self, src: Version, dst: Version) -> bool: ...


def pair_basis(exp: PairClaim, source: Version, destination: Version) -> Basis:
    """The basis of a cross-version cell (or a consumer profile's cell) judged on ``exp``."""
    where = pair_label(source, destination)
    if exp.observed(source, destination):
        return Basis("observed", f"observed on {where}")
    return _inferred("the pair", where, exp.observed_on, exp.inferred_from)


def refuse_inferred(verdict: Verdict, basis: Basis | None) -> Verdict:
    """Strict mode: a case that passed (or showed a known defect) on an inferred
    claim fails, saying so."""
    if basis is None or basis.kind != "inferred" \
            or verdict.outcome not in (Outcome.PASSED, Outcome.XFAILED):
        return verdict
    did = "what the vector says" if verdict.outcome == Outcome.PASSED else \
        f"what known defect {verdict.defect} records"
    return Verdict(Outcome.FAILED, f"strict mode refuses an inferred claim: the binary did {did}, "
                   f"but {basis.source}; once reviewed, add its version to observed-on",
                   verdict.expected, verdict.defect)
