"""``summary.md``: a short Markdown summary for a CI job summary or a
merge-request comment, led by the run's verdict and why."""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from qmpcompat.escape import markdown, markdown_item
from qmpcompat.report import runmodes
from qmpcompat.report.changes import run_steps
from qmpcompat.report.changes_out import markdown_rows
from qmpcompat.report.consumers import failed_consumers
from qmpcompat.report.consumers import render_markdown as render_consumers
from qmpcompat.report.crashes import CRASHES, crash_rows, defect_rows, observed_result, tally
from qmpcompat.report.history import timeline_markdown
from qmpcompat.report.matrix import failed_pairs
from qmpcompat.report.matrix import render_markdown as render_matrix
from qmpcompat.report.origins import origin_table, package_text
from qmpcompat.report.results import claim_labels
from qmpcompat.resultdoc import BinaryJSON, GateFindingJSON, ResultsJSON
from qmpcompat.types import at_least

WARNINGS_LISTED = 20  # summary.md lists a step's warning changes up to this many


@dataclass
class Verdict:
    """The gate's one answer: ``ok``, and the reasons it is not."""

    ok: bool
    reasons: list[str] = field(default_factory=list)
    crashes: str = ""  # how many cases crashed or hung QEMU, known or not ("" if none)
    crashed: int = 0  # cases that crashed or hung QEMU
    unknown_crashes: int = 0  # of them, not a known defect

    @property
    def word(self) -> str:
        return "PASS" if self.ok else "FAIL"

    @property
    def headline(self) -> str:
        """PASS or FAIL, never alone above a crash: ``PASS, but QEMU crashed in 26 cases ...``."""
        if not self.crashed:
            return self.word
        known = ("all known defects" if not self.unknown_crashes
                 else f"{self.unknown_crashes} not a known defect")
        return (f"{self.word}, {'but ' if self.ok else ''}QEMU crashed or hung in "
                f"{self.crashed} case{'s' * (self.crashed != 1)} ({known})")


def gate_findings(doc: ResultsJSON, fail_on: str) -> list[GateFindingJSON]:
    return [f for f in doc.get("schema_gate", []) if at_least(str(f.get("level")), fail_on)]


def verdict(doc: ResultsJSON, fail_on: str = "breaking") -> Verdict:
    """FAIL on any unexpected outcome, crash or hang, unusable binary, or schema
    change at or above ``fail_on``."""
    failed = [r for r in doc["results"] if r["outcome"] in ("failed", "error") and not r.get("defect")]
    crashes = [r for r in failed if observed_result(r) in CRASHES]
    gated = [r for r in doc["results"] if r["outcome"] == "failed" and r.get("defect")]
    corrupt = [r for r in failed if observed_result(r) == "corrupt"]
    reasons = []
    if gated:
        what = "crashes or hangs fail" if len(gated) != 1 else "crash or hang fails"
        reasons.append(f"{len(gated)} known-defect {what} the release gate (--qmpcompat-fail-on-known)")
    if failed:
        reasons.append(f"{len(failed)} unexpected outcome{'s' * (len(failed) != 1)}"
                       + (f", {len(crashes)} of them a QEMU crash or hang" if crashes else "")
                       + (f", {len(corrupt)} of them a migration that completed with the guest "
                          "damaged (memory, run state or RAM transferred)" if corrupt else ""))
    pair_failed = failed_pairs(doc)
    if pair_failed:
        reasons.append(f"{len(pair_failed)} cross-version matrix cell"
                       f"{'s' * (len(pair_failed) != 1)} failed")
    consumer_failed = failed_consumers(doc)
    if consumer_failed:
        reasons.append(f"{len(consumer_failed)} consumer profile cell"
                       f"{'s' * (len(consumer_failed) != 1)} failed")
    problems = doc["environment"].get("problems", [])
    if problems:
        reasons.append(f"{len(problems)} unusable binar{'ies' if len(problems) != 1 else 'y'} or suite")
    gate = gate_findings(doc, fail_on)
    if gate:
        reasons.append(f"{len(gate)} schema change{'s' * (len(gate) != 1)} at level {fail_on} or above")
    if doc.get("running"):
        run = doc["running"]
        reasons.append(f"the run never finished: this file was written when it started (pid "
                       f"{run.get('pid')} on {doc['environment']['host']}) and was not replaced "
                       "by its results, so the run was killed or is still running")
    if doc.get("interrupted"):
        got = doc["interrupted"]
        reasons.append(f"the run was interrupted: {got['cases_recorded']} of {got['cases_expected']} "
                       "tests recorded" + (f" ({', '.join(got['runs'])})" if got.get("runs") else ""))
    missing = [f"{k}/{s['total']}" for s in doc.get("shards", []) for k in s["missing"]]
    if missing:
        reasons.append(f"shard{'s' * (len(missing) != 1)} {', '.join(missing)} of the sharded run "
                       "never reported: the cases of its part are not in this report")
    if doc.get("disagreements"):
        reasons.append(f"{len(doc['disagreements'])} results differ between runs of the same build")
    if doc.get("pair_disagreements"):
        reasons.append(f"{len(doc['pair_disagreements'])} cross-version cells differ between runs "
                       "of the same builds")
    if doc.get("consumer_disagreements"):
        reasons.append(f"{len(doc['consumer_disagreements'])} consumer cells differ between runs "
                       "of the same builds")
    t = tally(doc)
    return Verdict(not reasons, reasons, t.line(), t.total, t.unknown)


