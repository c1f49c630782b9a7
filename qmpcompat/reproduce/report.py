"""A known defect as a report ready for qemu-devel or the Debian bug tracker:
summary, affected and unaffected versions and packages, the steps (each QEMU
command line and the QMP exchange), expected against actual, QEMU's last
words, and the standalone script that does it all (``script``).

A consumer profile's defect also says whose bug it is (``Plan.owner``) and
where its QMP exchange comes from (``Plan.exchange``: the recording of the
real consumer, its date, what was left out and why). When the bug is the
consumer's, the Debian form is addressed to the consumer's Debian source
package, and the qemu-devel form is marked for information.

``run`` plays the script on provisioned builds (the first affected one, and the
first unaffected one where there is one), so a report can carry what QEMU
printed on this machine, not only what the evidence recorded.
"""

from __future__ import annotations

import json
import os
import shlex
import signal
import subprocess
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path

from qmpcompat.provision import QemuBuild
from qmpcompat.reproduce.model import Plan, Seen, crash_signal
from qmpcompat.reproduce.script import render_script
from qmpcompat.types import JSONObject, Version
from qmpcompat.vectors.match import describe

TARGETS = ("qemu-devel", "debian")
RUN_TIMEOUT = 300.0
EXIT_WORDS = {1: "shows the defect", 2: "did something else"}


@dataclass(frozen=True)
class Run:
    """The script played on one build (or pair): its exit status and output."""

    label: str
    status: int
    output: str


def script_name(plan: Plan) -> str:
    return f"repro-{plan.defect.id}.py"


def _qemu_command(build: QemuBuild) -> str:
    """The shell-quoted command that runs ``build`` as it runs here: its own
    environment (its module dir) goes with it, so the two sides of a pair each
    start with theirs."""
    env = [f"{k}={v}" for k, v in build.env.items()]
    return shlex.join([*(["env", *env] if env else []), *build.command()])


def script_args(source: QemuBuild, destination: QemuBuild | None = None) -> list[str]:
    """The reproducer's arguments that name ``source`` (and ``destination``)."""
    args = ["--qemu", _qemu_command(source)]
    if destination is not None:
        args += ["--dst-qemu", _qemu_command(destination)]
    return args


def run(plan: Plan, source: QemuBuild, destination: QemuBuild | None = None) -> Run:
    """Play ``plan``'s script on ``source`` (and ``destination``, for a pair). A
    script still running after RUN_TIMEOUT is killed with the QEMUs it started."""
    label = source.label + (f"->{destination.label}" if destination else "")
    with tempfile.TemporaryDirectory(prefix="qmpv-") as tmp:
        path = Path(tmp) / script_name(plan)
        path.write_text(render_script(plan))
        with subprocess.Popen([sys.executable, str(path), *script_args(source, destination)],
                              stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                              start_new_session=True) as proc:
            try:
                out, _ = proc.communicate(timeout=RUN_TIMEOUT)
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)  # the script and its QEMUs
                out, _ = proc.communicate()
                return Run(label, 2, f"{out}\n(the script did not end within {RUN_TIMEOUT:g}s)")
    return Run(label, proc.returncode, out)


def _shown(value: object) -> str:
    """JSON as the steps show it: the case dir DIR, the migration port PORT."""
    return json.dumps(value).replace("{tmpdir}", "DIR").replace("{port}", "PORT")


