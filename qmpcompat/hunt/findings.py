"""Turning hunt findings into candidate vector files, ready to review.

For each finding, ``<ID>.yaml`` is a vector file in the project's format
(flag ``found-by``): one expectation per build that did not fail (what it
answered to the same tree), and a ``REVIEW`` placeholder for each run of
failing builds; ``<ID>.known-defects.yaml`` records those runs, with the
evidence; ``<ID>.json`` keeps the whole finding. Ids are placeholders (M-9xxx,
MI-9xxx, KD-9xxx) to renumber when the vector moves into ``vectors/``.
"""

from __future__ import annotations

import json
import re
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from qmpcompat.hunt.explore import Finding, is_failure
from qmpcompat.types import Version
from qmpcompat.vectors.run import Observation
from qmpcompat.vectors.yamlfile import dump_canonical

PREFIX = {"migrate": "M", "migrate-incoming": "MI"}
FIRST_NUMBER = 9001
REVIEW_WHY = ("REVIEW: QEMU fails on this tree in these versions; write what a correct "
              "build answers")


@dataclass(frozen=True)
class Answer:
    """What one build of the run did with a finding's tree."""

    qemu: str
    qemu_version: str
    observed: dict[str, Any]

    def failed(self, finding: Finding) -> bool:
        obs = Observation(**{k: v for k, v in self.observed.items() if k != "seconds"})
        return is_failure(finding.command, finding.arguments, obs)

    @property
    def version(self) -> Version:
        return Version.parse(self.qemu_version)


def _expectation(answer: Answer) -> dict[str, Any]:
    obs = answer.observed
    exp: dict[str, Any] = {"versions": f"=={answer.qemu_version}", "result": obs["result"]}
    if obs["result"] == "reject":
        exp["error-class"] = obs.get("error_class")
        exp["desc"] = obs.get("desc")
    elif obs.get("migration"):
        exp["migration"] = obs["migration"]
    return exp


def _runs(answers: Sequence[Answer], finding: Finding) -> list[list[Answer]]:
    """The failing builds, in runs of consecutive versions (by the run's builds)."""
    runs: list[list[Answer]] = []
    previous_failed = False
    for answer in sorted(answers, key=lambda a: a.version):
        failed = answer.failed(finding)
        if failed and previous_failed:
            runs[-1].append(answer)
        elif failed:
            runs.append([answer])
        previous_failed = failed
    return runs


def _range(run: list[Answer]) -> str:
    first, last = run[0].qemu_version, run[-1].qemu_version
    return f"=={first}" if first == last else f">={first},<={last}"


def _detail(obs: dict[str, Any]) -> str:
    return str(obs.get("detail") or obs.get("desc") or obs.get("result"))


def next_number(out: Path, prefix: str = "(?:M|MI)") -> int:
    """The first candidate number not used in ``out`` yet (by vectors, or with
    ``prefix='KD'`` by known defects)."""
    used = [int(m.group(1)) for p in out.glob("*")
            for m in re.finditer(rf"\b{prefix}-(\d{{4}})", p.read_text() if p.suffix == ".yaml"
                                 else p.name)]
    return max([FIRST_NUMBER - 1, *used]) + 1


def write_candidate(finding: Finding, answers: Sequence[Answer], out: Path, number: int,
                    defect_number: int) -> tuple[Path, int]:
    """Write the finding's candidate vector, known-defect and evidence files; return
    the vector file and how many known-defect numbers it used."""
    vid = f"{PREFIX[finding.command]}-{number:04d}"
    _, result, signal = finding.signature
    summary = {"crash": "QEMU dies" + (f" (signal {signal})" if signal else ""),
               "hang": "QEMU stops answering"}.get(result, "a harness step fails")
    runs = _runs(answers, finding)
    expect = [_expectation(a) for a in sorted(answers, key=lambda a: a.version)
              if not a.failed(finding)]
    expect += [{"versions": _range(run), "result": "reject", "error-class": "GenericError",
                "desc-pattern": ".+", "why": REVIEW_WHY} for run in runs]
    flags = ["found-by"] + [f for f in ("uri", "channels") if f in finding.arguments]
    vector = {"id": vid, "description": f"found by hunt: {summary} on {finding.command}"[:120],
              "flags": flags, "arguments": finding.arguments, "expect": expect}
    header = [f"Candidate vector found by qmpcompat hunt on QEMU {finding.qemu} "
              f"(seed {finding.seed}, worker {finding.worker}, batch {finding.batch}).",
              f"Minimal tree observed: {_detail(finding.observed)}",
              f"Reproduced on a fresh QEMU: {_detail(finding.reproduced)}"
              + (" (flaky)" if finding.flaky else ""),
              "Review the REVIEW expectations, then move the vector into vectors/"
              f"{finding.command}/ and the defects into vectors/known-defects.yaml."]
    lines = [line for text in header for line in text.replace("\r", "").split("\n")]
    path = out / f"{vid}.yaml"
    path.write_text("".join(f"# {line}\n" for line in lines)
                    + dump_canonical({"command": finding.command, "vectors": [vector]}))
    defects = [{"id": f"KD-{defect_number + i:04d}", "vector": vid, "versions": _range(run),
                "summary": f"QEMU {', '.join(a.qemu_version for a in run)}: {summary} "
                           f"on {finding.command}"[:200],
                "observed": {"result": run[0].observed["result"]},
                "evidence": f"qmpcompat hunt --seed {finding.seed} on QEMU {finding.qemu}, "
                            "then the minimal tree on each build: "
                            + "; ".join(f"{a.qemu_version}: {_detail(a.observed)}" for a in run)}
               for i, run in enumerate(runs)]
    (out / f"{vid}.known-defects.yaml").write_text(dump_canonical({"defects": defects}))
    evidence = {"id": vid, **asdict(finding), "answers": [asdict(a) for a in answers]}
    (out / f"{vid}.json").write_text(json.dumps(evidence, indent=2) + "\n")
    return path, len(defects)
