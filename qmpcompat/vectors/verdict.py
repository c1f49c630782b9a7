"""The release-gate rules every case's verdict passes through, whatever kind of
case it is (a vector, a derived case, a cross-version cell, a consumer replay):
one place, so that no kind of case escapes a rule the run asked for.

- ``fail_on_known`` (``--qmpcompat-fail-on-known``): a recorded known defect
  whose observed result is one of these kinds (``crash``, ``hang``) fails its
  case instead of being an expected failure;
- ``strict`` (``--qmpcompat-strict``): a case that passed (or showed a known
  defect) on an inferred claim fails (``basis.refuse_inferred``), and so does a
  case whose reused QEMU and the fresh QEMU it was run again on did otherwise:
  its outcome depended on what ran before it.
"""

from __future__ import annotations

from dataclasses import dataclass

from qmpcompat.types import Outcome
from qmpcompat.vectors.basis import Basis, refuse_inferred
from qmpcompat.vectors.match import Verdict
from qmpcompat.vectors.run import Observation


@dataclass(frozen=True)
class VerdictRules:
    """The rules a run applies on top of each case's own judgement."""

    strict: bool = False
    fail_on_known: frozenset[str] = frozenset()

    def apply(self, verdict: Verdict, obs: Observation | None, basis: Basis | None) -> Verdict:
        """``verdict`` after every rule of the run."""
        if verdict.outcome == Outcome.XFAILED and obs is not None and obs.result in self.fail_on_known:
            verdict = Verdict(Outcome.FAILED,
                              f"{verdict.message} (a known {obs.result} fails the release gate under "
                              f"--qmpcompat-fail-on-known {','.join(sorted(self.fail_on_known))})",
                              verdict.expected, verdict.defect)
        if self.strict:
            verdict = refuse_unsteady(refuse_inferred(verdict, basis), obs)
        return verdict


def refuse_unsteady(verdict: Verdict, obs: Observation | None) -> Verdict:
    """Strict mode: a case whose reused QEMU and fresh QEMU did otherwise fails,
    whatever the fresh QEMU's verdict was."""
    if obs is None or not obs.disagrees or verdict.outcome in (Outcome.FAILED, Outcome.ERROR):
        return verdict
    first = obs.rerun or {}
    return Verdict(Outcome.FAILED,
                   f"strict mode refuses a case whose outcome depended on the QEMU it ran on: a "
                   f"reused QEMU gave {first.get('result')} ({first.get('detail')}), a fresh one "
                   f"{obs.result}; run it with --qmpcompat-fresh to see it alone",
                   verdict.expected, verdict.defect)


NO_RULES = VerdictRules()
"""A run that asked for none of the rules: each case's own judgement stands."""
