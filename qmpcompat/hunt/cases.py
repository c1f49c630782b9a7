"""What a hunt case is, when it fails, and how failures are told apart.

A case is a transcript (``qmpcompat.vectors.transcript``): one step, the
command under test with a generated argument tree, or a few steps drawn from
the state model around it. A case fails when QEMU dies, stops answering, no
longer answers ``query-status``, or an accepted ``migrate`` reaches neither a
final state nor one where it waits for the client by design (``pre-switchover``,
``postcopy-paused``, ``colo``), except an incoming migration that exits as it was told to.

A failure's *signature* is what a QEMU developer would call one bug: crash or
hang, the signal (or exit status), the first line QEMU wrote to stderr with
paths and numbers masked (an assertion's text, a GLib warning), and the command
shape (each step's command and top-level members).
"""

from __future__ import annotations

import json
import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import TypedDict

from qmpcompat.derive.shapes import TypeWalker
from qmpcompat.types import JSONObject
from qmpcompat.vectors.model import COMMANDS, Expectation, Vector
from qmpcompat.vectors.run import Observation
from qmpcompat.vectors.transcript import Step, main_step
from qmpcompat.vectors.versions import VersionRange

_SIGNAL = re.compile(r"killed by signal (\d+)")
_STATUS = re.compile(r"exited with status (-?\d+)")
_STDERR = re.compile(r"\n  stderr: (.*)")
_PROGRAM = re.compile(r"^\S*qemu-system-[\w-]+:\s*")
# What QEMU prints when loading an incoming migration fails (the last is all a
# stream read from QEMU's own stderr leaves in the tail).
INCOMING_FAILED = ("load of migration failed", "Not a migration stream")
NEVER_OK = ("crash", "hang", "error")


def case_vector(command: str, arguments: JSONObject) -> Vector:
    """A one-step case as a vector the runner can run (its expectation is never judged)."""
    return Vector(id="HUNT", description="hunt case", command=command, arguments=arguments,
                  flags=("found-by",), expect=(Expectation(VersionRange.parse("*"), "accept"),),
                  file="hunt", incoming="defer" if command == "migrate-incoming" else None)


def incoming_exit(steps: Sequence[Step], obs: Observation) -> bool:
    """True when QEMU exited because an incoming migration failed and it was told to:
    ``exit-on-error`` is true by default (7.2 has no such argument and always exits).
    That is QEMU's documented behaviour, not a finding."""
    return (obs.result == "crash" and "exited with status 1" in obs.detail
            and any(why in obs.detail for why in INCOMING_FAILED)
            and any(s["execute"] == "migrate-incoming"
                    and s["arguments"].get("exit-on-error", True) is not False for s in steps))


def is_failure(steps: Sequence[Step], obs: Observation) -> bool:
    """Whether an observation breaks the hunt's properties: QEMU answered, stayed
    alive (or exited as told, see ``incoming_exit``), still answered query-status,
    and an accepted migrate reached a final state. An environment error (a module
    or firmware of another build, ``Observation.environment``) is no finding: it
    says nothing of QEMU (the hunt counts it as ``environment``)."""
    return obs.result in NEVER_OK and not incoming_exit(steps, obs) and not obs.environment


def stderr_line(detail: str) -> str:
    """The first line QEMU wrote to stderr, in a failure's detail, without the
    program name some builds put first, with paths, addresses and numbers masked
    ('' when it wrote nothing)."""
    found = _STDERR.search(detail)
    if not found:
        return ""
    tail = detail[found.start(1):].splitlines()
    line = next((t.strip() for t in tail if re.search(r"[A-Za-z]", t)), "")
    line = _PROGRAM.sub("", line)  # newer builds put their own name first
    line = re.sub(r"(?<![\w.])/[^\s:'\"]+", "PATH", line)  # absolute paths, not ../src/file.c
    line = re.sub(r"0x[0-9a-fA-F]+", "ADDR", line)
    return re.sub(r"(?<![\w.])\d+(?![\w.])", "N", line)[:200]


def command_shape(steps: Sequence[Step]) -> str:
    """Each step's command and top-level members: ``migrate-set-parameters(mode) >
    migrate(uri)``."""
    return " > ".join(f"{s['execute']}({','.join(sorted(s['arguments']))})" for s in steps)


def failed_on(steps: Sequence[Step], observed: JSONObject) -> str:
    """The command QEMU failed on: the first step it did not answer; the main step
    when it answered every one (the migration it started failed) or when the
    observation keeps no replies (a vector, whose set-up the runner did)."""
    replies = observed.get("replies")
    if isinstance(replies, list) and len(replies) < len(steps):
        return steps[len(replies)]["execute"]
    return main_step(steps)["execute"]


def bug_key(steps: Sequence[Step], observed: JSONObject) -> str:
    """The bug without the command shape: crash or hang, signal or exit status,
    the first stderr line, the command QEMU failed on (``failed_on``)."""
    detail = str(observed.get("detail", ""))
    sig, status = _SIGNAL.search(detail), _STATUS.search(detail)
    how = f"signal {sig.group(1)}" if sig else f"status {status.group(1)}" if status else ""
    return " | ".join((str(observed.get("result")), how or "-", stderr_line(detail) or "-",
                       failed_on(steps, observed)))


