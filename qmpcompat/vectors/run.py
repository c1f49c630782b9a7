"""Run one vector on one QEMU build and say what happened (an ``Observation``).

The runner fills in placeholders, starts the QEMU under test (and the real
other side's process at the same time; the other side gets its command when
its turn comes: before the command, or after an accepted migration that
completed), passes declared fds, runs the command, follows an accepted
migration to its end, and checks QEMU still answers. It never judges:
``match`` compares the observation with the vector.
"""

from __future__ import annotations

import shutil
import socket
import time
from collections.abc import Callable
from contextlib import ExitStack
from functools import partial
from pathlib import Path

from qmpcompat import guest
from qmpcompat.errors import QemuDied, QemuError, QemuHung, UnsafeInput
from qmpcompat.harness import Qemu
from qmpcompat.harness.closer import Closer
from qmpcompat.harness.process import private_dir
from qmpcompat.provision import QemuBuild
from qmpcompat.safety import Policy, fill
from qmpcompat.vectors.model import Vector
from qmpcompat.vectors.observation import Observation, observe
from qmpcompat.vectors.plan import qemu_options
from qmpcompat.vectors.safety import check_vector
from qmpcompat.vectors.sides import (
    MIGRATION_TIMEOUT,
    FdMaker,
    GuestSide,
    Sides,
    migration_state,
    prepare,
)

__all__ = ["MIGRATION_TIMEOUT", "GuestSide", "Observation", "Runner", "free_port",
           "migration_state", "observe"]


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class Runner:
    """Runs vectors on builds; one instance per pytest worker. Every vector passes
    the safety gate first (a refused one starts no QEMU and is observed as an
    ``error`` saying why); ``allow_exec`` is the gate's only widening.

    A case's QEMUs are killed (SIGKILL) the moment its observation is made; the
    rest of their teardown (reaping them, then removing the case dir) runs on the
    runner's closing thread while the next case starts. ``close`` waits for it."""

    def __init__(self, timeout: float = 10.0, keep_dirs: bool = False,
                 allow_exec: bool = False,
                 between: Callable[[Path], None] | None = None) -> None:
        self.timeout = timeout
        self.keep_dirs = keep_dirs
        self.allow_exec = allow_exec
        # Called with the case dir once a migrate has written its stream and before
        # the side that reads it back starts (qmpcompat's own tests damage a stream here).
        self.between = between
        # Where a case run ahead of its turn is taken from (``qmpcompat.vectors.ahead``;
        # ``check`` asks it once per case): its observation, or None to run it here.
        self.ahead: Callable[[Vector, QemuBuild], Observation | None] | None = None
        self._closer = Closer()

    def later(self, job: Callable[[], object]) -> None:
        """Hand teardown ``job`` to the closing thread (run after those handed before)."""
        self._closer.later(job)

    def qemu(self, vec: Vector, build: QemuBuild, incoming: bool, name: str, tmp: Path,
             side: GuestSide | None = None, source: bool = False) -> Qemu:
        """A QEMU for one side of ``vec``, gated by the case's policy; with a guest,
        its firmware, devices and the (older side's) versioned machine type."""
        options = qemu_options(vec, incoming, self.timeout, side.files if side else None,
                               side.version if side else None, source)
        return Qemu(build, options, name, Policy.for_case(tmp, self.allow_exec))

    def close(self) -> None:
        """Wait until every case's teardown has finished."""
        self._closer.close()

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
            if not self.keep_dirs:  # after the case's QEMUs are reaped
                self.later(partial(shutil.rmtree, tmp, ignore_errors=True))
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
            sides = Sides(self, vec, peer_build, tmp, values, fds, stack, side)
            stage = "starting the QEMU under test"
            try:
                subject.launch(tmp)
                stack.callback(subject.close, self.later)
                if vec.peer:
                    stage = "setting up the other side"
                    sides.launch_peer()  # both QEMUs start up at once
                stage = "starting the QEMU under test"
                subject.ready()
                prepare(subject, vec, values)
                if vec.peer and vec.peer.when == "before":
                    stage = "setting up the other side"
                    sides.start_peer()
                if side is not None and vec.command == "migrate":
                    stage = "starting the test guest"
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
                who = "the other side" if stage.startswith("setting") or (
                    peer is not None and not peer.alive) else "the QEMU under test"
                kind = "crash" if isinstance(exc, QemuDied) else "hang"
                return Observation(kind, detail=f"{who}, {stage}: {exc}")
            except (QemuError, UnsafeInput, OSError) as exc:
                return Observation("error", detail=f"{stage}: {exc}")
