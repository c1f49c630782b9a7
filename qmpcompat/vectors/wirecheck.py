"""Hold a consumer profile against a recording of the real consumer
(``qmpcompat.vectors.wire``) and name every difference.

The profile is played on paper against the recorded traffic, the way the
runner plays it against QEMU: its steps in order, each on its side, each
condition evaluated on the replies QEMU really gave libvirt (a ``schema``
condition on the committed schema baseline of that side's QEMU version), each
step's arguments built from them. A step whose condition holds must find its
command next on its side (commands outside the profile's vocabulary, such as
libvirt's ``qom-get`` or ``query-block``, are passed over, but never the one
the side's next command step sends: then the step is missing); a ``wait`` finds the
MIGRATION event it waits for; a ``pass-fd`` is a ``getfd`` of its name. When
QEMU refused a step the consumer stops at, or a wait saw the migration fail,
the ``cancel`` steps follow, as in the runner.

Differences, each with the step and the recorded message (``n``):

- ``missing``: a step whose condition held, that libvirt did not send;
- ``arguments``: a member the profile sends and libvirt did not, one libvirt
  sent and the profile does not, or another value (each one named);
- ``unexpected``: a command of the profile's vocabulary (any command one of its
  steps sends, and ``getfd``) that libvirt sent where no step has it;
- ``order``: libvirt sent a step's command before a step the profile puts
  first, on the other side;
- ``wait``: the migration never reached a status a wait step waits for;
- ``condition``: a condition the baselines cannot decide.

A command libvirt sent for a client's job-progress query (``CLIENT_CALLS``,
known by the API call its thread served) is listed apart (``client``), not as
a difference.

A step matched with no difference is **seen** in that recording: a profile may
mark it ``observed`` (lint checks the claim against the recording).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from qmpcompat.errors import SchemaError, VectorError
from qmpcompat.safety import fill
from qmpcompat.schema.model.query import SchemaIndex, schema_has
from qmpcompat.schema.sources.snapshot import BASELINE_DIR, RELEASE_DIR, baseline_path, from_snapshot
from qmpcompat.types import JSON, JSONObject
from qmpcompat.vectors.profileprog import ProgramError, expand, holds, step_key
from qmpcompat.vectors.profiles import Profile, Step
from qmpcompat.vectors.wire import WIRE_DIR, Recording, recordings


@dataclass(frozen=True)
class Difference:
    kind: str  # missing, arguments, unexpected, order, wait, condition
    text: str
    step: str | None = None
    n: int | None = None

    def __str__(self) -> str:
        where = " ".join(x for x in (self.step or "", f"#{self.n}" if self.n else "") if x)
        return f"{self.kind}{' ' + where if where else ''}: {self.text}"


@dataclass
class WireCheck:
    """What holding one profile against one recording found."""

    recording: Recording
    matched: dict[str, int] = field(default_factory=dict)  # step id -> the message's n
    skipped: list[str] = field(default_factory=list)  # steps whose condition did not hold
    client: list[int] = field(default_factory=list)  # the client's job-progress queries (n)
    differences: list[Difference] = field(default_factory=list)
    # step id -> the arguments the profile builds from the recorded replies, with its
    # placeholders ({port}, {tmpdir}) left in: what a replay sends (a reproducer's)
    built: dict[str, JSONObject] = field(default_factory=dict)

    def seen(self, step_id: str) -> bool:
        """Whether the step was matched with no difference of its own."""
        return step_id in self.matched and not any(d.step == step_id for d in self.differences)


SchemaHas = Callable[[str, str], bool]
# A client's own job-progress queries (virsh migrate's watch loop asks for the job's
# progress until it sees the job start: tools/virsh-domain.c virshWatchJob ->
# virDomainGetJobInfo -> src/qemu/qemu_driver.c qemuDomainGetJobInfo, a query-migrate
# when QEMU's migration is already active). They race the migration, so a profile
# has no step for them; the check lists them apart.
CLIENT_CALLS = ("virDomainGetJobInfo", "virDomainGetJobStats")
LOOKAHEAD = 1  # a step's command found only past what its side's next step sends is missing


def baseline_schemas(rec: Recording, dirs: tuple[Path, ...] = (BASELINE_DIR, RELEASE_DIR)) -> SchemaHas:
    """The ``schema`` conditions of each side, answered by the committed schema of
    that side's QEMU version (SchemaError when none is committed)."""
    indexes: dict[str, SchemaIndex] = {}

    def has(side: str, query: str) -> bool:
        if side not in indexes:
            version = rec.version(side)
            path = next((p for d in dirs if (p := baseline_path(version, d)).exists()), None)
            if path is None:
                raise SchemaError(f"no committed schema of QEMU {version} to decide {query}",
                                  str(dirs[0]))
            indexes[side] = SchemaIndex(from_snapshot(path).entries)
        return schema_has(indexes[side], query)
    return has