def _step_text(event: JSONObject, roles: dict[str, str]) -> str:
    side = roles.get(str(event["side"]), str(event["side"]))
    step = f"[{event['step']}] " if event.get("step") else ""
    if event["do"] == "start":
        argv = [str(a).replace("{tmpdir}", "DIR") for a in event["argv"]]  # type: ignore[union-attr]
        return (f"Start the {side} QEMU, once something listens on DIR/{event['side']}.qmp "
                f"(QEMU connects to it, then send qmp_capabilities):\n"
                f"       qemu-system-x86_64 {shlex.join(argv)}")
    if event["do"] == "command":
        message = _shown({"execute": event["execute"], **({"arguments": event["arguments"]}
                                                          if event["arguments"] else {})})
        return f"{step}{side} -> {message}"
    if event["do"] == "getfd":
        address = _shown(event["connect"]).strip('"')
        return (f"{step}{side} -> {_shown({'execute': 'getfd', 'arguments': {'fdname': event['fdname']}})}"
                f", with a socket connected to {address} in the same message (SCM_RIGHTS)")
    if event["do"] == "settle":
        stop = ", then stop it (-> {\"execute\": \"stop\"})" if event["stop"] else ""
        return f"Give the {side}'s guest {event['seconds']:g} s to start{stop}"
    cancel = (f"; if it has not ended after {event['cancel-after']:g} s, "
              f"-> {{\"execute\": \"migrate_cancel\"}} and wait as long again"
              if event.get("cancel-after") else "")
    if event.get("until"):
        statuses = ", ".join(str(u) for u in event["until"])  # type: ignore[union-attr]
        by = " (the consumer waits for the MIGRATION event)" if event.get("by") == "events" else ""
        return f"{step}Poll query-migrate on the {side} until its status is {statuses}{by}"
    return f"Poll query-migrate on the {side} until the migration ends or waits{cancel}"


def steps(plan: Plan) -> list[str]:
    """The reproducer's events, one numbered line each, DIR for its directory."""
    roles = {str(e["side"]): str(e["role"]) for e in plan.events if e["do"] == "start"}
    return [f"  {i}. {_step_text(e, roles)}" for i, e in enumerate(plan.events, 1)]


def _seen_lines(seen: list[Seen]) -> list[str]:
    return [f"  QEMU {s.label} ({s.packages})" + (f": {s.did}" if s.did else "") for s in seen]


def _header(plan: Plan, target: str) -> list[str]:
    defect, ex = plan.defect, plan.exchange
    first = plan.affected[0] if plan.affected else None
    title = f"{defect.summary} ({defect.id})"
    if target == "debian" and plan.owner.consumer and ex is not None:
        return [f"Source: {ex.package}", f"Version: {ex.version}", "", title]
    if target == "debian" and first is not None:
        version = first.packages.split(" -> ")[0].removeprefix("Debian ")
        return ["Package: qemu-system-x86", f"Version: {version}", "", title]
    return [f"Subject: [{'FYI' if plan.owner.consumer else 'BUG'}] migration: {defect.summary}"]


def _whose(plan: Plan) -> list[str]:
    """Whose bug, and where to send it (a consumer profile's defect)."""
    owner, ex = plan.owner, plan.exchange
    if ex is None:
        return []
    out = [f"Whose bug: {owner.project}'s: {owner.why}."]
    if owner.consumer:
        out += [f"Where to send it: the Debian bug tracker, against {ex.package} "
                f"{ex.version} ({ex.suite}; --to debian); {owner.project.split()[0]} upstream "
                "only if its current release still does it (the evidence below says); "
                "qemu-devel for information only."]
    return [*out, ""]


def _exchange_lines(plan: Plan) -> list[str]:
    """Where a consumer defect's QMP exchange comes from, and what it leaves out."""
    ex = plan.exchange
    if ex is None:
        return []
    sides = f"QEMU {plan.source.label}" + (f" and {plan.destination.label}"
                                           if plan.destination else "")
    out = [f"  The QMP exchange is what {ex.consumer} (Debian {ex.suite}) sent when it "
           f"migrated the test guest, recorded on {ex.recorded} ({ex.file}; {ex.command}): "
           "each step of the consumer profile resolved against that recording, which it "
           "matches exactly, up to the step QEMU refused; the port and DIR are the script's. "
           f"Each side's steps are what {sides} were sent (a capability list follows each "
           "QEMU's answers): run the script with those versions."]
    if ex.passed_over:
        out.append("  Left out: the consumer's commands before it that no step of the profile "
                   f"has ({', '.join(ex.passed_over)}); the profile's own runs, which leave "
                   "them out, see the same refusal.")
    if ex.after:
        out.append(f"  Left out after the refusal: its clean-up ({', '.join(ex.after)}).")
    if ex.fds:
        out.append(f"  The fd ({', '.join(ex.fds)}) is passed as the consumer passes it: "
                   "a build that takes the consumer's migrate needs it to migrate.")
    if ex.then:
        out.append("  On a build that takes it, the steps after it are what the consumer sent "
                   f"next where QEMU took it ({ex.then}).")
    return out


