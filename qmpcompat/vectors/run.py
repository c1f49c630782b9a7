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
from contextlib import ExitStack
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from qmpcompat.errors import QemuDied, QemuError, QemuHung, UnsafeInput
from qmpcompat.harness import CommandFailed, Qemu, Reply
from qmpcompat.harness.process import private_dir
from qmpcompat.provision import QemuBuild
from qmpcompat.safety import Policy, fill
from qmpcompat.vectors.model import FdSpec, Vector
from qmpcompat.vectors.plan import qemu_options, setup_commands
from qmpcompat.vectors.safety import check_vector

MIGRATION_TIMEOUT = 30.0


@dataclass
class Observation:
    """What a real QEMU did with a vector.

    ``result`` is accept, reject, crash (QEMU died), hang (QEMU stopped
    answering and was killed) or error (a precondition could not be set up).
    """

    result: str
    error_class: str | None = None
    desc: str | None = None
    migration: str | None = None  # final query-migrate status of the side under test
    peer_migration: str | None = None  # ... and of the other side, if there was one
    migration_error: str | None = None
    detail: str = ""  # crash, hang or set-up failure text, with QEMU's stderr tail
    seconds: float = 0.0
    replies: list[dict[str, Any]] | None = None  # a transcript: every step's answer

    def to_json(self) -> dict[str, Any]:
        return {k: v for k, v in asdict(self).items() if v not in (None, "")}

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
    info = q.wait_migration(timeout=timeout)
    return info.get("status"), info.get("error-desc")


class Runner:
    """Runs vectors on builds; one instance per pytest worker. Every vector passes
    the safety gate first (a refused one starts no QEMU and is observed as an
    ``error`` saying why); ``allow_exec`` is the gate's only widening."""

    def __init__(self, timeout: float = 10.0, keep_dirs: bool = False,
                 allow_exec: bool = False) -> None:
        self.timeout = timeout
        self.keep_dirs = keep_dirs
        self.allow_exec = allow_exec

    def qemu(self, vec: Vector, build: QemuBuild, incoming: bool, name: str, tmp: Path) -> Qemu:
        """A QEMU for one side of ``vec``, gated by the case's policy."""
        return Qemu(build, qemu_options(vec, incoming, self.timeout), name,
                    Policy.for_case(tmp, self.allow_exec))

    def close(self) -> None:
        """Release what the runner holds between cases (this one holds nothing)."""

    def __enter__(self) -> Runner:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def run_fresh(self, vec: Vector, build: QemuBuild) -> Observation:
        """Run ``vec`` alone on a fresh QEMU (what ``run`` always does here)."""
        return Runner.run(self, vec, build)

    def run(self, vec: Vector, build: QemuBuild) -> Observation:
        """Run ``vec`` on a fresh QEMU of ``build`` and observe what it does."""
        start = time.monotonic()
        if problems := check_vector(vec, self.allow_exec):
            return Observation("error", detail=str(UnsafeInput(vec.id, problems)))
        tmp = private_dir("qmpv-")
        values = {"tmpdir": str(tmp), "port": str(free_port())}
        try:
            obs = self._run(vec, build, tmp, values)
        finally:
            if not self.keep_dirs:
                shutil.rmtree(tmp, ignore_errors=True)
        obs.seconds = round(time.monotonic() - start, 4)
        return obs

    def _run(self, vec: Vector, build: QemuBuild, tmp: Path,
             values: dict[str, str]) -> Observation:
        args = fill(vec.arguments, values)
        with ExitStack() as stack:
            fds = FdMaker(values, stack)
            subject = self.qemu(vec, build, vec.incoming == "defer", "subject", tmp)
            sides = _Sides(self, vec, build, tmp, values, fds, stack)
            stage = "starting the QEMU under test"
            try:
                stack.enter_context(subject.start(tmp))
                _prepare(subject, vec, values)
                if vec.peer and vec.peer.when == "before":
                    stage = "setting up the other side"
                    sides.start_peer()
                stage = "passing fds"
                fds.pass_to(subject, vec.fds)
                stage = f"running {vec.command}"
                reply = subject.execute(vec.command, args)
                obs = observe(reply)
                if reply.ok:
                    stage = "following the migration"
                    sides.follow(subject, obs)
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


def observe(reply: Reply) -> Observation:
    if reply.ok:
        return Observation("accept")
    return Observation("reject", error_class=reply.error_class, desc=reply.desc)


class _Sides:
    """The other side of one run: started before the command or after it, and
    followed together with the QEMU under test."""

    def __init__(self, runner: Runner, vec: Vector, build: QemuBuild, tmp: Path,
                 values: dict[str, str], fds: FdMaker, stack: ExitStack) -> None:
        self.runner, self.vec, self.build, self.tmp = runner, vec, build, tmp
        self.fds, self.stack, self.values = fds, stack, values
        own = vec.peer.arguments if vec.peer and vec.peer.arguments is not None else vec.arguments
        self.args = fill(own, values)
        self.peer: Qemu | None = None

    def start_peer(self) -> Qemu:
        vec = self.vec
        assert vec.peer is not None
        incoming = vec.peer.command == "migrate-incoming"
        peer = self.runner.qemu(vec, self.build, incoming, "peer", self.tmp)
        self.peer = peer
        self.stack.enter_context(peer.start(self.tmp))
        _prepare(peer, vec, self.values)
        self.fds.pass_to(peer, vec.peer.fds)
        reply = peer.execute(vec.peer.command, self.args)
        if not reply.ok:
            raise CommandFailed(reply)
        if vec.peer.when == "before" and vec.peer.command == "migrate":
            status, err = migration_state(peer, MIGRATION_TIMEOUT)
            if status != "completed":
                raise QemuError(f"the other side's migrate ended {status}: {err}")
        return peer

    def follow(self, subject: Qemu, obs: Observation) -> None:
        """Follow an accepted command: a migrate always, a migrate-incoming when it has
        a peer. A peer that comes after a migrate starts once the migrate has ended
        (it reads back what the migrate wrote, e.g. a file)."""
        vec = self.vec
        after = vec.peer is not None and vec.peer.when == "after"
        if vec.command == "migrate":
            obs.migration, obs.migration_error = migration_state(subject, MIGRATION_TIMEOUT)
            if after and obs.migration == "completed":
                self.start_peer()
            if self.peer is not None:
                obs.peer_migration, err = migration_state(self.peer, MIGRATION_TIMEOUT)
                obs.migration_error = obs.migration_error or err
            return
        if after:
            self.start_peer()
        if self.peer is None:
            return
        obs.migration, obs.migration_error = migration_state(subject, MIGRATION_TIMEOUT)
        if not after:
            return  # a source that ran before wrote a file or sink; its completion was a precondition
        if obs.migration == "completed":
            obs.peer_migration, err = migration_state(self.peer, MIGRATION_TIMEOUT)
            obs.migration_error = obs.migration_error or err
        else:
            obs.peer_migration = self.peer.query_migrate().get("status")
