"""Play a consumer profile with a real guest: a source QEMU of one build, a
destination QEMU of another (or the same) build, each getting the consumer's
own steps in the profile's order, and say what happened (an ``Observation``).

The source starts the test guest (running); the destination starts as the
consumer starts it (``-incoming defer`` or a uri, and held by ``-S``). Each
step runs on its side: a command with arguments built from earlier answers, a
wait for the migration to reach a status (by MIGRATION events, as libvirt
waits, or by polling query-migrate, as Proxmox does; the poll's pace is the
harness's, not the consumer's), or an fd the consumer connects itself and
passes with getfd. A refused step that the consumer does not ignore ends the
run there: ``reject`` at that step with QEMU's answer, and when the source's
``migrate`` had been accepted, the profile's cancel path runs after it.

Harness traffic beside the consumer's: once the migration has run (before the
destination's first ``cont``, or at the end), the runner waits for both sides'
final status (query-migrate) and checks that the guest arrived intact (memory
digests, RAM transferred: ``profileguest.arrival``). A running guest is left
held for the consumer's own ``cont``, after which it must run on in the
source's run state; only a profile that never continues the destination has the
harness continue it. Then it checks both QEMUs still answer ``query-status``.
Every command passes the safety gate (the harness checks the expanded arguments
before sending them).
"""

from __future__ import annotations

import shutil
import socket
import time
from contextlib import ExitStack
from dataclasses import dataclass, field, replace
from pathlib import Path

from qmpcompat.errors import QemuDied, QemuError, QemuHung, UnsafeInput
from qmpcompat.guest import Arrival
from qmpcompat.harness import Qemu
from qmpcompat.harness.process import private_dir
from qmpcompat.provision import QemuBuild
from qmpcompat.safety import Policy, fill
from qmpcompat.schema.sources.live import SchemaCache
from qmpcompat.types import JSON, JSONObject, json_object, json_text
from qmpcompat.vectors import profileguest
from qmpcompat.vectors.model import FINAL_STATUSES, WAITING_STATUSES
from qmpcompat.vectors.profilegate import gate_problems
from qmpcompat.vectors.profileprog import expand, holds, step_key
from qmpcompat.vectors.profiles import Profile, Step
from qmpcompat.vectors.run import MIGRATION_TIMEOUT, GuestSide, Observation, free_port
from qmpcompat.vectors.sides import both_errors, load_failure

POLL_INTERVAL = 0.02


class Ended(Exception):
    """A wait saw the migration fail or be cancelled: the consumer gives up there."""


class Refused(Exception):
    """A step QEMU refused and the consumer does not go on from."""

    def __init__(self, step: Step, error_class: str | None, desc: str | None) -> None:
        super().__init__(f"{step.id}: {error_class}: {desc}")
        self.step, self.error_class, self.desc = step, error_class, desc


