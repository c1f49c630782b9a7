"""What the expectation a case is judged against rests on, for the build's version.

- ``observed``: the build's version is in the expectation's ``observed-on``: a
  real binary of that version was seen doing exactly this;
- ``schema``: not observed on that version, but the build's own schema decides
  it (the input visitor must give that error, see ``qmpcompat.derive.visit``);
- ``inferred``: neither; the expectation's ``inferred-from`` says what it rests on.

Under ``--qmpcompat-strict`` a case may pass only on an observed or a schema
claim: one that passes on an inferred claim fails instead (``refuse_inferred``).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from qmpcompat.provision import QemuBuild
from qmpcompat.types import Outcome
from qmpcompat.vectors.match import Verdict
from qmpcompat.vectors.model import Expectation, Vector

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

    def to_json(self) -> dict[str, str]:
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


def refuse_inferred(verdict: Verdict, basis: Basis | None) -> Verdict:
    """Strict mode: a case that passed on an inferred claim fails, saying so."""
    if basis is None or basis.kind != "inferred" or verdict.outcome != Outcome.PASSED:
        return verdict
    return Verdict(Outcome.FAILED, f"strict mode refuses an inferred claim: the binary did what the "
                   f"vector says, but {basis.source}; once reviewed, add its version to "
                   "observed-on", verdict.expected)
