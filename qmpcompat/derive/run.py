"""Running derived cases on a build: each on a fresh QEMU through the vector
runner (which also checks QEMU still answers afterwards), judged against the
prediction and the known defects, and recorded like a vector's case."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from qmpcompat.derive.cases import DerivedCase, derive
from qmpcompat.provision import QemuBuild
from qmpcompat.schema.query import SchemaIndex
from qmpcompat.vectors.match import Verdict, judge
from qmpcompat.vectors.model import COMMANDS, KnownDefect
from qmpcompat.vectors.run import Observation, Runner

SOURCE = "derived from the binary's query-qmp-schema"
DEFAULT_COMMANDS = COMMANDS


@dataclass
class DerivedResult:
    """A derived case's verdict on one build, its observation and its report record."""

    case: DerivedCase
    verdict: Verdict
    observation: Observation
    record: dict[str, Any]


def record_of(case: DerivedCase, build: QemuBuild, verdict: Verdict,
              obs: Observation) -> dict[str, Any]:
    """The case's record in the keys results.json uses for every case."""
    return {
        "vector": case.id, "command": case.command, "flags": ["derived", case.kind],
        "description": case.description, "file": SOURCE,
        "qemu": build.label, "qemu_version": build.version_str, "package": build.package,
        "binary": build.binary, "outcome": verdict.outcome, "expected": verdict.expected,
        "message": verdict.message, "defect": verdict.defect, "observed": obs.to_json(),
        "seconds": obs.seconds,
    }


def run_case(case: DerivedCase, build: QemuBuild, runner: Runner,
             defects: Sequence[KnownDefect] = ()) -> DerivedResult:
    """Run one derived case on a fresh QEMU of ``build`` and judge it."""
    vec = case.vector()
    obs = runner.run(vec, build)
    verdict = judge(vec, build.version, obs, list(defects))
    return DerivedResult(case, verdict, obs, record_of(case, build, verdict, obs))


def derive_for(entries: list[dict[str, Any]], commands: Sequence[str] = DEFAULT_COMMANDS,
               ) -> list[DerivedCase]:
    """The derived cases of ``commands`` that this schema has (a command the
    binary lacks is left out)."""
    index = SchemaIndex(entries)
    return derive(index, [c for c in commands if c in index])