def _actual(plan: Plan) -> list[str]:
    defect = plan.defect
    out = [f"Actual: {describe(defect.observed)}"
           + (f" (killed by signal {signal})" if (signal := crash_signal(defect)) else "")
           + (f", error /{defect.observed.migration_error}/"
              if defect.observed.migration_error else "")]
    if plan.exchange is not None and plan.exchange.said:
        out.append(f"{plan.exchange.consumer} said: {plan.exchange.said}")
    return out


def report(plan: Plan, target: str = "qemu-devel", runs: list[Run] | None = None) -> str:
    """The report of ``plan`` for ``target`` (``TARGETS``), with ``runs`` if any."""
    defect = plan.defect
    made_for = plan.source.label + (f" -> QEMU {plan.destination.label}"
                                    if plan.destination else "")
    expected = describe(plan.expected) if plan.expected else "accept"
    out = [*_header(plan, target), "",
           f"{defect.summary}. Found with qmpcompat, a conformance suite for QEMU's migration QMP "
           "interface run on Debian's QEMU builds.", "", *_whose(plan),
           "Affected (builds run here):", *_seen_lines(plan.affected),
           f"  range recorded: {defect.versions}"
           + (f", destinations {defect.destination}" if defect.destination else ""),
           "Not affected (builds run here):",
           *(_seen_lines(plan.unaffected) or ["  none seen doing what QEMU documents"]), "",
           f"Steps to reproduce (command lines as for QEMU {made_for}; DIR is an empty "
           "directory; on a distribution's QEMU, firmware is found without -L):",
           *_exchange_lines(plan), *steps(plan),
           f"  Or run the script below: python3 {script_name(plan)} --qemu qemu-system-x86_64"
           + (" --dst-qemu DESTINATION-QEMU" if plan.destination else ""),
           f"  (exit 1: the defect shows; 0: the build {plan.fine})", "",
           f"Expected ({plan.expected_label}): {expected}", *_actual(plan), "",
           "What was seen (QEMU's last words as recorded):", f"  {defect.evidence}"]
    if defect.inferred_from:
        out += ["", f"Beyond the builds run here: {defect.inferred_from}"]
    for r in runs or []:
        out += ["", f"Run here on QEMU {r.label}: exit {r.status}, "
                f"{plan.fine if r.status == 0 else EXIT_WORDS.get(r.status, 'could not run')}:",
                *(f"  {line}" for line in r.output.strip().splitlines())]
    out += ["", f"Found by qmpcompat: {plan.found_by}, known defect {defect.id} "
            f"({defect.file}:{defect.line}).", "", f"--- {script_name(plan)} ---",
            render_script(plan)]
    return "\n".join(out)


def pick(builds: list[QemuBuild], seen: list[Seen]) -> tuple[QemuBuild, QemuBuild | None] | None:
    """The first of ``seen`` (a version, or a pair) that ``builds`` has."""
    by_version = {b.version: b for b in builds if b.target == "x86_64"}  # the script's QEMU
    for s in seen:
        found = [by_version.get(Version.parse(v)) for v in s.label.split("->")]
        if all(found):
            return found[0], found[1] if len(found) > 1 else None  # type: ignore[return-value]
    return None
