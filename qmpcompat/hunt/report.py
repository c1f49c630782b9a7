"""A ready-to-file Markdown bug report for one hunt finding.

What a QEMU developer asks for first: which versions and packages have it
(first and last affected of the builds the run tried, and each build's answer),
the command line, the whole QMP transcript with QEMU's answers, QEMU's stderr,
and a backtrace when gdb was on the host.
"""

from __future__ import annotations

import json
import shlex
from collections.abc import Sequence
from typing import Any

from qmpcompat.hunt.cases import Finding, command_shape
from qmpcompat.hunt.findings import Answer, summary_of
from qmpcompat.provision import QemuBuild


def affected(answers: Sequence[Answer], finding: Finding) -> list[Answer]:
    """The builds that fail with the finding's signature, in version order."""
    return sorted((a for a in answers if a.same_bug(finding)), key=lambda a: a.version)


def _transcript(finding: Finding, replies: list[dict[str, Any]] | None) -> str:
    lines = ['{"execute": "qmp_capabilities"}', '{"return": {}}']
    for i, step in enumerate(finding.steps):
        lines.append(json.dumps({"execute": step["execute"], "arguments": step["arguments"]}))
        if replies and i < len(replies):
            reply = replies[i]
            lines.append(json.dumps({k: v for k, v in reply.items() if k != "execute"}))
        else:
            lines.append("(no reply: QEMU " + ("died" if finding.observed.get("result") == "crash"
                                               else "stopped answering") + ")")
            break
    return "\n".join(lines)


def bug_report(finding: Finding, answers: Sequence[Answer], builds: Sequence[QemuBuild],
               backtrace: str | None) -> str:
    """The report's Markdown text."""
    hit = affected(answers, finding)
    by_label = {b.label: b for b in builds}
    build = by_label.get(finding.qemu)
    incoming = finding.command == "migrate-incoming"
    argv = ["qemu-system-x86_64", "-M", "none", "-nodefaults", "-display", "none",
            "-qmp", "unix:/tmp/qmp.sock,server=on,wait=off"] + (["-incoming", "defer"]
                                                               if incoming else [])
    first, last = (hit[0].qemu_version, hit[-1].qemu_version) if hit else ("-", "-")
    out = [f"# {summary_of(finding)} on `{finding.command}`: {command_shape(finding.steps)}", "",
           f"Signature: `{finding.signature}`", "",
           f"**Affected** (of the builds tried): first {first}, last {last}.", "",
           "| QEMU | package | result |", "| --- | --- | --- |"]
    for a in sorted(answers, key=lambda a: a.version):
        pkg = by_label[a.qemu].package if a.qemu in by_label else ""
        mark = "**affected**" if a.same_bug(finding) else "not affected"
        what = str(a.observed.get("detail") or a.observed.get("desc") or a.observed.get("result"))
        out.append(f"| {a.qemu_version} | {pkg or '-'} | {mark}: "
                   f"{what.splitlines()[0][:120].replace('|', '/')} |")
    out += ["", "## How to reproduce", "",
            f"Found on QEMU {finding.qemu_version}"
            + (f" ({build.package})" if build and build.package else "")
            + f" by `qmpcompat hunt --seed {finding.seed}` (worker {finding.worker}, "
            f"batch {finding.batch}); the transcript below is the smallest the hunt found "
            "that still fails the same way, and it fails alone on a fresh QEMU.", "",
            "```sh", shlex.join(argv), "```", "",
            f"(`qemu-system-x86_64` here: `{finding.binary}`"
            + (", run through the build's own loader as qmpcompat does)" if build and
               build.command()[0] != finding.binary else ")"), "",
            "Then, on the QMP socket (`{tmpdir}` is any empty directory, `{port}` a free "
            "loopback port):", "", "```json",
            _transcript(finding, finding.reproduced.get("replies") or finding.observed.get(
                "replies")), "```", "",
            "Or with qmpcompat: save the transcript's steps as a JSON list (the `steps` of "
            "the finding's `.json`) and run `qmpcompat hunt --replay FILE --only "
            f"{finding.qemu}` (or `--qemu BINARY` for a build of your own).", "",
            "## What QEMU did", "", "```",
            str(finding.reproduced.get("detail") or finding.observed.get("detail", "")).strip(),
            "```", ""]
    if backtrace:
        out += ["## Backtrace (gdb, attached to the crashing QEMU)", "", "```", backtrace,
                "```", ""]
    else:
        out += ["No backtrace: gdb is not on this host, or QEMU did not take a signal.", ""]
    return "\n".join(out)