def signature(steps: Sequence[Step], observed: JSONObject) -> str:
    """One bug: ``bug_key`` and the command shape of the (minimal) transcript."""
    return f"{bug_key(steps, observed)} | {command_shape(steps)}"


def failure_kind(steps: Sequence[Step], observed: JSONObject) -> tuple[str, str, int | None]:
    """The coarse kind of a failing observation, used while shrinking: main
    command, crash/hang/error, and the signal."""
    found = _SIGNAL.search(str(observed.get("detail", "")))
    return (main_step(steps)["execute"], str(observed.get("result")),
            int(found.group(1)) if found else None)


def step_shape(step: Step) -> str:
    """A step's command and the transports it asks for (the uri's scheme, each
    channel's transport and socket type): what decides how long QEMU takes over
    an accepted migrate or migrate-incoming (a vsock connect timing out takes
    seconds, whatever the other values and whatever was set before it)."""
    arguments = step["arguments"]
    parts = []
    uri = arguments.get("uri")
    if isinstance(uri, str):
        parts.append("uri:" + uri.partition(":")[0])
    channels = arguments.get("channels")
    for channel in channels if isinstance(channels, list) else ():
        addr = channel.get("addr") if isinstance(channel, dict) else None
        if isinstance(addr, dict):
            parts.append(f"{addr.get('transport')}/{addr.get('type', '')}")
    return f"{step['execute']} {','.join(sorted(set(parts)))}"


def shapes(steps: Sequence[Step]) -> set[str]:
    """The shape of each migrate and migrate-incoming step of a transcript."""
    return {step_shape(s) for s in steps if s["execute"] in COMMANDS}


def slow_shapes(steps: Sequence[Step], obs: Observation) -> set[str]:
    """The shapes to blame when a case took seconds: those of its accepted migrate
    and migrate-incoming steps (of all of them when none was accepted)."""
    if obs.replies is not None:
        accepted = [s for s, r in zip(steps, obs.replies, strict=False) if "return" in r]
    else:
        accepted = [main_step(steps)] if obs.result == "accept" else []
    return shapes(accepted) or shapes(steps)


def enum_defaults(walker: TypeWalker, commands: Sequence[str]) -> dict[str, str]:
    """Each enum-typed member name in the arguments of ``commands`` and its first
    value (where Hypothesis shrinks to); the first command that names it wins."""
    out: dict[str, str] = {}
    todo = [walker.arg_type(c) for c in reversed(commands) if c in walker.index]
    seen: set[str] = set()
    while todo:
        name = todo.pop()
        if name in seen:
            continue
        seen.add(name)
        entry = walker.entry(name)
        meta = entry["meta-type"]
        if meta == "array":
            todo.append(str(entry["element-type"]))
        elif meta == "alternate":
            todo += [str(b["type"]) for b in entry.get("members") or ()]
        elif meta == "object":
            for shape in walker.shapes(name):
                for m in shape.members:
                    if walker.meta(m.type) == "enum":
                        out.setdefault(m.name, walker.enum_values(m.type)[0])
                    todo.append(m.type)
    return out


def pairs(tree: object) -> set[tuple[str, str]]:
    """Every (member, string value) pair in an argument tree or transcript (any
    other value has none)."""
    if isinstance(tree, dict):
        return {(k, v) for k, v in tree.items() if isinstance(v, str)} | {
            p for v in tree.values() for p in pairs(v)}
    if isinstance(tree, list):
        return {p for v in tree for p in pairs(v)}
    return set()


class OtherTranscript(TypedDict):
    """Another minimal transcript of a finding's signature, and where it was found."""

    qemu: str
    steps: list[Step]


@dataclass
class Finding:
    """A failing transcript, minimized and run again alone on a fresh QEMU."""

    steps: list[Step]  # minimal, with the runner's placeholders
    qemu: str
    qemu_version: str
    binary: str
    observed: JSONObject  # the minimal transcript's failing observation
    reproduced: JSONObject  # the same transcript alone on a fresh QEMU
    original: list[Step]  # the transcript as first generated
    seed: int
    worker: int
    batch: int
    flaky: bool = False
    seen: int = 1  # failures of this signature the run met (itself included)
    also: list[OtherTranscript] = field(default_factory=list)  # other minimal transcripts
    affected_keys: list[dict[str, str]] = field(default_factory=list)  # builds with the bug
    found_after_cases: int = 0  # the worker's cases when it first saw the failure
    found_after_seconds: float = 0.0  # ... and the seconds since its hunt began

    @property
    def command(self) -> str:
        return main_step(self.steps)["execute"]

    @property
    def arguments(self) -> JSONObject:
        return dict(main_step(self.steps)["arguments"])

    @property
    def key(self) -> str:
        """Findings with the same key are the same finding."""
        return json.dumps([self.qemu, self.observed.get("result"), self.steps], sort_keys=True)

    @property
    def kind(self) -> tuple[str, str, int | None]:
        return failure_kind(self.steps, self.observed)

    @property
    def signature(self) -> str:
        """The bug this finding is (see ``signature``)."""
        return signature(self.steps, self.observed)

    @property
    def bug_key(self) -> str:
        return bug_key(self.steps, self.observed)
