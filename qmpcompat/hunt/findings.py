"""Turning hunt findings into candidate vector files, ready to review.

For each finding, ``<ID>.yaml`` is a vector file in the project's format
(flag ``found-by``; steps that set capabilities or parameters first become its
``requires``): one expectation per build that did not fail (what it answered to
the same transcript), and a ``REVIEW`` placeholder for each run of failing
builds; ``<ID>.known-defects.yaml`` records those runs, with the evidence;
``<ID>.json`` keeps the whole finding. A transcript with steps after the
command has no vector form: its report and evidence say so. Ids are
placeholders (M-9xxx, MI-9xxx, KD-9xxx) to renumber when the vector moves into
``vectors/``.
"""

from __future__ import annotations

import json
import re
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from pathlib import Path

from qmpcompat.hunt.cases import Finding, is_failure, signature
from qmpcompat.types import JSON, JSONObject, Version, json_object
from qmpcompat.vectors.run import Observation
from qmpcompat.vectors.transcript import Step
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
    observed: JSONObject

    def failed(self, finding: Finding) -> bool:
        """Whether this build fails on the finding's transcript (in any way)."""
        return is_failure(finding.steps, self.observation)

    def same_bug(self, finding: Finding) -> bool:
        """Whether this build fails with the finding's own signature."""
        return self.failed(finding) and signature(finding.steps, self.observed) == finding.signature

    @property
    def observation(self) -> Observation:
        return Observation.from_json(self.observed)

    @property
    def version(self) -> Version:
        return Version.parse(self.qemu_version)


def _expectation(answer: Answer) -> JSONObject:
    obs = answer.observed
    exp: JSONObject = {"versions": f"=={answer.qemu_version}", "result": obs["result"]}
    if obs["result"] == "reject":
        exp["error-class"] = obs.get("error_class")
        exp["desc"] = obs.get("desc")
    elif obs.get("migration"):
        exp["migration"] = obs["migration"]
    exp["observed-on"] = [answer.qemu_version]
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


def _detail(obs: JSONObject) -> str:
    return str(obs.get("detail") or obs.get("desc") or obs.get("result"))


def next_number(out: Path, prefix: str = "(?:M|MI)") -> int:
    """The first candidate number not used in ``out`` yet (by vectors, or with
    ``prefix='KD'`` by known defects)."""
    used = [int(m.group(1)) for p in out.glob("*")
            for m in re.finditer(rf"\b{prefix}-(\d{{4}})", p.read_text() if p.suffix == ".yaml"
                                 else p.name)]
    return max([FIRST_NUMBER - 1, *used]) + 1


def vector_form(steps: Sequence[Step]) -> tuple[JSONObject, JSONObject] | None:
    """The transcript as a vector's ``requires`` (capabilities and parameters set
    first) and ``arguments``; None when it has no vector form (a step after the
    command, or another command before it)."""
    requires: JSONObject = {}
    parameters: JSONObject = {}  # requires' own, once a step sets one
    capabilities: JSONObject = {}  # ... likewise
    *before, main = steps
    if main["execute"] not in PREFIX:
        return None
    for s in before:
        listed = s["arguments"].get("capabilities")
        if s["execute"] == "migrate-set-parameters":
            requires["parameters"] = parameters
            parameters.update(s["arguments"])
        elif s["execute"] == "migrate-set-capabilities" and isinstance(listed, list):
            for c in map(json_object, listed):
                requires["capabilities"] = capabilities
                capabilities[str(c["capability"])] = c["state"]
        else:
            return None
    queries: list[JSON] = [
        f"migrate-set-parameters/arg-type/{k}" + (f"/^{v}" if isinstance(v, str) else "")
        for k, v in parameters.items()]
    queries += [f"migrate-set-capabilities/arg-type/capabilities/capability/^{c}"
                for c in capabilities]
    if queries:
        requires = {"schema": queries, **requires}
    return requires, dict(main["arguments"])


def summary_of(finding: Finding) -> str:
    """A few words for what the finding's builds do: 'QEMU dies (signal 11)'."""
    _, result, sig = finding.kind
    return {"crash": "QEMU dies" + (f" (signal {sig})" if sig else ""),
            "hang": "QEMU stops answering"}.get(result, "a harness step fails")


def write_candidate(finding: Finding, answers: Sequence[Answer], out: Path, number: int,
                    defect_number: int) -> tuple[Path, int]:
    """Write the finding's candidate vector (when the transcript has a vector
    form), known-defect and evidence files; return the vector file (or the
    evidence file) and how many known-defect numbers it used."""
    vid = f"{PREFIX[finding.command]}-{number:04d}"
    summary = summary_of(finding)
    runs = _runs(answers, finding)
    form = vector_form(finding.steps)
    evidence = {"id": vid, **asdict(finding), "command": finding.command,
                "signature": finding.signature, "answers": [asdict(a) for a in answers],
                "vector": form is not None}
    (out / f"{vid}.json").write_text(json.dumps(evidence, indent=2) + "\n")
    if form is None:
        return out / f"{vid}.json", 0
    requires, arguments = form
    expect: list[JSON] = [_expectation(a) for a in sorted(answers, key=lambda a: a.version)
                          if not a.failed(finding)]
    expect += [{"versions": _range(run), "result": "reject", "error-class": "GenericError",
                "desc-pattern": ".+", "why": REVIEW_WHY, "inferred-from": REVIEW_WHY}
               for run in runs]
    flags: list[JSON] = ["found-by", *(f for f in ("uri", "channels") if f in arguments)]
    vector: JSONObject = {
        "id": vid, "description": f"found by hunt: {summary} on {finding.command}"[:120],
        "flags": flags, **({"requires": requires} if requires else {}),
        "arguments": arguments, "expect": expect}
    header = [f"Candidate vector found by qmpcompat hunt on QEMU {finding.qemu} "
              f"(seed {finding.seed}, worker {finding.worker}, batch {finding.batch}).",
              f"Signature: {finding.signature}",
              f"Minimal transcript observed: {_detail(finding.observed)}",
              f"Reproduced alone on a fresh QEMU: {_detail(finding.reproduced)}"
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
                            "then the minimal transcript on each build: "
                            + "; ".join(f"{a.qemu_version}: {_detail(a.observed)}" for a in run),
                # the builds it was reproduced on; the rest of the range is the reviewer's call
                "observed-on": sorted({a.qemu_version for a in run}, key=Version.parse)}
               for i, run in enumerate(runs)]
    (out / f"{vid}.known-defects.yaml").write_text(dump_canonical({"defects": defects}))
    return path, len(defects)