@dataclass
class _Play:
    """One run of a profile: both QEMUs, the saved answers, the transcript."""

    profile: Profile
    builds: dict[str, QemuBuild]
    qemus: dict[str, Qemu]
    side: GuestSide
    tmp: Path
    values: dict[str, str]
    schemas: SchemaCache
    allow_exec: bool
    saved: dict[str, JSON] = field(default_factory=dict)
    replies: list[JSONObject] = field(default_factory=list)
    ignored: list[str] = field(default_factory=list)
    ended: dict[str, str] = field(default_factory=dict)  # side: the final status its events said
    migrating: bool = False
    arrived: bool = False
    held: Arrival | None = None  # the arrival of a guest left held for the consumer's cont
    obs: Observation = field(default_factory=lambda: Observation("accept"))

    def schema_has(self, side: str, query: str) -> bool:
        return not self.schemas.missing(self.builds[side], (query,))

    def holds(self, cond: JSON) -> bool:
        return cond is None or holds(cond, self.saved, self.schema_has)

    def run_step(self, step: Step, in_cancel: bool = False) -> None:
        """Run one step (Refused when QEMU refuses one the consumer stops at)."""
        entry: JSONObject = {"side": step.side, "step": step.id, "execute": step.what}
        if in_cancel:
            entry["cancel"] = True
        self.replies.append(entry)
        if not self.holds(step.when):
            entry["skipped"] = True
            return
        q = self.qemus[step.side]
        if step.fd_name:
            self._pass_fd(q, step)
            entry["arguments"] = {"fdname": step.fd_name}
            return
        if step.execute is None:
            info = entry["return"] = self._wait(q, step)
            if step.save:
                self.saved[step.save] = info
            if info.get("status") in ("failed", "cancelled") and not in_cancel:
                raise Ended
            return
        consumer_cont = step.execute == "cont" and step.side == "destination"
        if consumer_cont:  # check the guest while the destination still holds it
            self.arrive(resume=False)
        args = expand(fill(step.arguments or {}, self.values), self.saved, self.schema_has)
        entry["arguments"] = args
        reply = q.execute(step.execute, args)
        self.saved[step_key(step.id)] = "accepted" if reply.ok else "refused"
        if step.save:
            self.saved[step.save] = reply.result if reply.ok else None
        if reply.ok:
            entry["return"] = reply.result
            self.migrating |= step.execute == "migrate" and step.side == "source"
            if consumer_cont:
                self.runs_on()
            return
        entry["error"] = {"class": reply.error_class, "desc": reply.desc}
        if step.stop_on_error and not in_cancel:
            raise Refused(step, reply.error_class, reply.desc)
        self.ignored.append(f"{step.id} refused ({reply.error_class}: {reply.desc})")

    def _pass_fd(self, q: Qemu, step: Step) -> None:
        address = fill(step.fd_connect, self.values)
        policy = Policy.for_case(self.tmp, self.allow_exec)
        if why := policy.uri_problem(address):
            raise UnsafeInput(f"step {step.id}", [why])
        scheme, _, rest = address.partition(":")
        if scheme == "unix":
            sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            target: str | tuple[str, int] = rest
        else:
            host, _, port = rest.rpartition(":")
            sock = socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET)
            target = (host.strip("[]"), int(port))
        with sock:
            sock.settimeout(MIGRATION_TIMEOUT)
            sock.connect(target)
            q.send_fd(step.fd_name, sock.fileno())  # QEMU holds its own copy now

    def _wait(self, q: Qemu, step: Step) -> JSONObject:
        """Wait until the side's migration reaches one of the step's statuses: by
        polling query-migrate, or by MIGRATION events (each seen one is consumed; a
        final status an earlier wait consumed still answers a later wait for it, as
        the consumer keeps the job state it has already seen)."""
        if step.wait_by == "poll":
            return q.wait_migration(step.wait_until, MIGRATION_TIMEOUT, POLL_INTERVAL)
        if self.ended.get(step.side) in step.wait_until:
            return {"status": self.ended[step.side]}
        deadline = time.monotonic() + MIGRATION_TIMEOUT
        while True:
            event = q.wait_event("MIGRATION", timeout=max(0.05, deadline - time.monotonic()))
            q.events.remove(event)
            info = json_object(event.get("data") or {})
            status = json_text(info.get("status"))
            if status in FINAL_STATUSES:
                self.ended[step.side] = status
            if status in step.wait_until:
                return info
            if time.monotonic() > deadline:
                if q.child is not None:
                    q.child.kill()
                raise QemuHung(f"to reach {', '.join(step.wait_until)} (last status "
                               f"{status!r})", MIGRATION_TIMEOUT, q.stderr_tail())

    def arrive(self, resume: bool = True) -> None:
        """Once: wait for both sides' final status; when both completed, check the
        guest. With ``resume`` false (the consumer's ``cont`` comes next) a running
        guest is left held for it; else the harness continues it."""
        if self.arrived or not self.migrating:
            return
        self.arrived = True
        src, dst = self.qemus["source"], self.qemus["destination"]
        done = FINAL_STATUSES + WAITING_STATUSES
        info = src.wait_migration(done, timeout=MIGRATION_TIMEOUT)
        self.obs.migration = json_text(info.get("status"))
        try:
            peer = (dst.wait_migration(done, timeout=MIGRATION_TIMEOUT)
                    if self.obs.migration == "completed" else dst.query_migrate())
        except QemuDied as exc:  # exit-on-error: a destination that cannot load the stream exits
            if (said := load_failure(exc)) is None:
                raise
            peer = {"status": "failed", "error-desc": said}
        self.obs.peer_migration = json_text(peer.get("status")) or "none"
        self.obs.migration_error = both_errors(json_text(info.get("error-desc")),
                                               json_text(peer.get("error-desc")))
        if self.obs.migration == self.obs.peer_migration == "completed":
            found = profileguest.arrival(src, dst, self.side, self.tmp, info, resume)
            self.held = found if found.held_at is not None else None
            self._judge(found)

    def runs_on(self) -> None:
        """After the consumer's own ``cont``: a guest ``arrive`` left held runs on."""
        found, self.held = self.held, None
        if found is not None:
            profileguest.runs_on(self.qemus["destination"], self.side, self.tmp, found)
            self._judge(found)

    def _judge(self, found: Arrival) -> None:
        self.obs.guest = found.to_json()
        if found.problems:
            self.obs.result, self.obs.detail = "corrupt", "; ".join(found.problems)


