"""Which recorded known defects a hunt's findings are: each crash or hang in
``vectors/known-defects.yaml`` that applies to a build is run once, alone on a
fresh QEMU, and its bug (``cases.bug_key``) is compared with the findings'.

So a run says, per build, which recorded crashes it found again by itself and
which it missed, and which of its findings are recorded already: a finding is
a recorded defect when one that applies to an affected build fails there with
the same signature (``cases.signature``: the bug and the command shape).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from qmpcompat.hunt.cases import bug_key, is_failure, signature
from qmpcompat.provision import QemuBuild
from qmpcompat.vectors.load import VectorSet
from qmpcompat.vectors.model import Vector
from qmpcompat.vectors.run import Runner
from qmpcompat.vectors.transcript import Step

FAILING = ("crash", "hang")


def steps_of(vec: Vector) -> list[Step]:
    """A vector as a transcript: its capabilities and parameters, then its command."""
    steps: list[Step] = []
    if vec.capabilities:
        steps.append({"execute": "migrate-set-capabilities", "arguments": {"capabilities": [
            {"capability": k, "state": v} for k, v in vec.capabilities.items()]}})
    if vec.parameters:
        steps.append({"execute": "migrate-set-parameters", "arguments": dict(vec.parameters)})
    return [*steps, {"execute": vec.command, "arguments": dict(vec.arguments)}]


@dataclass(frozen=True)
class KnownBug:
    """A recorded crash or hang as seen on one build."""

    defect: str  # KD-0001
    vector: str
    qemu: str
    key: str  # its bug_key on that build
    signature: str  # ... and its signature


def known_bugs(vectors: VectorSet, builds: Sequence[QemuBuild], runner: Runner,
               ) -> list[KnownBug]:
    """Each recorded crash or hang that applies to a build, run on it; those that
    fail there, with their bug key."""
    by_id = {v.id: v for v in vectors.vectors}
    out: list[KnownBug] = []
    for build in builds:
        for defect in vectors.defects:
            vec = by_id.get(defect.vector)
            if (defect.observed.result not in FAILING or vec is None
                    or build.version not in defect.versions):
                continue
            obs = runner.run_fresh(vec, build)
            steps = steps_of(vec)
            if is_failure(steps, obs):
                observed = obs.to_json()
                out.append(KnownBug(defect.id, vec.id, build.label, bug_key(steps, observed),
                                    signature(steps, observed)))
    return out


def recorded(bugs: Sequence[KnownBug], sig: str, builds: Sequence[str]) -> list[str]:
    """The recorded defects a finding of signature ``sig`` is, on the builds (labels)
    it affects: those failing with that signature on one of them."""
    return sorted({b.defect for b in bugs if b.signature == sig and b.qemu in builds})
