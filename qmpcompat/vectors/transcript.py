"""Playing a transcript: several QMP commands in a row on one QEMU.

A transcript is a list of steps ``{"execute": NAME, "arguments": {...}}``: for
instance ``migrate-set-parameters``, then ``migrate``, then ``migrate_cancel``.
Every step runs whatever the one before answered (a rejected step is part of
the story, not a set-up failure). The observation is that of the transcript's
main step (its first ``migrate`` or ``migrate-incoming``): accepted or rejected
with which error, and for an accepted ``migrate`` how the migration ended, which
is waited for once every step has run (a migration that waits for the client by
design, in ``pre-switchover``, ``postcopy-paused`` or ``colo``, has ended as far as the
transcript goes: that is its status, not a hang); QEMU dying or hanging at any
step is a crash or hang of the whole transcript. ``replies`` keeps every step's answer.
A ``quit`` that QEMU accepts ends the transcript: QEMU exits as asked (status 0
within the timeout, else a crash or hang of ``quit``), the steps after it are
not sent, and a transcript that quits before its main step ran is an ``error``
saying so (``qmpcompat hunt --replay`` refuses one as input).
"""

from __future__ import annotations

import shutil
import time
from collections.abc import Sequence
from pathlib import Path
from typing import TypedDict, TypeGuard

from qmpcompat.errors import QemuDied, QemuError, QemuHung, UnsafeInput
from qmpcompat.harness import Qemu, QemuOptions
from qmpcompat.harness.process import private_dir
from qmpcompat.provision import QemuBuild
from qmpcompat.safety import Policy, command_problems, fill
from qmpcompat.types import JSONObject
from qmpcompat.vectors.limits import MAX_STEPS, over_limits
from qmpcompat.vectors.model import COMMANDS
from qmpcompat.vectors.run import (
    MIGRATION_TIMEOUT,
    Observation,
    free_port,
    migration_state,
    observe,
)


class Step(TypedDict):
    """One step of a transcript: a QMP command and its arguments."""

    execute: str
    arguments: JSONObject


def well_formed(steps: object) -> TypeGuard[list[Step]]:
    """Whether ``steps`` is a transcript: a non-empty list of steps, each a command
    name and an argument object, with one main command (migrate or migrate-incoming)."""
    return (isinstance(steps, list) and bool(steps)
            and all(isinstance(s, dict) and set(s) == {"execute", "arguments"}
                    and isinstance(s["execute"], str) and isinstance(s["arguments"], dict)
                    for s in steps)
            and any(s["execute"] in COMMANDS for s in steps))


def steps_problems(steps: object, policy: Policy) -> list[str]:
    """Every reason the safety gate refuses a transcript (each step's command and
    arguments, as ``command_problems`` says), or that it is not one; empty when
    every step may be sent."""
    if not isinstance(steps, list):
        return ["steps: not a list of steps"]
    if len(steps) > MAX_STEPS:
        return [f"steps: {len(steps)} steps (at most {MAX_STEPS})"]
    problems = []
    for i, step in enumerate(steps):
        if not isinstance(step, dict) or not isinstance(step.get("execute"), str):
            problems.append(f"steps/{i}: not a step")
            continue
        problems += command_problems(step["execute"], step.get("arguments"), policy,
                                     f"steps/{i}/arguments")
    return problems


def main_step(steps: Sequence[Step]) -> Step:
    """The transcript's main step: its first migrate or migrate-incoming."""
    return next(s for s in steps if s["execute"] in COMMANDS)


QUIT = "quit"


def quits_early(steps: Sequence[Step]) -> bool:
    """Whether a ``quit`` comes before the transcript's main step (which then never runs)."""
    main = main_step(steps)
    return any(s["execute"] == QUIT for s in steps[:list(steps).index(main)])


