"""A ready-to-file Markdown bug report for one hunt finding.

What a QEMU developer asks for first: which versions and packages have it
(first and last affected of the builds the run tried, and each build's answer),
the command line, the whole QMP transcript with QEMU's answers (each build's
line says how it answered every step, not only the last), QEMU's stderr, and a
backtrace when gdb was on the host, with what it takes to give QEMU's own
frames names when the build is stripped.
"""

from __future__ import annotations

import json
import shlex
from collections.abc import Sequence

from qmpcompat import escape
from qmpcompat.hunt.backtrace import NO_SYMBOLS, Trace
from qmpcompat.hunt.cases import Finding, command_shape
from qmpcompat.hunt.findings import Answer, summary_of
from qmpcompat.provision import QemuBuild
from qmpcompat.types import JSON, JSONObject, json_list, json_object
from qmpcompat.vectors.transcript import Step, main_step


def affected(answers: Sequence[Answer], finding: Finding) -> list[Answer]:
    """The builds that fail with the finding's signature, in version order."""
    return sorted((a for a in answers if a.same_bug(finding)), key=lambda a: a.version)


def whole_answer(steps: Sequence[Step], observed: JSONObject) -> str:
    """What a build did with the whole transcript, in one line of Markdown (QEMU's
    words escaped): each step before the last one it answered, accepted or
    rejected with QEMU's words, then how the transcript ended ('accept' after a
    rejected step says so)."""
    replies = json_list(observed.get("replies") or [])
    parts = []
    if len(steps) > 1:
        for step, reply in zip(steps, replies, strict=False):
            if step is main_step(steps):
                continue
            error = json_object(reply).get("error")
            parts.append(escape.code_span(step["execute"]) + " " + (
                f"rejected ({escape.markdown(json_object(error).get('desc'))})" if error else "accepted"))
    obs = observed
    what = (str(obs.get("detail")).splitlines()[0] if obs.get("detail")
            else Answer("", "0", obs).observation.summary())
    what = escape.markdown(what[:400])
    main = f"{escape.code_span(main_step(steps)['execute'])} {what}" if len(steps) > 1 else what
    return "; ".join([*parts, main])


def _transcript(finding: Finding, replies: list[JSON]) -> str:
    lines = ['{"execute": "qmp_capabilities"}', '{"return": {}}']
    for i, step in enumerate(finding.steps):
        lines.append(json.dumps({"execute": step["execute"], "arguments": step["arguments"]}))
        if i < len(replies):
            reply = json_object(replies[i])
            lines.append(json.dumps({k: v for k, v in reply.items() if k != "execute"}))
        else:
            lines.append("(no reply: QEMU " + ("died" if finding.observed.get("result") == "crash"
                                               else "stopped answering") + ")")
            break
    return "\n".join(lines)


def bug_report(finding: Finding, answers: Sequence[Answer], builds: Sequence[QemuBuild],
               trace: Trace | None) -> str:
    """The report's Markdown text."""
    hit = affected(answers, finding)
    by_label = {b.label: b for b in builds}
    build = by_label.get(finding.qemu)
    incoming = finding.command == "migrate-incoming"
    argv = ["qemu-system-x86_64", "-M", "none", "-nodefaults", "-display", "none",
            "-qmp", "unix:/tmp/qmp.sock,server=on,wait=off"] + (["-incoming", "defer"]
                                                               if incoming else [])
    first, last = (hit[0].qemu_version, hit[-1].qemu_version) if hit else ("-", "-")
    md = escape.markdown
    code = escape.code_span
    out = [f"# {md(summary_of(finding))} on {code(finding.command)}: {md(command_shape(finding.steps))}",
           "", f"Signature: {code(finding.signature)}", "",
           f"**Affected** (of the builds tried): first {md(first)}, last {md(last)}.", "",
           "| QEMU | package | result |", "| --- | --- | --- |"]
    for a in sorted(answers, key=lambda a: a.version):
        pkg = by_label[a.qemu].package if a.qemu in by_label else ""
        mark = "**affected**" if a.same_bug(finding) else "not affected"
        what = whole_answer(finding.steps, a.observed)
        out.append(f"| {md(a.qemu_version)} | {md(pkg or '-')} | {mark}: {what} |")
    out += ["", "## How to reproduce", "",
            f"Found on QEMU {md(finding.qemu_version)}"
            + (f" ({md(build.package)})" if build and build.package else "")
            + f" by `qmpcompat hunt --seed {finding.seed}` (worker {finding.worker}, "
            + ("systematic pass" if finding.batch < 0 else f"batch {finding.batch}")
            + f", after {finding.found_after_cases} cases); the transcript below is the "
            "smallest the hunt found that still fails the same way, and it fails alone on a fresh QEMU.", "",
            "```sh", shlex.join(argv), "```", "",
            f"(`qemu-system-x86_64` here: {code(finding.binary)}"
            + (", run through the build's own loader as qmpcompat does)" if build and
               build.command()[0] != finding.binary else ")"), "",
            "Then, on the QMP socket (`{tmpdir}` is any empty directory, `{port}` a free "
            "loopback port):", "", *escape.code_block(
                _transcript(finding, json_list(finding.reproduced.get("replies")
                                               or finding.observed.get("replies") or [])), "json"), "",
            "Or with qmpcompat: save the transcript's steps as a JSON list (the `steps` of "
            "the finding's `.json`) and run `qmpcompat hunt --replay FILE --only "
            f"{escape.visible(finding.qemu).replace('`', '')}` (or `--qemu BINARY` for a build of your own).",
            "", "## What QEMU did", "",
            *escape.code_block(str(finding.reproduced.get("detail")
                                   or finding.observed.get("detail", "")).strip()), ""]
    if trace is not None:
        out += [f"## Backtrace (gdb, attached to the crashing QEMU {md(trace.build.label)})", "",
                *escape.code_block(trace.text), ""]
    if trace is None or not trace.symbols:
        out += [NO_SYMBOLS if trace is not None else
                "No backtrace: gdb is not on this host, or QEMU did not take a signal.", ""]
    return "\n".join(out)