def _diff(path: str, want: JSON, got: JSON) -> list[str]:
    """Every place where the arguments the profile builds and libvirt's differ."""
    if isinstance(want, dict) and isinstance(got, dict):
        out = [f"{path}{k}: the profile sends {want[k]!r}, libvirt did not send it"
               for k in want if k not in got]
        out += [f"{path}{k}: libvirt sent {got[k]!r}, the profile does not send it"
                for k in got if k not in want]
        for k in want:
            if k in got:
                out += _diff(f"{path}{k}/", want[k], got[k])
        return out
    if isinstance(want, list) and isinstance(got, list) and len(want) == len(got):
        return [d for i, (a, b) in enumerate(zip(want, got, strict=True))
                for d in _diff(f"{path}{i}/", a, b)]
    if want != got or type(want) is not type(got):
        return [f"{path.rstrip('/') or '(arguments)'}: the profile sends {want!r}, libvirt sent {got!r}"]
    return []


@dataclass
class _Paper:
    """One play of a profile on paper against a recording."""

    profile: Profile
    check: WireCheck
    schema: SchemaHas
    sides: dict[str, list[JSONObject]]
    cursor: dict[str, int] = field(default_factory=lambda: {"source": 0, "destination": 0})
    saved: dict[str, JSON] = field(default_factory=dict)
    used: set[int] = field(default_factory=set)
    last: dict[str, tuple[str, float]] = field(default_factory=dict)  # side -> (step, t) matched last

    def holds(self, step: Step) -> bool | None:
        try:
            return step.when is None or holds(step.when, self.saved, self.schema)
        except (SchemaError, ProgramError) as exc:
            self.check.differences.append(Difference("condition", str(exc), step.id))
            return None

    def find(self, side: str, test: Callable[[JSONObject], bool]) -> int | None:
        messages = self.sides[side]
        return next((i for i in range(self.cursor[side], len(messages)) if test(messages[i])), None)

    def take(self, step: Step, index: int) -> JSONObject:
        msg = self.sides[step.side][index]
        self.cursor[step.side] = index + 1
        self.used.add(int(str(msg["n"])))
        self.check.matched[step.id] = int(str(msg["n"]))
        t = float(str(msg["t"]))
        other = "destination" if step.side == "source" else "source"
        if "execute" in msg and other in self.last and t < self.last[other][1]:
            self.check.differences.append(Difference(
                "order", f"libvirt sent it at {t:.3f}s, before step {self.last[other][0]} "
                f"({self.last[other][1]:.3f}s), which the profile puts first", step.id, int(str(msg["n"]))))
        if "execute" in msg:  # an event's time is QEMU's, not the consumer's doing
            self.last[step.side] = (step.id, t)
        return msg

    def passes_over(self, step: Step, index: int, later: tuple[Step, ...]) -> bool:
        """Whether matching ``index`` would pass over the command of the side's
        next command step (``LOOKAHEAD``): then the step is missing there."""
        ahead = {s.execute or "getfd" for s in [s for s in later if s.side == step.side
                                                 and (s.execute or s.fd_name)][:LOOKAHEAD]}
        messages = self.sides[step.side][self.cursor[step.side]:index]
        return any(m.get("execute") in ahead for m in messages)

    def play(self, step: Step, in_cancel: bool, later: tuple[Step, ...] = ()) -> bool:
        """One step; False when the consumer stops there (the cancel path follows)."""
        taken = self.holds(step)
        if not taken:
            if taken is False:
                self.check.skipped.append(step.id)
            return True
        if step.execute is None and not step.fd_name:
            return self._wait(step, in_cancel)
        name = step.execute or "getfd"
        index = self.find(step.side, lambda m: m.get("execute") == name and (
            not step.fd_name or _arguments(m).get("fdname") == step.fd_name))
        if index is not None and self.passes_over(step, index, later):
            index = None  # libvirt went on to what comes later: this step is missing
        if index is None:
            self.check.differences.append(Difference(
                "missing", f"libvirt did not send {name} on the {step.side} here", step.id))
            return True
        msg = self.take(step, index)
        if not step.fd_name:
            self.check.built[step.id] = expand(step.arguments or {}, self.saved, self.schema)
        want: JSONObject = ({"fdname": step.fd_name} if step.fd_name else
                            expand(fill(step.arguments or {}, self.values), self.saved, self.schema))
        self.check.differences += [Difference("arguments", d, step.id, int(str(msg["n"])))
                                   for d in _diff("", want, _arguments(msg))]
        refused = "error" in msg
        self.saved[step_key(step.id)] = "refused" if refused else "accepted"
        if step.save:
            self.saved[step.save] = None if refused else msg.get("return")
        return not (refused and step.stop_on_error and not in_cancel)

    def _wait(self, step: Step, in_cancel: bool) -> bool:
        index = self.find(step.side, lambda m: m.get("event") == "MIGRATION"
                          and _arguments(m, "data").get("status") in step.wait_until)
        if index is None:
            self.check.differences.append(Difference(
                "wait", f"the {step.side}'s migration never reached "
                f"{', '.join(step.wait_until)} here", step.id))
            return True
        data = _arguments(self.take(step, index), "data")
        if step.save:
            self.saved[step.save] = data
        return in_cancel or data.get("status") not in ("failed", "cancelled")

    @property
    def values(self) -> dict[str, str]:
        return {"tmpdir": "{tmpdir}", **self.check.recording.values}


