"""Run one vector on one QEMU build and say what happened (an ``Observation``).

The runner fills in placeholders, starts the QEMU under test (and, for an
accepted migration, the real other side), passes declared fds, runs the
command, follows an accepted migration to its end, and checks QEMU still
answers. It never judges: ``match`` compares the observation with the vector.
"""

from __future__ import annotations

import shutil
import socket
import time
from collections.abc import Callable
from contextlib import ExitStack
from dataclasses import asdict, dataclass
from pathlib import Path

from qmpcompat import guest
from qmpcompat.errors import ENVIRONMENT_ERROR, QemuDied, QemuError, QemuHung, UnsafeInput
from qmpcompat.guest.image import Layout
from qmpcompat.harness import CommandFailed, Qemu, Reply
from qmpcompat.harness.process import private_dir
from qmpcompat.provision import QemuBuild
from qmpcompat.safety import Policy, fill
from qmpcompat.types import JSONObject, Version, json_list, json_object, json_text
from qmpcompat.vectors.model import FINAL_STATUSES, WAITING_STATUSES, FdSpec, Vector
from qmpcompat.vectors.plan import qemu_options, setup_commands
from qmpcompat.vectors.safety import check_vector

MIGRATION_TIMEOUT = 30.0


@dataclass
class Observation:
    """What a real QEMU did with a vector.

    ``result`` is accept, reject, crash (QEMU died), hang (QEMU stopped
    answering and was killed), error (a precondition could not be set up) or
    corrupt (the migration completed on both sides, but the guest did not
    arrive intact: its memory, run state or transferred RAM is wrong).
    """

    result: str
    error_class: str | None = None
    desc: str | None = None
    migration: str | None = None  # final (or waiting) query-migrate status of the side under test
    peer_migration: str | None = None  # ... and of the other side, if there was one
    migration_error: str | None = None
    detail: str = ""  # crash, hang or set-up failure text, with QEMU's stderr tail
    guest: JSONObject | None = None  # what the checks of a real guest's arrival saw
    seconds: float = 0.0
    replies: list[JSONObject] | None = None  # a transcript: every step's answer

    def to_json(self) -> JSONObject:
        return {k: v for k, v in asdict(self).items() if v not in (None, "")}

    @classmethod
    def from_json(cls, data: JSONObject) -> Observation:
        """The observation ``data`` is the ``to_json`` of (TypeError when a member is
        of another shape)."""
        guest, replies, seconds = data.get("guest"), data.get("replies"), data.get("seconds", 0.0)
        if not isinstance(seconds, int | float):
            raise TypeError(f"an observation's seconds is not a number: {seconds!r}")
        return cls(str(data["result"]), json_text(data.get("error_class")),
                   json_text(data.get("desc")), json_text(data.get("migration")),
                   json_text(data.get("peer_migration")), json_text(data.get("migration_error")),
                   str(data.get("detail", "")), None if guest is None else json_object(guest),
                   seconds, None if replies is None else [json_object(r) for r in json_list(replies)])

    @property
    def environment(self) -> bool:
        """True for an error whose cause is QEMU's environment (an
        ``EnvironmentFault``: a module or firmware of another build), not QEMU."""
        return self.result == "error" and ENVIRONMENT_ERROR in self.detail

    def summary(self) -> str:
        if self.result == "reject":
            return f"reject {self.error_class}: {self.desc}"
        if self.result == "accept":
            mig = f", migration {self.migration}" if self.migration else ""
            peer = f" (other side {self.peer_migration})" if self.peer_migration else ""
            err = f": {self.migration_error}" if self.migration_error else ""
            return f"accept{mig}{peer}{err}"
        return f"{self.result}: {self.detail}"


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _prepare(q: Qemu, vec: Vector, values: dict[str, str]) -> None:
    for command, arguments, _where in setup_commands(vec):
        q.cmd(command, fill(arguments, values))


class GuestSide:
    """The real guest of a vector that migrates one (both sides get the same kernel)."""

    def __init__(self, spec: guest.GuestSpec, tmp: Path, version: Version) -> None:
        self.spec = spec
        self.version = version  # whose machine type both sides use: the older side's
        self.layout: Layout = guest.new_layout(spec)
        self.kernel = guest.write_kernel(tmp, self.layout)
        self.source_state = ""


