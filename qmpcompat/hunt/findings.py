"""Turning hunt findings into candidate vector files, ready to review.

For each finding, ``<ID>.yaml`` is a vector file in the project's format
(flag ``found-by``) whose expectations are what the other builds of the run
answered to the same tree, one exact version each; ``<ID>.known-defects.yaml``
records the builds that failed, with the evidence; ``<ID>.json`` keeps the
whole finding. Ids are placeholders (M-9xxx, MI-9xxx, KD-9xxx) to renumber
when the vector moves into ``vectors/``.
"""

from __future__ import annotations

import json
import re
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from qmpcompat.hunt.explore import Finding
from qmpcompat.vectors.match import NEVER_OK
from qmpcompat.vectors.yamlfile import dump_canonical

PREFIX = {"migrate": "M", "migrate-incoming": "MI"}
FIRST_NUMBER = 9001
REVIEW_WHY = ("REVIEW: every build of the hunt failed on this tree; say what a correct "
              "QEMU answers")


@dataclass(frozen=True)
class Answer:
    """What one build of the run did with a finding's tree."""

    qemu: str
    qemu_version: str
    observed: dict[str, Any]

    @property
    def failed(self) -> bool:
        return self.observed.get("result") in NEVER_OK


def _expectation(answer: Answer) -> dict[str, Any]:
    obs = answer.observed
    exp: dict[str, Any] = {"versions": f"=={answer.qemu_version}", "result": obs["result"]}
    if obs["result"] == "reject":
        exp["error-class"] = obs.get("error_class")
        exp["desc"] = obs.get("desc")
    elif obs.get("migration"):
        exp["migration"] = obs["migration"]
    return exp


def _detail(obs: dict[str, Any]) -> str:
    return str(obs.get("detail") or obs.get("desc") or obs.get("result"))


def next_number(out: Path) -> int:
    """The first candidate number not used in ``out`` yet."""
    used = [int(m.group(1)) for p in out.glob("*.yaml")
            if (m := re.match(r"(?:M|MI)-(\d{4})", p.name))]
    return max([FIRST_NUMBER - 1, *used]) + 1


def write_candidate(finding: Finding, answers: Sequence[Answer], out: Path, number: int) -> Path:
    """Write the finding's candidate vector, known-defect and evidence files; return
    the vector file."""
    vid = f"{PREFIX[finding.command]}-{number:04d}"
    failed = sorted({a.qemu_version for a in answers if a.failed} | {finding.qemu_version})
    good = [a for a in answers if not a.failed]
    expect = [_expectation(a) for a in sorted(good, key=lambda a: a.qemu_version)]
    if not expect:
        expect = [{"versions": "*", "result": "reject", "error-class": "GenericError",
                   "desc-pattern": ".+", "why": REVIEW_WHY}]
    flags = ["found-by"] + [f for f in ("uri", "channels") if f in finding.arguments]
    _, result, signal = finding.signature
    summary = {"crash": "QEMU dies" + (f" (signal {signal})" if signal else ""),
               "hang": "QEMU stops answering"}.get(result, "a harness step fails")
    vector = {"id": vid, "description": f"found by hunt: {summary} on {finding.command}"[:120],
              "flags": flags,
              "arguments": finding.arguments, "expect": expect}
    header = [f"# Candidate vector found by qmpcompat hunt on QEMU {finding.qemu} "
              f"(seed {finding.seed}, worker {finding.worker}, batch {finding.batch}).",
              f"# Minimal tree observed: {_detail(finding.observed)}",
              f"# Reproduced on a fresh QEMU: {_detail(finding.reproduced)}"
              + (" (flaky)" if finding.flaky else ""),
              "# Review the expectations, then move the vector into vectors/"
              f"{finding.command}/ and the defect into vectors/known-defects.yaml."]
    header = [line for text in header for line in text.replace("\r", "").split("\n")]
    header = [h if h.startswith("#") else f"#   {h}" for h in header]
    path = out / f"{vid}.yaml"
    path.write_text("\n".join(header) + "\n"
                    + dump_canonical({"command": finding.command, "vectors": [vector]}))
    defects = [{"id": f"KD-{number:04d}", "vector": vid, "versions": f"=={version}",
                "summary": f"QEMU {version}: {summary} on {finding.command}"[:200],
                "observed": {"result": next((a.observed["result"] for a in answers
                                             if a.qemu_version == version and a.failed),
                                            finding.observed["result"])},
                "evidence": f"qmpcompat hunt --seed {finding.seed} on QEMU {finding.qemu} "
                            f"({finding.binary}): {_detail(finding.observed)}; reproduced: "
                            f"{_detail(finding.reproduced)}"} for version in failed]
    (out / f"{vid}.known-defects.yaml").write_text(dump_canonical({"defects": defects}))
    evidence = {"id": vid, **asdict(finding), "answers": [asdict(a) for a in answers]}
    (out / f"{vid}.json").write_text(json.dumps(evidence, indent=2) + "\n")
    return path