def _arguments(msg: JSONObject, key: str = "arguments") -> JSONObject:
    value = msg.get(key)
    return value if isinstance(value, dict) else {}


def vocabulary(profile: Profile) -> set[str]:
    """The commands the profile sends (``getfd`` for a pass-fd)."""
    steps = (*profile.steps, *profile.cancel)
    return {s.execute for s in steps if s.execute} | ({"getfd"} if any(s.fd_name for s in steps) else set())


def hold(profile: Profile, rec: Recording, schema: SchemaHas | None = None) -> WireCheck:
    """Play ``profile`` against ``rec``; every difference (see the module's description)."""
    check = WireCheck(rec)
    messages = rec.messages
    sides = {side: [m for m in messages if m.get("side") == side] for side in ("source", "destination")}
    paper = _Paper(profile, check, schema or baseline_schemas(rec), sides)
    if rec.profile != profile.id:
        check.differences.append(Difference("recording", f"recorded for {rec.profile}, not {profile.id}"))
    stopped = False
    for i, step in enumerate(profile.steps):
        if not paper.play(step, False, profile.steps[i + 1:]):
            stopped = True
            break
    for i, step in enumerate(profile.cancel if stopped else ()):
        paper.play(step, True, profile.cancel[i + 1:])
    words = vocabulary(profile)
    for m in messages:
        n = int(str(m.get("n")))
        if m.get("execute") not in words or n in paper.used:
            continue
        if m.get("api") in CLIENT_CALLS:
            check.client.append(n)
            continue
        check.differences.append(Difference(
            "unexpected", f"libvirt sent {m['execute']} on the {m['side']}"
            f"{' (' + str(m['via']) + ')' if m.get('via') else ''}, which no step of the "
            "profile has here", None, n))
    return check


def observed_problems(profile: Profile, root: Path) -> list[str]:
    """What lint says of a profile's ``observed`` claims: every recording a step
    names exists and shows that step as the profile says it (seen, no difference
    of its own), and every step a recording shows so says it."""
    try:
        found = recordings(root, profile.id)
    except VectorError as exc:
        return [str(exc)]
    checks = {name: hold(profile, rec) for name, rec in found.items()}
    out: list[str] = []
    for step in (*profile.steps, *profile.cancel):
        for name in step.observed:
            if name not in checks:
                out.append(f"step {step.id}: observed in {name}, but there is no recording "
                           f"{WIRE_DIR}/{profile.id}/{name}.json")
            elif not checks[name].seen(step.id):
                why = "; ".join(str(d) for d in checks[name].differences if d.step == step.id)
                out.append(f"step {step.id}: observed in {name}, but that recording shows "
                           f"{why or 'no such step (its condition did not hold there)'}")
        seen = [n for n, c in checks.items() if c.seen(step.id) and n not in step.observed]
        if seen:
            out.append(f"step {step.id} is seen as the profile says it in {', '.join(seen)}: "
                       "list them in its observed")
    return out