def _quit(q: Qemu, at: int, steps: Sequence[Step], obs: Observation, ran_main: bool) -> Observation:
    """QEMU accepted step ``at``, a quit: it must exit with status 0 (QemuDied or
    QemuHung otherwise); the observation, saying the later steps were not sent."""
    what = f"after step {at + 1}, quit"
    status = q.child.wait(q.options.timeout) if q.child is not None else 0
    if status is None:
        raise QemuHung(f"exiting {what}", q.options.timeout, q.stderr_tail())
    if status != 0:
        raise QemuDied(what, status, q.stderr_tail())
    left = len(steps) - at - 1
    said = f"QEMU quit as step {at + 1} asked" + (
        f"; the {left} step{'s' * (left != 1)} after it {'were' if left != 1 else 'was'} not sent"
        if left else "")
    if not ran_main:
        return Observation("error", detail=f"{said}: the transcript's main step never ran")
    obs.detail = said
    return obs


def play(q: Qemu, steps: Sequence[Step]) -> Observation:
    """Run every step on ``q`` (arguments already filled); what happened."""
    replies: list[JSONObject] = []
    main = main_step(steps)
    obs = Observation("error", detail="the main step did not run")
    migrating = ran_main = False
    stage = "running the transcript"
    case_dir, started = Path(q.policy.case_dir) if q.policy else q.workdir, time.monotonic()
    try:
        for i, step in enumerate(steps):
            stage = f"running step {i + 1}, {step['execute']}"
            reply = q.execute(step["execute"], step["arguments"])
            replies.append({"execute": step["execute"], "return": reply.result} if reply.ok
                           else {"execute": step["execute"], "error": {
                               "class": reply.error_class, "desc": reply.desc}})
            if step is main:
                obs, ran_main = observe(reply), True
            migrating |= reply.ok and step["execute"] == "migrate"
            if reply.ok and step["execute"] == QUIT:
                stage = f"waiting for QEMU to quit (step {i + 1})"
                obs = _quit(q, i, steps, obs, ran_main)
                obs.replies = replies
                return obs
            if over := over_limits(case_dir, started, i + 1):
                return Observation("error", detail=over, replies=replies)
        if migrating:
            stage = "following the migration"
            status, error = migration_state(q, MIGRATION_TIMEOUT)
            if main["execute"] == "migrate" and obs.result == "accept":
                obs.migration, obs.migration_error = status, error
        if over := over_limits(case_dir, started, len(steps)):
            return Observation("error", detail=f"{over} (migration followed)", replies=replies)
        stage = "checking QEMU still answers after the transcript"
        q.cmd("query-status")
    except (QemuDied, QemuHung) as exc:
        kind = "crash" if isinstance(exc, QemuDied) else "hang"
        obs = Observation(kind, detail=f"the QEMU under test, {stage}: {exc}")
    except (QemuError, UnsafeInput, OSError) as exc:
        obs = Observation("error", detail=f"{stage}: {exc}")
    obs.replies = replies
    return obs


def fill_steps(steps: Sequence[Step], tmp: str) -> list[Step]:
    """The steps with ``{tmpdir}`` and ``{port}`` filled in (one port per transcript)."""
    values = {"tmpdir": tmp, "port": str(free_port())}
    return [{"execute": fill(s["execute"], values), "arguments": fill(s["arguments"], values)}
            for s in steps]


def run_fresh(steps: Sequence[Step], build: QemuBuild, incoming: bool,
              timeout: float = 10.0, allow_exec: bool = False) -> Observation:
    """Play ``steps`` alone on a fresh QEMU (``-incoming defer`` with ``incoming``)
    whose case dir is a new private dir; a transcript the safety gate refuses
    starts nothing and is an ``error``."""
    start = time.monotonic()
    if problems := steps_problems(list(steps), Policy.template(allow_exec)):
        return Observation("error", detail=str(UnsafeInput("the transcript", problems)))
    tmp = private_dir("qmpv-")
    try:
        try:
            q = Qemu(build, QemuOptions(incoming_defer=incoming, timeout=timeout), "subject",
                     Policy.for_case(tmp, allow_exec)).start(tmp)
        except (QemuDied, QemuHung, QemuError, UnsafeInput, OSError) as exc:
            kind = ("crash" if isinstance(exc, QemuDied) else "hang" if isinstance(exc, QemuHung)
                    else "error")
            obs = Observation(kind, detail=f"starting the QEMU under test: {exc}")
        else:
            with q:
                obs = play(q, fill_steps(steps, str(tmp)))
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    obs.seconds = round(time.monotonic() - start, 4)
    return obs