class FdMaker:
    """Makes the fds a vector declares: a unix socket that listens or connects at a
    path, or one end of a socket pair whose other end goes to the other side
    (``pair`` fds of the same name on both sides are the two ends of one pair)."""

    def __init__(self, values: dict[str, str], stack: ExitStack) -> None:
        self.values = values
        self.stack = stack
        self.pairs: dict[str, list[socket.socket]] = {}

    def _make(self, spec: FdSpec) -> socket.socket:
        if spec.kind == "pair":
            if not self.pairs.get(spec.name):  # a new pair, or both ends already used
                ends = socket.socketpair(socket.AF_UNIX, socket.SOCK_STREAM)
                self.pairs[spec.name] = [self.stack.enter_context(e) for e in ends]
            return self.pairs[spec.name].pop(0)
        path = fill(spec.path, self.values)
        if why := Policy.for_case(self.values["tmpdir"]).path_problem(path):
            raise UnsafeInput(f"fd {spec.name}", [why])
        sock = self.stack.enter_context(socket.socket(socket.AF_UNIX, socket.SOCK_STREAM))
        if spec.kind == "listen":
            sock.bind(path)
            sock.listen(1)
        else:
            sock.connect(path)
        return sock

    def pass_to(self, q: Qemu, fds: tuple[FdSpec, ...]) -> None:
        for spec in fds:
            with self._make(spec) as sock:  # QEMU holds its own copy once getfd returns
                q.send_fd(spec.name, sock.fileno())


def migration_state(q: Qemu, timeout: float) -> tuple[str | None, str | None]:
    """The status and error of ``q``'s migration once it is final, or waits for
    the client by design (``WAITING_STATUSES``: a migration paused before the
    switchover or in postcopy, or in COLO, is not a hang); QemuHung if neither in ``timeout``."""
    info = q.wait_migration(FINAL_STATUSES + WAITING_STATUSES, timeout=timeout)
    return json_text(info.get("status")), json_text(info.get("error-desc"))


class Runner:
    """Runs vectors on builds; one instance per pytest worker. Every vector passes
    the safety gate first (a refused one starts no QEMU and is observed as an
    ``error`` saying why); ``allow_exec`` is the gate's only widening."""

    def __init__(self, timeout: float = 10.0, keep_dirs: bool = False,
                 allow_exec: bool = False,
                 between: Callable[[Path], None] | None = None) -> None:
        self.timeout = timeout
        self.keep_dirs = keep_dirs
        self.allow_exec = allow_exec
        # Called with the case dir once a migrate has written its stream and before
        # the side that reads it back starts (qmpcompat's own tests damage a stream here).
        self.between = between

    def qemu(self, vec: Vector, build: QemuBuild, incoming: bool, name: str, tmp: Path,
             side: GuestSide | None = None, source: bool = False) -> Qemu:
        """A QEMU for one side of ``vec``, gated by the case's policy; with a guest,
        its kernel, devices and the (older side's) versioned machine type."""
        options = qemu_options(vec, incoming, self.timeout, side.kernel if side else None,
                               side.version if side else None, source)
        return Qemu(build, options, name, Policy.for_case(tmp, self.allow_exec))

    def close(self) -> None:
        """Release what the runner holds between cases (this one holds nothing)."""

    def __enter__(self) -> Runner:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def run_fresh(self, vec: Vector, build: QemuBuild,
                  peer_build: QemuBuild | None = None) -> Observation:
        """Run ``vec`` alone on a fresh QEMU (what ``run`` always does here), its peer
        on ``peer_build`` (a cross-version cell)."""
        return Runner.run(self, vec, build, peer_build)

    def run(self, vec: Vector, build: QemuBuild, peer_build: QemuBuild | None = None) -> Observation:
        """Run ``vec`` on a fresh QEMU of ``build`` and observe what it does; its peer
        runs on ``peer_build`` (default: the same build). When the two differ, a
        guest gets the older one's machine type."""
        start = time.monotonic()
        if problems := check_vector(vec, self.allow_exec):
            return Observation("error", detail=str(UnsafeInput(vec.id, problems)))
        tmp = private_dir("qmpv-")
        values = {"tmpdir": str(tmp), "port": str(free_port())}
        try:
            obs = self._run(vec, build, peer_build or build, tmp, values)
        finally:
            if not self.keep_dirs:
                shutil.rmtree(tmp, ignore_errors=True)
        obs.seconds = round(time.monotonic() - start, 4)
        return obs

    def _run(self, vec: Vector, build: QemuBuild, peer_build: QemuBuild, tmp: Path,
             values: dict[str, str]) -> Observation:
        args = fill(vec.arguments, values)
        with ExitStack() as stack:
            fds = FdMaker(values, stack)
            side = GuestSide(vec.guest, tmp, min(build.version, peer_build.version)) \
                if vec.guest else None
            subject = self.qemu(vec, build, vec.incoming == "defer", "subject", tmp, side,
                                vec.command == "migrate")
            sides = _Sides(self, vec, peer_build, tmp, values, fds, stack, side)
            stage = "starting the QEMU under test"
            try:
                stack.enter_context(subject.start(tmp))
                _prepare(subject, vec, values)
                if vec.peer and vec.peer.when == "before":
                    stage = "setting up the other side"
                    sides.start_peer()  # while the subject's guest boots
                if side is not None and vec.command == "migrate":
                    stage = "booting the test guest"
                    side.source_state = guest.settle_source(subject, side.spec, tmp)
                stage = "passing fds"
                fds.pass_to(subject, vec.fds)
                stage = f"running {vec.command}"
                reply = subject.execute(vec.command, args)
                obs = observe(reply)
                if reply.ok:
                    stage = "following the migration"
                    sides.follow(subject, obs)
                    stage = "checking the guest arrived"
                    sides.check_arrival(subject, obs)
                stage = f"checking QEMU still answers after {vec.command}"
                subject.cmd("query-status")
                return obs
            except (QemuDied, QemuHung) as exc:
                peer = sides.peer
                who = "the other side" if peer is not None and (
                    stage.startswith("setting") or not peer.alive) else "the QEMU under test"
                kind = "crash" if isinstance(exc, QemuDied) else "hang"
                return Observation(kind, detail=f"{who}, {stage}: {exc}")
            except (QemuError, UnsafeInput, OSError) as exc:
                return Observation("error", detail=f"{stage}: {exc}")


