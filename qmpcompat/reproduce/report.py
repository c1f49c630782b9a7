"""A known defect as a report ready for qemu-devel or the Debian bug tracker:
summary, affected and unaffected versions and packages, the steps (each QEMU
command line and the QMP exchange), expected against actual, QEMU's last
words, and the standalone script that does it all (``script``).

``run`` plays the script on provisioned builds (the first affected one, and the
first unaffected one where there is one), so a report can carry what QEMU
printed on this machine, not only what the evidence recorded.
"""

from __future__ import annotations

import json
import shlex
import subprocess
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path

from qmpcompat.provision import QemuBuild
from qmpcompat.reproduce.plan import Plan, Seen, crash_signal
from qmpcompat.reproduce.script import render_script
from qmpcompat.types import JSONObject, Version
from qmpcompat.vectors.match import describe

TARGETS = ("qemu-devel", "debian")
RUN_TIMEOUT = 300.0
EXIT_WORDS = {0: "did what QEMU documents", 1: "shows the defect", 2: "did something else"}


@dataclass(frozen=True)
class Run:
    """The script played on one build (or pair): its exit status and output."""

    label: str
    status: int
    output: str


def script_name(plan: Plan) -> str:
    return f"repro-{plan.defect.id}.py"


def _qemu_command(build: QemuBuild) -> str:
    return shlex.join(build.command())


def run(plan: Plan, source: QemuBuild, destination: QemuBuild | None = None) -> Run:
    """Play ``plan``'s script on ``source`` (and ``destination``, for a pair)."""
    env = source.environ()
    args = ["--qemu", _qemu_command(source)]
    if destination is not None:
        env.update(destination.env)
        args += ["--dst-qemu", _qemu_command(destination)]
    label = source.label + (f"->{destination.label}" if destination else "")
    with tempfile.TemporaryDirectory(prefix="qmpv-") as tmp:
        path = Path(tmp) / script_name(plan)
        path.write_text(render_script(plan))
        try:
            done = subprocess.run([sys.executable, str(path), *args], capture_output=True,
                                  text=True, env=env, timeout=RUN_TIMEOUT, check=False)
        except subprocess.TimeoutExpired as exc:
            out = exc.stdout if isinstance(exc.stdout, str) else ""
            return Run(label, 2, f"{out}\n(the script did not end within {RUN_TIMEOUT:g}s)")
    return Run(label, done.returncode, done.stdout + done.stderr)


def _step_text(event: JSONObject, roles: dict[str, str]) -> str:
    side = roles.get(str(event["side"]), str(event["side"]))
    if event["do"] == "start":
        argv = [str(a).replace("{tmpdir}", "DIR") for a in event["argv"]]  # type: ignore[union-attr]
        return (f"Start the {side} QEMU, once something listens on DIR/{event['side']}.qmp "
                f"(QEMU connects to it, then send qmp_capabilities):\n"
                f"       qemu-system-x86_64 {shlex.join(argv)}")
    if event["do"] == "command":
        message = json.dumps({"execute": event["execute"], "arguments": event["arguments"]})
        return f"{side} -> {message.replace('{tmpdir}', 'DIR')}"
    if event["do"] == "settle":
        stop = ", then stop it (-> {\"execute\": \"stop\"})" if event["stop"] else ""
        return f"Give the {side}'s guest {event['seconds']:g} s to start{stop}"
    cancel = (f"; if it has not ended after {event['cancel-after']:g} s, "
              f"-> {{\"execute\": \"migrate_cancel\"}} and wait as long again"
              if event.get("cancel-after") else "")
    return f"Poll query-migrate on the {side} until the migration ends{cancel}"


def steps(plan: Plan) -> list[str]:
    """The reproducer's events, one numbered line each, DIR for its directory."""
    roles = {str(e["side"]): str(e["role"]) for e in plan.events if e["do"] == "start"}
    return [f"  {i}. {_step_text(e, roles)}" for i, e in enumerate(plan.events, 1)]


def _seen_lines(seen: list[Seen]) -> list[str]:
    return [f"  QEMU {s.label} ({s.packages})" + (f": {s.did}" if s.did else "") for s in seen]


def _header(plan: Plan, target: str) -> list[str]:
    defect = plan.defect
    first = plan.affected[0] if plan.affected else None
    if target == "debian" and first is not None:
        version = first.packages.split(" -> ")[0].removeprefix("Debian ")
        return ["Package: qemu-system-x86", f"Version: {version}", "",
                f"{defect.summary} ({defect.id})"]
    return [f"Subject: [BUG] migration: {defect.summary}"]


def report(plan: Plan, target: str = "qemu-devel", runs: list[Run] | None = None) -> str:
    """The report of ``plan`` for ``target`` (``TARGETS``), with ``runs`` if any."""
    defect, vec = plan.defect, plan.vector
    made_for = plan.source.label + (f" -> QEMU {plan.destination.label}"
                                    if plan.destination else "")
    expected = describe(plan.expected) if plan.expected else "accept"
    out = [*_header(plan, target), "",
           f"{defect.summary}. Found with qmpcompat, a conformance suite for QEMU's migration QMP "
           "interface run on Debian's QEMU builds.", "",
           "Affected (builds run here):", *_seen_lines(plan.affected),
           f"  range recorded: {defect.versions}"
           + (f", destinations {defect.destination}" if defect.destination else ""),
           "Not affected (builds run here):",
           *(_seen_lines(plan.unaffected) or ["  none seen doing what QEMU documents"]), "",
           f"Steps to reproduce (command lines as for QEMU {made_for}; DIR is an empty "
           "directory; on a distribution's QEMU, firmware is found without -L):", *steps(plan),
           f"  Or run the script below: python3 {script_name(plan)} --qemu qemu-system-x86_64"
           + (" --dst-qemu DESTINATION-QEMU" if plan.destination else ""),
           "  (exit 1: the defect shows; 0: QEMU did what it documents)", "",
           f"Expected (what QEMU documents): {expected}",
           f"Actual: {describe(defect.observed)}"
           + (f" (killed by signal {signal})" if (signal := crash_signal(defect)) else "")
           + (f", error /{defect.observed.migration_error}/"
              if defect.observed.migration_error else ""), "",
           "What was seen (QEMU's last words as recorded):", f"  {defect.evidence}"]
    if defect.inferred_from:
        out += ["", f"Beyond the builds run here: {defect.inferred_from}"]
    for r in runs or []:
        out += ["", f"Run here on QEMU {r.label}: exit {r.status}, "
                f"{EXIT_WORDS.get(r.status, 'could not run')}:",
                *(f"  {line}" for line in r.output.strip().splitlines())]
    out += ["", f"Found by qmpcompat: vector {vec.id} ({vec.where}), known defect {defect.id} "
            f"({defect.file}:{defect.line}).", "", f"--- {script_name(plan)} ---",
            render_script(plan)]
    return "\n".join(out)


def pick(builds: list[QemuBuild], seen: list[Seen]) -> tuple[QemuBuild, QemuBuild | None] | None:
    """The first of ``seen`` (a version, or a pair) that ``builds`` has."""
    by_version = {b.version: b for b in builds}
    for s in seen:
        found = [by_version.get(Version.parse(v)) for v in s.label.split("->")]
        if all(found):
            return found[0], found[1] if len(found) > 1 else None  # type: ignore[return-value]
    return None
