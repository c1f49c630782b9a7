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

from qmpcompat.errors import QemuDied, QemuError, QemuHung
from qmpcompat.harness import CommandFailed, Qemu, QemuOptions, Reply
from qmpcompat.harness.process import private_dir
from qmpcompat.provision import QemuBuild
from qmpcompat.vectors.model import FdSpec, Vector
from qmpcompat.vectors.safety import fill

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


def _options(vec: Vector, incoming: bool, timeout: float) -> QemuOptions:
    real = vec.machine != "none"
    return QemuOptions(machine=vec.machine, incoming_defer=incoming, timeout=timeout,
                       memory="64M" if real else None, extra_args=("-S",) if real else ())


def _prepare(q: Qemu, vec: Vector) -> None:
    if vec.capabilities:
        q.cmd("migrate-set-capabilities", {"capabilities": [
            {"capability": k, "state": v} for k, v in vec.capabilities.items()]})
    if vec.parameters:
        q.cmd("migrate-set-parameters", dict(vec.parameters))


def _pass_fds(q: Qemu, fds: tuple[FdSpec, ...], values: dict[str, str],
              stack: ExitStack) -> None:
    for spec in fds:
        path = fill(spec.path, values)
        sock = stack.enter_context(socket.socket(socket.AF_UNIX, socket.SOCK_STREAM))
        if spec.kind == "listen":
            sock.bind(path)
            sock.listen(1)
        else:
            sock.connect(path)
        q.send_fd(spec.name, sock.fileno())


def _migration_state(q: Qemu, timeout: float) -> tuple[str | None, str | None]:
    info = q.wait_migration(timeout=timeout)
    return info.get("status"), info.get("error-desc")


class Runner:
    """Runs vectors on builds; one instance per pytest worker."""

    def __init__(self, timeout: float = 10.0, keep_dirs: bool = False) -> None:
        self.timeout = timeout
        self.keep_dirs = keep_dirs

    def run(self, vec: Vector, build: QemuBuild) -> Observation:
        start = time.monotonic()
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
        peer_args = fill(vec.peer.arguments if vec.peer and vec.peer.arguments is not None
                         else vec.arguments, values)
        with ExitStack() as stack:
            subject = Qemu(build, _options(vec, vec.incoming == "defer", self.timeout), "subject")
            peer: Qemu | None = None
            stage = "starting the QEMU under test"
            try:
                stack.enter_context(subject.start(tmp))
                _prepare(subject, vec)
                if vec.peer and vec.peer.when == "before":
                    stage = "setting up the other side"
                    peer = self._start_peer(vec, build, tmp, peer_args, values, stack)
                stage = "passing fds"
                _pass_fds(subject, vec.fds, values, stack)
                stage = f"running {vec.command}"
                reply = subject.execute(vec.command, args)
                obs = self._observe(reply)
                if reply.ok:
                    stage = "following the migration"
                    if vec.peer and vec.peer.when == "after":
                        peer = self._start_peer(vec, build, tmp, peer_args, values, stack)
                    self._follow(vec, subject, peer, obs)
                stage = f"checking QEMU still answers after {vec.command}"
                subject.cmd("query-status")
                return obs
            except (QemuDied, QemuHung) as exc:
                who = "the other side" if peer is not None and stage.startswith("setting") else \
                    "the QEMU under test"
                kind = "crash" if isinstance(exc, QemuDied) else "hang"
                return Observation(kind, detail=f"{who}, {stage}: {exc}")
            except (QemuError, OSError) as exc:
                return Observation("error", detail=f"{stage}: {exc}")

    def _start_peer(self, vec: Vector, build: QemuBuild, tmp: Path, args: dict[str, Any],
                    values: dict[str, str], stack: ExitStack) -> Qemu:
        assert vec.peer is not None
        incoming = vec.peer.command == "migrate-incoming"
        peer = Qemu(build, _options(vec, incoming, self.timeout), "peer")
        stack.enter_context(peer.start(tmp))
        _prepare(peer, vec)
        _pass_fds(peer, vec.peer.fds, values, stack)
        reply = peer.execute(vec.peer.command, args)
        if not reply.ok:
            raise CommandFailed(reply)
        if vec.peer.when == "before" and vec.peer.command == "migrate":
            status, err = _migration_state(peer, MIGRATION_TIMEOUT)
            if status != "completed":
                raise QemuError(f"the other side's migrate ended {status}: {err}")
        return peer

    def _observe(self, reply: Reply) -> Observation:
        if reply.ok:
            return Observation("accept")
        return Observation("reject", error_class=reply.error_class, desc=reply.desc)

    def _follow(self, vec: Vector, subject: Qemu, peer: Qemu | None, obs: Observation) -> None:
        """Follow an accepted command: a migrate always, a migrate-incoming when it has a peer."""
        if vec.command == "migrate-incoming" and peer is None:
            return
        obs.migration, obs.migration_error = _migration_state(subject, MIGRATION_TIMEOUT)
        if peer is not None and obs.migration == "completed":
            obs.peer_migration, err = _migration_state(peer, MIGRATION_TIMEOUT)
            obs.migration_error = obs.migration_error or err
        elif peer is not None:
            obs.peer_migration = peer.query_migrate().get("status")
