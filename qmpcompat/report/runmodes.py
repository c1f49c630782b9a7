"""How a run's cases were run, for every report: on which kind of QEMU (fresh,
forked, reused: ``observed.qemu`` of each record), which waiting cases ran
ahead of their turn (``observed.ahead``), which failures on a reused
QEMU were run again on a fresh one (``observed.rerun``), and the cases whose
reused and fresh QEMUs did otherwise (unsteady: their outcome depended on what
ran before them; ``--qmpcompat-strict`` fails them).

``run_facts`` makes results.json's ``run`` member from the records, the run's
settings and the persistent runners' counts (one per xdist worker);
``unsteady_rows`` and ``markdown_lines`` feed summary.md and index.html;
``junit_properties`` the JUnit XML of both a live run and a rendered one.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Sequence

from qmpcompat.resultdoc import CaseJSON, ConsumerJSON, PairJSON, RunModesJSON, UnsteadyJSON
from qmpcompat.types import JSONObject, RunMode, json_object

Record = CaseJSON | PairJSON | ConsumerJSON  # a case, a matrix cell or a consumer cell


def _mode(rec: Record) -> str | None:
    obs = rec.get("observed") or {}
    mode = obs.get("qemu")
    return str(mode) if mode is not None else None


def unsteady_rows(records: Sequence[Record]) -> list[UnsteadyJSON]:
    """The cases whose reused QEMU and the fresh QEMU they were run again on did
    otherwise: what each did."""
    rows: list[UnsteadyJSON] = []
    for rec in records:
        obs = rec.get("observed") or {}
        first = obs.get("rerun")
        if not isinstance(first, dict) or first.get("result") == obs.get("result"):
            continue
        case = rec["profile"] if "profile" in rec else rec["vector"]
        rows.append({"vector": case, "qemu": str(rec.get("qemu") or rec.get("source")),
                     "reused": str(first.get("result")), "reused_detail": str(first.get("detail", "")),
                     "fresh": str(obs.get("result")), "outcome": rec["outcome"]})
    return rows


def run_facts(records: Sequence[Record], persistent: bool, fork_server: bool,
              counts: Sequence[JSONObject]) -> RunModesJSON:
    """results.json's ``run``: the mode asked for, how many cases ran on each kind
    of QEMU, how many were run again on a fresh one, and, per build, why its
    persistent QEMUs were exec'd when the fork server was asked for."""
    modes = Counter(m for rec in records if (m := _mode(rec)) is not None)
    reasons: dict[str, str] = {}
    for count in counts:
        for label, why in json_object(count.get("exec_reasons") or {}).items():
            reasons.setdefault(label, str(why))
    facts: RunModesJSON = {
        "persistent": persistent, "fork_server": fork_server,
        "qemus": {m.value: modes.get(m.value, 0) for m in RunMode},
        "rerun": sum(bool((rec.get("observed") or {}).get("rerun")) for rec in records),
        "unsteady": unsteady_rows(records),
        "ahead": sum((rec.get("observed") or {}).get("ahead") is True for rec in records),
    }
    if fork_server and persistent:
        facts["fork_unavailable"] = reasons
    return facts


def describe(run: RunModesJSON) -> str:
    """One line: how the run's cases were run."""
    q = run["qemus"]
    ahead = run.get("ahead", 0)
    mode = "persistent mode" if run["persistent"] else "a fresh QEMU per case (--qmpcompat-fresh)"
    fork = (", fork server on" if run["fork_server"] else ", fork server off") if run["persistent"] else ""
    return (f"QEMUs: {q.get('fresh', 0)} cases on a fresh one, {q.get('forked', 0)} on a forked one, "
            f"{q.get('reused', 0)} on a reused one ({mode}{fork}); {run['rerun']} run again on a "
            f"fresh QEMU, {len(run['unsteady'])} of them did otherwise there"
            + (f"; {ahead} waiting cases ran ahead of their turn, beside the others" if ahead else ""))


def markdown_lines(run: RunModesJSON | None, cell: Callable[[object], str]) -> list[str]:
    """summary.md's section on how the cases ran (``cell`` escapes a table cell)."""
    if not run:
        return []
    lines = ["", "### How the cases ran", "", describe(run) + "."]
    fork = run.get("fork_unavailable") or {}
    if fork:
        lines += ["", "| QEMU | persistent QEMUs exec'd, not forked, because |", "| --- | --- |"]
        lines += [f"| {cell(label)} | {cell(why)} |" for label, why in sorted(fork.items())]
    if run["unsteady"]:
        lines += ["", "Cases whose reused and fresh QEMUs did otherwise (their outcome depended on "
                  "what ran before them; `--qmpcompat-strict` fails them):", "",
                  "| case | QEMU | reused QEMU did | fresh QEMU did | outcome |",
                  "| --- | --- | --- | --- | --- |"]
        lines += [f"| {cell(r['vector'])} | {cell(r['qemu'])} | {cell(r['reused'])}: "
                  f"{cell(r['reused_detail'])} | {cell(r['fresh'])} | {cell(r['outcome'])} |"
                  for r in run["unsteady"]]
    return lines


def junit_properties(observed: JSONObject | None) -> list[tuple[str, str]]:
    """A case's run-mode properties for the JUnit XML: the kind of QEMU it ran on,
    and what a reused QEMU did first when it was run again on a fresh one."""
    if not observed:
        return []
    props = [("qemu_run", str(observed.get("qemu", RunMode.FRESH.value)))]
    if observed.get("ahead") is True:
        props.append(("ahead", "run ahead of its turn, beside other cases"))
    first = observed.get("rerun")
    if isinstance(first, dict):
        props.append(("rerun", f"reused QEMU: {first.get('result')}; fresh QEMU: "
                               f"{observed.get('result')}"))
    return props
