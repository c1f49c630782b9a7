"""Whose bug a consumer profile's known defect is: QEMU's or the consumer's,
decided from the schema history, not from the defect's prose.

A refusal is the consumer's when the affected QEMU's own schema decides it (its
input visitor must give exactly the recorded error for the arguments the
consumer sent), an earlier known release's schema takes the same arguments,
and every member the newer schema lacks was marked deprecated in a release
that still had it: the consumer sends what QEMU removed after deprecating it,
as QEMU's deprecation policy allows (docs/about/deprecated.rst in QEMU). Any
other defect (a crash, a hang, a migration that fails, a refusal that comes
from QEMU's code rather than its schema, a member removed without a
deprecation the history shows) is QEMU's.
"""

from __future__ import annotations

from collections.abc import Sequence

from qmpcompat.claims.history import Release, decided
from qmpcompat.derive.visit import visit
from qmpcompat.reproduce.model import Owner
from qmpcompat.schema.model.query import schema_has
from qmpcompat.types import JSONObject, Version
from qmpcompat.vectors.model import KnownDefect

_WHAT = {"crash": "QEMU crashes on", "hang": "QEMU hangs on", "corrupt": "QEMU damages the guest with",
         "accept": "the migration does not end as QEMU documents with"}


def _qemu(why: str) -> Owner:
    return Owner("QEMU", why)


def _span(releases: Sequence[Release]) -> str:
    return releases[0].label if len(releases) == 1 else \
        f"{releases[0].label} to {releases[-1].label}"


def whose(defect: KnownDefect, consumer: str, execute: str, arguments: JSONObject,
          source: Version, releases: Sequence[Release]) -> Owner:
    """Whose bug ``defect`` is, and why in a sentence: the
    consumer (``consumer``, e.g. ``libvirt 9.0.0-4+deb12u2``) sent ``execute`` with
    ``arguments`` to QEMU ``source``; ``releases`` is the known history, oldest first."""
    if defect.observed.result != "reject":
        return _qemu(f"{_WHAT.get(defect.observed.result, 'QEMU fails on')} what {consumer} "
                     "sends")
    if not execute:
        return _qemu(f"QEMU refuses what {consumer} does")
    rel = next((r for r in releases if r.version == source), None)
    if rel is None:
        return _qemu(f"no schema of QEMU {source.label} is committed to say otherwise")
    answer = visit(rel.index, execute, arguments, rel.ordered)
    if not decided(defect.observed, answer):
        return _qemu(f"QEMU {source.label}'s schema lets {consumer}'s {execute} through; "
                     "the refusal comes from QEMU's own code")
    took = [r for r in releases if r.version < source
            and visit(r.index, execute, arguments, r.ordered).accepted]
    if not took:
        return _qemu(f"no earlier release's schema takes {consumer}'s {execute} either")
    last, members = took[-1], [str(m) for m in arguments]
    gone = [m for m in members if schema_has(last.index, f"{execute}/arg-type/{m}")
            and not schema_has(rel.index, f"{execute}/arg-type/{m}")]
    deprecated = {m: next((r for r in took if schema_has(r.index, f"{execute}/arg-type/{m}/$deprecated")),
                          None) for m in gone}
    if not gone or None in deprecated.values():
        return _qemu(f"QEMU {source.label} refuses what {_span(took)} took "
                     f"({answer.fact}) without a deprecation the history shows")
    removed = next(r for r in releases if r.version > last.version)
    what = ", ".join(f"{m} (deprecated from {r.label})" for m, r in deprecated.items()
                     if r is not None)
    return Owner(consumer, f"it sends {execute} with {what}, which QEMU's schema has "
            f"from {took[0].label} to {last.label} and no longer has from {removed.label}; "
            f"QEMU {source.label} refuses it by its own schema ({answer.fact}), as QEMU "
            "may once a member has been deprecated (its deprecation policy). QEMU does what "
            f"it documents; {consumer} must stop sending it", consumer=True)