def _sharding(doc: ResultsJSON) -> list[str]:
    """A line on a shard of a sharded run, or on the shards a merge joined."""
    if "shard" in doc:
        s = doc["shard"]
        return ["", f"Shard {s['index']} of {s['total']} of a sharded run (plan {_cell(s['plan'])}): "
                "`qmpcompat report merge` of every shard's results.json gives the whole run's."]
    return ["", *(f"Shards {', '.join(map(str, s['reported']))} of {s['total']} of a sharded run "
                  f"(plan {_cell(s['plan'])}) merged" + (f"; {', '.join(map(str, s['missing']))} never "
                                                  "reported" if s["missing"] else "")
                  for s in doc.get("shards", []))] if doc.get("shards") else []


def _cell(text: object) -> str:
    """Text from the run (or a results file) as Markdown: escape.markdown, once."""
    return markdown(text if text is not None else "")


def _cells(items: list[str]) -> str:
    return ", ".join(_cell(i) for i in items)


def _crash_tables(doc: ResultsJSON) -> list[str]:
    lines: list[str] = []
    crashes = crash_rows(doc)
    if crashes:
        lines += ["", "### Crashes and hangs", "", "| vector | QEMU did | on QEMU | known defect | detail |",
                  "| --- | --- | --- | --- | --- |"]
        lines += [f"| {_cell(c['vector'])} | {_cell(c['result'])} | {_cells(c['qemu'])} | "
                  f"{_cell(c['defect']) if c['defect'] else '**none**'} | {_cell(c['detail'])} |"
                  for c in crashes]
    defects = defect_rows(doc)
    if defects:
        lines += ["", "### Known defects seen", "",
                  "| defect | summary | QEMU did | seen on | recorded for | vectors | cases |",
                  "| --- | --- | --- | --- | --- | --- | ---: |"]
        lines += [f"| {_cell(d['id'])} | {_cell(d['summary'])} | {_cell(d['observed'])} | "
                  f"{_cells(d['qemu'])} | {_cell(d['recorded_for'])} | {_cells(d['vectors'])} | "
                  f"{d['cases']} |" for d in defects]
    return lines


def _changes(doc: ResultsJSON) -> list[str]:
    """Behaviour changes between each build and the one before it: counts per
    step, and the breaking and warning ones listed."""
    steps = run_steps(doc)
    if not steps:
        return []
    lines = ["", "### Behaviour changes between builds", "",
             "Each build against the one before it (`qmpcompat report changes` gives every change)."]
    for step in steps:
        lines += ["", f"#### {_cell(step.heading())}", ""]
        shown = step.at_least("breaking")
        warnings = [c for c in step.changes if c.level == "warning"]
        if len(warnings) <= WARNINGS_LISTED:
            shown += warnings
        lines += markdown_rows(shown) if shown else ["No breaking or warning changes."]
        if len(warnings) > WARNINGS_LISTED:
            lines += ["", f"{len(warnings)} warnings (other error texts, cases gone): see index.html or "
                      f"qmpcompat report changes {_cell(step.base)} {_cell(step.new)}."]
    return lines