def run_profile(profile: Profile, source: QemuBuild, destination: QemuBuild,
                schemas: SchemaCache, timeout: float = 10.0, allow_exec: bool = False,
                keep_dirs: bool = False) -> Observation:
    """Play ``profile`` from a fresh source QEMU of ``source`` to a fresh
    destination QEMU of ``destination`` (a build with itself too), with the older
    side's machine type; what happened. A profile the safety gate refuses starts
    nothing and is an ``error``."""
    from_start = time.monotonic()
    if problems := gate_problems(profile, allow_exec):
        return Observation("error", detail=str(UnsafeInput(profile.id, problems)))
    tmp = private_dir("qmpv-")
    try:
        obs = _play(profile, {"source": source, "destination": destination}, tmp, schemas,
                    timeout, allow_exec)
    finally:
        if not keep_dirs:
            shutil.rmtree(tmp, ignore_errors=True)
    obs.seconds = round(time.monotonic() - from_start, 4)
    return obs


def _play(profile: Profile, builds: dict[str, QemuBuild], tmp: Path, schemas: SchemaCache,
          timeout: float, allow_exec: bool) -> Observation:
    values = {"tmpdir": str(tmp), "port": str(free_port())}
    policy = Policy.for_case(tmp, allow_exec)
    side = profileguest.new_side(profile.guest, tmp, min(b.version for b in builds.values()))
    incoming = fill(profile.incoming, values)
    qemus = {name: Qemu(builds[name], profileguest.side_options(
        side, name == "source", incoming if name == "destination" else "", timeout), name, policy)
        for name in ("source", "destination")}
    play = _Play(profile, builds, qemus, side, tmp, values, schemas, allow_exec)
    stage, at = "starting both QEMUs", ""
    with ExitStack() as stack:
        try:
            for q in qemus.values():
                stack.enter_context(q.launch(tmp))
            for q in qemus.values():
                q.ready()
            stage = "starting the test guest"
            profileguest.settle(qemus["source"], side, tmp)
            try:
                for step in profile.steps:
                    stage, at = f"step {step.id} ({step.side}: {step.what})", step.id
                    play.run_step(step)
                stage, at = "following the migration", ""
                play.arrive()
                alive = list(qemus)
            except (Refused, Ended) as stop:
                if isinstance(stop, Refused):
                    if play.obs.result != "corrupt":  # a damaged guest outweighs a refusal
                        # one after the arrival check keeps what that check found
                        play.obs = replace(play.obs, result="reject", error_class=stop.error_class,
                                           desc=stop.desc, step=stop.step.id)
                    alive = [stop.step.side]  # the other side is the consumer's to stop
                else:
                    play.arrive()
                    alive = ["source"]
                for step in profile.cancel:
                    stage, at = f"cancel step {step.id} ({step.side}: {step.what})", step.id
                    play.run_step(step, in_cancel=True)
            for name in alive:
                stage, at = f"checking the {name} QEMU still answers", ""
                qemus[name].cmd("query-status")
        except (QemuDied, QemuHung) as exc:
            kind = "crash" if isinstance(exc, QemuDied) else "hang"
            who = next((n for n, q in qemus.items() if not q.alive), "a QEMU")
            play.obs = Observation(kind, detail=f"the {who} QEMU, {stage}: {exc}", step=at or None)
        except (QemuError, UnsafeInput, OSError) as exc:
            play.obs = Observation("error", detail=f"{stage}: {exc}", step=at or None)
    if play.ignored and play.obs.result == "accept":
        play.obs.detail = "the consumer went on after: " + "; ".join(play.ignored)
    play.obs.replies = play.replies
    return play.obs

