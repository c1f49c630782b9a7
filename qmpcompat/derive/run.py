"""Running derived cases on a build: each on a fresh QEMU through the vector
runner (which also checks QEMU still answers afterwards), judged against the
prediction and the known defects, and recorded like a vector's case."""

from __future__ import annotations

from collections.abc import Sequence

from qmpcompat.derive.cases import DerivedCase, derive
from qmpcompat.provision import QemuBuild
from qmpcompat.schema.model.query import Entry, SchemaIndex
from qmpcompat.vectors.basis import Basis
from qmpcompat.vectors.check import CaseResult, case_record
from qmpcompat.vectors.match import judge
from qmpcompat.vectors.model import COMMANDS, KnownDefect
from qmpcompat.vectors.run import Runner
from qmpcompat.vectors.verdict import NO_RULES, VerdictRules

DEFAULT_COMMANDS = COMMANDS
DERIVED_BASIS = Basis("schema", "derived from the binary's own schema")


def run_case(case: DerivedCase, build: QemuBuild, runner: Runner,
             defects: Sequence[KnownDefect] = (), rules: VerdictRules = NO_RULES) -> CaseResult:
    """Run one derived case on ``build`` with ``runner`` and judge it under the run's
    ``rules``; the record is a vector's record with the case's id, ``derived``
    flags and source."""
    vec = case.vector()
    obs = runner.run(vec, build)
    verdict = rules.apply(judge(vec, build.version, obs, list(defects)), obs, DERIVED_BASIS)
    return CaseResult(verdict, obs, case_record(vec, build, verdict, obs, DERIVED_BASIS))


def derive_for(entries: list[Entry], commands: Sequence[str] = DEFAULT_COMMANDS,
               refused: list[str] | None = None) -> list[DerivedCase]:
    """The derived cases of ``commands`` that this schema has (a command the
    binary lacks is left out); shapes the safety gate refuses go into ``refused``."""
    index = SchemaIndex(entries)
    return derive(index, [c for c in commands if c in index], refused)