def _claims(doc: ResultsJSON) -> list[str]:
    """Per QEMU version: how many cases were judged on observed, schema-decided
    and inferred claims, and how many inferred claims passed."""
    claims = doc.get("claims") or {}
    if not claims:
        return []
    passed = Counter(label for r in [*doc["results"], *(doc.get("pairs") or ()),
                                     *(doc.get("consumers") or ())]
                     if r["outcome"] == "passed" and (r.get("basis") or {}).get("kind") == "inferred"
                     for label in claim_labels(r))
    lines = ["", "### What the expectations rest on", "",
             "Observed: a real binary of that version was seen doing it before (the expectation's "
             "`observed-on`; for a case that showed a known defect, the defect's; for a "
             "cross-version cell, its source->destination pair, counted for both builds); "
             "schema: the binary's own schema decides it; inferred: neither (the claim's "
             "`inferred-from` says from what). `--qmpcompat-strict` refuses a pass or a known "
             "defect on an inferred claim.", "",
             "| QEMU | observed | schema | inferred | inferred and passed |",
             "| --- | ---: | ---: | ---: | ---: |"]
    lines += [f"| {_cell(label)} | {_cell(c.get('observed', 0))} | {_cell(c.get('schema', 0))} | "
              f"{_cell(c.get('inferred', 0))} | {passed.get(label, 0)} |" for label, c in claims.items()]
    ledger = doc.get("inference_ledger") or []
    if ledger:
        lines += ["", "How far inferred claims held when a release was first run "
                  "(`vectors/inference-ledger.yaml`), for judging what is still inferred:", ""]
        lines += [f"- {markdown_item(e['release'])}: {_cell(e['held'])} of {_cell(e['inferred'])} held "
                  f"when {_cell(e['build'])} was first run"
                  + (f"; wrong: {_cells([w['case'] for w in e['wrong']])}" if e["wrong"] else "")
                  for e in ledger]
    return lines


def feature_text(binary: BinaryJSON, others: list[BinaryJSON]) -> str:
    """A build's probed features in a few words: what it has (machine types
    counted, ``pc`` and ``q35`` named), and what another build of the run has
    and it lacks."""
    if not binary.get("features_probed"):
        return "not probed"
    have = [f for f in binary.get("features") or () if not f.startswith("machine:")]
    machines = [f.removeprefix("machine:") for f in binary.get("features") or ()
                if f.startswith("machine:")]
    boards = [m for m in ("pc", "q35") if m in machines]
    text = ", ".join(have) or "none of the probed ones"
    text += f"; {len(machines)} machine types" + (f" ({', '.join(boards)})" if boards else "")
    elsewhere = sorted({f for b in others for f in b.get("features") or ()
                        if not f.startswith("machine:")} - set(have))
    return text + (f"; lacks {', '.join(elsewhere)}" if elsewhere else "")


def _features(binaries: list[BinaryJSON]) -> list[str]:
    """The build features table (probed before the run, see harness/features.py)."""
    if not binaries:
        return []
    lines = ["", "| QEMU | build features (probed) |", "| --- | --- |"]
    lines += [f"| {_cell(b.get('run_label') or b['version'])} | {_cell(feature_text(b, binaries))} |"
              for b in binaries]
    return lines


def _totals(doc: ResultsJSON) -> list[str]:
    """The outcomes per QEMU, with what each build is."""
    lines = ["| QEMU | passed | failed | known defects | skipped | package |",
             "| --- | ---: | ---: | ---: | ---: | --- |"]
    by_label = {b.get("run_label") or b["version"]: b for b in doc["environment"]["binaries"]}
    for label, t in doc["totals"].items():
        pkg = package_text(by_label[label]) if label in by_label else ""
        lines.append(f"| {_cell(label)} | {t['passed']} | {t['failed'] + t['error']} | {t['xfailed']} | "
                     f"{t['skipped']} | {_cell(pkg)} |")
    return lines