def _start_postcopy(source: Qemu) -> None:
    """Switch an active migration to postcopy (``migrate-start-postcopy``) as soon
    as ``query-migrate`` says it is active, and see it enter ``postcopy-active``
    (QemuError if it completes without); a migration that already ended is left
    to be judged by its status."""
    deadline = time.monotonic() + MIGRATION_TIMEOUT
    while source.query_migrate().get("status") in ("setup", None):
        if time.monotonic() > deadline:
            raise QemuHung("to start migrating", MIGRATION_TIMEOUT, source.stderr_tail())
        time.sleep(0.005)
    if source.query_migrate().get("status") != "active":
        return
    source.cmd("migrate-start-postcopy")
    while (status := source.query_migrate().get("status")) == "active":
        if time.monotonic() > deadline:
            raise QemuHung("to switch to postcopy", MIGRATION_TIMEOUT, source.stderr_tail())
        time.sleep(0.005)
    if status not in ("postcopy-active", "completed"):
        return  # failed or cancelled: judged by its final status
    if status == "completed":
        raise QemuError("migrate-start-postcopy was accepted, but the migration completed "
                        "without entering postcopy-active")


def _both(mine: str | None, other: str | None) -> str | None:
    """The errors of both sides, the side under test's first (a source that saw its
    connection reset and a destination that could not load the stream both say why)."""
    return "; ".join(dict.fromkeys(e for e in (mine, other) if e)) or None


def _load_failure(exc: QemuDied) -> str | None:
    """QEMU's own line when an incoming migration failed and QEMU exited as
    exit-on-error says (status 1, "load of migration failed"); else None."""
    if exc.returncode != 1:
        return None
    return next((ln.strip().removeprefix("qemu-system-x86_64: ")
                 for ln in exc.stderr_tail.splitlines() if "load of migration failed" in ln), None)


def observe(reply: Reply) -> Observation:
    if reply.ok:
        return Observation("accept")
    return Observation("reject", error_class=reply.error_class, desc=reply.desc)


