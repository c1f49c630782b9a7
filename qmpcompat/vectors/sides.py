"""The sides of one run besides the QEMU under test: its setup commands, the fds
a vector declares, the real guest both sides share, and the other QEMU (the
peer) started before or after the command and followed together with the QEMU
under test to the migration's end, the guest's arrival checked.

The runner (``qmpcompat.vectors.run``) drives a case; what it needs of the other
side is here.
"""

from __future__ import annotations

import socket
import time
from collections.abc import Callable
from contextlib import ExitStack
from pathlib import Path
from typing import Protocol

from qmpcompat import guest
from qmpcompat.errors import QemuDied, QemuError, QemuHung, UnsafeInput
from qmpcompat.guest.image import Layout
from qmpcompat.harness import CommandFailed, Qemu
from qmpcompat.provision import QemuBuild
from qmpcompat.safety import Policy, fill
from qmpcompat.types import JSONObject, Version, json_text
from qmpcompat.vectors.model import FINAL_STATUSES, WAITING_STATUSES, FdSpec, Vector
from qmpcompat.vectors.observation import Observation
from qmpcompat.vectors.plan import setup_commands

MIGRATION_TIMEOUT = 30.0


def prepare(q: Qemu, vec: Vector, values: dict[str, str]) -> None:
    for command, arguments, _where in setup_commands(vec):
        q.cmd(command, fill(arguments, values))


class GuestSide:
    """The real guest of a vector that migrates one (both sides get the same
    firmware; the source its memory pattern)."""

    def __init__(self, spec: guest.GuestSpec, tmp: Path, version: Version) -> None:
        self.spec = spec
        self.version = version  # whose machine type both sides use: the older side's
        self.layout: Layout = guest.new_layout(spec)
        self.files = guest.write_files(tmp, self.layout)
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


class Starter(Protocol):
    """What the other side needs of the runner: a gated QEMU for a side, where its
    teardown goes, and the hook its own tests damage a stream with (``Runner``)."""

    between: Callable[[Path], None] | None

    def later(self, job: Callable[[], object]) -> None: ...

    def qemu(self, vec: Vector, build: QemuBuild, incoming: bool, name: str, tmp: Path,
             side: GuestSide | None = None, source: bool = False) -> Qemu: ...


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


def _cancel_if_running(q: Qemu, after: float) -> None:
    """``requires.cancel-after``: send ``migrate_cancel`` to a migration that has
    neither ended nor reached a waiting state ``after`` seconds from now."""
    deadline = time.monotonic() + after
    while q.query_migrate().get("status") not in FINAL_STATUSES + WAITING_STATUSES:
        if time.monotonic() > deadline:
            q.cmd("migrate_cancel")
            return
        time.sleep(0.02)


def both_errors(mine: str | None, other: str | None) -> str | None:
    """The errors of both sides, the side under test's first (a source that saw its
    connection reset and a destination that could not load the stream both say why)."""
    return "; ".join(dict.fromkeys(e for e in (mine, other) if e)) or None


def load_failure(exc: QemuDied) -> str | None:
    """QEMU's own line when an incoming migration failed and QEMU exited as
    exit-on-error says (status 1, "load of migration failed"); else None."""
    if exc.returncode != 1:
        return None
    return next((ln.strip().removeprefix("qemu-system-x86_64: ")
                 for ln in exc.stderr_tail.splitlines() if "load of migration failed" in ln), None)


class Sides:
    """The other side of one run (on ``build``, the peer's build): started before
    the command or after it, and followed together with the QEMU under test."""

    def __init__(self, runner: Starter, vec: Vector, build: QemuBuild, tmp: Path,
                 values: dict[str, str], fds: FdMaker, stack: ExitStack,
                 side: GuestSide | None = None) -> None:
        self.runner, self.vec, self.build, self.tmp = runner, vec, build, tmp
        self.fds, self.stack, self.values, self.side = fds, stack, values, side
        self.source_info: JSONObject = {}
        own = vec.peer.arguments if vec.peer and vec.peer.arguments is not None else vec.arguments
        self.args = fill(own, values)
        self.peer: Qemu | None = None  # the other side, once started and sent its command
        self._launched: Qemu | None = None  # its process, launched ahead of its turn

    def launch_peer(self) -> Qemu:
        """Start the other side's process, without waiting for it (``start_peer``
        finishes its start-up when the peer's turn comes, if it comes: a peer meant
        for after a migrate that did not complete stays unused)."""
        vec = self.vec
        assert vec.peer is not None
        incoming = vec.peer.command == "migrate-incoming"
        source = vec.peer.command == "migrate"
        peer = self.runner.qemu(vec, self.build, incoming, "peer", self.tmp, self.side, source)
        self._launched = peer
        peer.launch(self.tmp)
        self.stack.callback(peer.close, self.runner.later)
        return peer

    def start_peer(self) -> Qemu:
        vec = self.vec
        assert vec.peer is not None
        source = vec.peer.command == "migrate"
        peer = self.peer = (self._launched or self.launch_peer()).ready()
        prepare(peer, vec, self.values)
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

    def _final(self, q: Qemu, timeout: float = MIGRATION_TIMEOUT) -> tuple[str | None, str | None]:
        """Wait for ``q``'s migration to end; keep a source's last query-migrate. A
        destination peer that exits with status 1 saying it could not load the stream
        did what QEMU documents for exit-on-error (the default): its migration failed."""
        try:
            info = q.wait_migration(timeout=timeout)
        except QemuDied as exc:
            said = load_failure(exc)
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
            if vec.cancel_after:
                _cancel_if_running(subject, vec.cancel_after)
            obs.migration, obs.migration_error = self._final(
                subject, vec.cancel_after or MIGRATION_TIMEOUT)
            if after and obs.migration == "completed":
                if self.runner.between is not None:
                    self.runner.between(self.tmp)
                self.start_peer()
            if self.peer is not None:
                obs.peer_migration, err = self._final(self.peer)
                obs.migration_error = both_errors(obs.migration_error, err)
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
            obs.migration_error = both_errors(obs.migration_error, err)
        else:
            obs.peer_migration = json_text(self.peer.query_migrate().get("status"))