def _unexpected(doc: ResultsJSON) -> list[str]:
    """Every case that failed or could not be set up: what was expected, what happened."""
    failed = [r for r in doc["results"] if r["outcome"] in ("failed", "error")]
    if not failed:
        return []
    return ["", "### Unexpected outcomes", "", "| vector | QEMU | expected | observed |",
            "| --- | --- | --- | --- |"] + [
        f"| {_cell(r['vector'])} | {_cell(r['qemu'])} | {_cell(r.get('expected'))} | "
        f"{_cell(r.get('message'))} |" for r in failed]


def render_summary(doc: ResultsJSON, fail_on: str = "breaking") -> str:
    v = verdict(doc, fail_on)
    env = doc["environment"]
    lines = [f"## qmpcompat: {_cell(v.headline)}", ""]
    lines += [f"> **{_cell(w)}**\n" for w in env.get("warnings") or ()]
    lines += [f"- {markdown_item(r)}" for r in v.reasons] or [
        "- every vector behaved as expected on every binary"
        + (" (known defects included)" if v.crashes else "")]
    if v.crashes:
        lines.append(f"- {v.crashes}")
    lines += ["", f"{len(doc['results'])} cases, {len(env['binaries'])} QEMU binaries, vector set "
              f"{_cell(env['vector_revision'])}, qmpcompat {_cell(env['qmpcompat'])}, "
              f"{doc['seconds']:.0f}s"]
    lines += [*_sharding(doc), ""]
    lines += _totals(doc)
    lines += _features(env["binaries"])
    lines += origin_table(env["binaries"])
    lines += _claims(doc)
    lines += render_matrix(doc)
    lines += render_consumers(doc)
    lines += _unexpected(doc)
    for p in env.get("problems", []):
        lines.append(f"- unusable: {_cell(p['name'])}: {_cell((p['error'].splitlines() or [''])[0])}")
    dated = [i for i in env.get("indexes", []) if not i.get("error")]
    if dated:
        lines += ["", "Debian archive indexes: " + ", ".join(
            f"{_cell(i['suite'])} {_cell(i.get('date', '?'))}" + (
                f" (STALE: expired {_cell(i.get('valid_until', '?'))})" if i.get("stale") else "")
            for i in dated)]
    lines += _crash_tables(doc)
    skips = Counter((r.get("message") or "", r["qemu"]) for r in doc["results"] if r["outcome"] == "skipped")
    if skips:
        lines += ["", "### Skipped", "", "| reason | QEMU | cases |", "| --- | --- | ---: |"]
        lines += [f"| {_cell(m)} | {_cell(q)} | {n} |" for (m, q), n in sorted(skips.items())]
    gate = gate_findings(doc, "warning")
    if gate:
        lines += ["", "### Schema changes (warning and breaking)", "",
                  "| QEMU | compared with | level | rule | path | change |",
                  "| --- | --- | --- | --- | --- | --- |"]
        lines += [f"| {_cell(f.get('qemu'))} | {_cell(f.get('baseline'))} | {_cell(f['level'])} | "
                  f"{_cell(f.get('rule'))} | {_cell(f.get('path'))} | {_cell(f.get('change'))} |"
                  for f in gate]
    lines += runmodes.markdown_lines(doc.get("run"), _cell)
    lines += _changes(doc)
    lines += timeline_markdown(doc.get("schema_timeline"))
    lines += _disagreements("Runs that disagree", ("vector", "qemu"), doc.get("disagreements"))
    lines += _disagreements("Cross-version cells runs disagree about",
                            ("vector", "form", "source", "destination"), doc.get("pair_disagreements"))
    lines += _disagreements("Consumer cells runs disagree about", ("profile", "source", "destination"),
                            doc.get("consumer_disagreements"))
    return "\n".join(lines) + "\n"


def _disagreements(title: str, keys: tuple[str, ...], found: Sequence[Mapping[str, Any]] | None
                   ) -> list[str]:
    """A merged document's cases or cells that two runs of the same builds observed
    otherwise: what names each, and every run's outcome and file."""
    if not found:
        return []
    head = " | ".join(k.replace("qemu", "QEMU") for k in keys)
    return ["", f"### {title}", "", f"| {head} | outcomes |", "|" + " --- |" * (len(keys) + 1),
            *(f"| {' | '.join(_cell(d[k]) for k in keys)} | "
              + ", ".join(f"{_cell(r['outcome'])} ({_cell(r['file'])})" for r in d["runs"]) + " |"
              for d in found)]