class _Sides:
    """The other side of one run (on ``build``, the peer's build): started before
    the command or after it, and followed together with the QEMU under test."""

    def __init__(self, runner: Runner, vec: Vector, build: QemuBuild, tmp: Path,
                 values: dict[str, str], fds: FdMaker, stack: ExitStack,
                 side: GuestSide | None = None) -> None:
        self.runner, self.vec, self.build, self.tmp = runner, vec, build, tmp
        self.fds, self.stack, self.values, self.side = fds, stack, values, side
        self.source_info: JSONObject = {}
        own = vec.peer.arguments if vec.peer and vec.peer.arguments is not None else vec.arguments
        self.args = fill(own, values)
        self.peer: Qemu | None = None

    def start_peer(self) -> Qemu:
        vec = self.vec
        assert vec.peer is not None
        incoming = vec.peer.command == "migrate-incoming"
        source = vec.peer.command == "migrate"
        peer = self.runner.qemu(vec, self.build, incoming, "peer", self.tmp, self.side, source)
        self.peer = peer
        self.stack.enter_context(peer.start(self.tmp))
        _prepare(peer, vec, self.values)
        if self.side is not None and source:
            self.side.source_state = guest.settle_source(peer, self.side.spec, self.tmp)
        self.fds.pass_to(peer, vec.peer.fds)
        reply = peer.execute(vec.peer.command, self.args)
        if not reply.ok:
            raise CommandFailed(reply)
        if vec.peer.when == "before" and vec.peer.command == "migrate":
            status, err = self._final(peer)
            if status != "completed":
                raise QemuError(f"the other side's migrate ended {status}: {err}")
            if self.runner.between is not None:
                self.runner.between(self.tmp)
        return peer

    def _final(self, q: Qemu) -> tuple[str | None, str | None]:
        """Wait for ``q``'s migration to end; keep a source's last query-migrate. A
        destination peer that exits with status 1 saying it could not load the stream
        did what QEMU documents for exit-on-error (the default): its migration failed."""
        try:
            info = q.wait_migration(timeout=MIGRATION_TIMEOUT)
        except QemuDied as exc:
            said = _load_failure(exc)
            if q is not self.peer or self.vec.peer is None or \
                    self.vec.peer.command != "migrate-incoming" or said is None:
                raise
            return "failed", said
        if q.name == self._source_name():
            self.source_info = info
        return json_text(info.get("status")), json_text(info.get("error-desc"))

    def _source_name(self) -> str:
        return "subject" if self.vec.command == "migrate" else "peer"

    def check_arrival(self, subject: Qemu, obs: Observation) -> None:
        """For a real guest whose migration completed on both sides: did it arrive
        intact? If not, the observation becomes ``corrupt``."""
        if self.side is None or self.peer is None or obs.result != "accept":
            return
        if obs.migration != "completed" or (obs.peer_migration or "completed") != "completed":
            return
        src, dst = (subject, self.peer) if self.vec.command == "migrate" else (self.peer, subject)
        arrival = guest.verify(src, dst, self.side.spec, self.side.layout, self.tmp,
                               self.side.source_state, self.source_info)
        obs.guest = arrival.to_json()
        if arrival.problems:
            obs.result = "corrupt"
            obs.detail = "; ".join(arrival.problems)

    def follow(self, subject: Qemu, obs: Observation) -> None:
        """Follow an accepted command: a migrate always, a migrate-incoming when it has
        a peer. A peer that comes after a migrate starts once the migrate has ended
        (it reads back what the migrate wrote, e.g. a file)."""
        vec = self.vec
        after = vec.peer is not None and vec.peer.when == "after"
        if vec.command == "migrate":
            if vec.postcopy:
                _start_postcopy(subject)
            obs.migration, obs.migration_error = self._final(subject)
            if after and obs.migration == "completed":
                if self.runner.between is not None:
                    self.runner.between(self.tmp)
                self.start_peer()
            if self.peer is not None:
                obs.peer_migration, err = self._final(self.peer)
                obs.migration_error = _both(obs.migration_error, err)
            return
        if after:
            self.start_peer()
        if self.peer is None:
            return
        obs.migration, obs.migration_error = self._final(subject)
        if not after:
            return  # a source that ran before wrote a file or sink; its completion was a precondition
        if obs.migration == "completed":
            obs.peer_migration, err = self._final(self.peer)
            obs.migration_error = _both(obs.migration_error, err)
        else:
            obs.peer_migration = json_text(self.peer.query_migrate().get("status"))
