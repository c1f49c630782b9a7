"""Live QEMUs handed out one at a time, with spares started ahead.

A ``QemuPool`` serves one build and one set of options. ``take`` returns a
QEMU that has finished its QMP handshake; the pool keeps ``spares`` more
launched behind it, whose start-up and handshake go on while the caller talks
to the QEMU it holds (they share the pool's event loop), so a caller that
needs a fresh QEMU often waits less than a whole start for it. ``discard``
gives a QEMU back to be killed: SIGKILL at once, and the rest of its teardown
(waiting for it to go, what it left behind, its private dir) on the pool's own
closing thread, so the caller goes on at once; ``close`` waits for all of it.

With ``fork`` (the default), the pool's QEMUs are forked from a fork server
(``qmpcompat.harness.forkserver``) started with the first; when there can be
none, or it stops serving, the pool starts them by exec and ``exec_reason``
says why.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable

from qmpcompat.errors import ForkServerUnavailable
from qmpcompat.harness.closer import Closer
from qmpcompat.harness.forkserver import ForkServer
from qmpcompat.harness.qemu import Qemu, QemuOptions
from qmpcompat.harness.session import EventLoop
from qmpcompat.provision.build import QemuBuild


class QemuPool:
    """Fresh QEMUs of one build and option set; ``spares`` launched ahead."""

    def __init__(self, build: QemuBuild, options: QemuOptions, spares: int = 1,
                 name: str = "subject", fork: bool = True) -> None:
        self.build, self.options, self.spares, self.name = build, options, spares, name
        self._launched: deque[Qemu] = deque()
        self.started = 0  # QEMUs launched, spares included
        self.forked = 0  # ... of them forked from the fork server
        self.exec_reason = "" if fork else "the fork server is off"  # why QEMUs are exec'd
        self._server: ForkServer | None = None
        self.loop = EventLoop()  # every QEMU of the pool runs on it
        self.loop.acquire()
        self._closer = Closer()

    def _launch(self) -> None:
        qemu = Qemu(self.build, self.options, self.name, loop=self.loop)
        if not self.exec_reason and self._server is None:
            try:
                self._server = qemu.fork_server().start()
            except ForkServerUnavailable as exc:
                self.exec_reason = exc.reason
        qemu.spawner = self._server
        try:
            qemu.launch()
        except ForkServerUnavailable as exc:  # it stopped serving: exec from now on
            self._stop_server(exc.reason)
            qemu = Qemu(self.build, self.options, self.name, loop=self.loop).launch()
        self.forked += qemu.spawner is not None
        self._launched.append(qemu)
        self.started += 1

    @property
    def fork_server(self) -> ForkServer | None:
        """The fork server the pool's QEMUs come from, once one is serving."""
        return self._server

    def _stop_server(self, reason: str) -> None:
        self.exec_reason = reason
        server, self._server = self._server, None
        if server is not None:
            self.later(lambda: server.close(forked=False))  # the QEMUs it forked live on

    def take(self) -> Qemu:
        """A fresh QEMU that has finished its handshake (the caller closes it);
        QemuDied / QemuHung when it cannot start."""
        if not self._launched:
            self._launch()
        qemu = self._launched.popleft()
        while len(self._launched) < self.spares:
            self._launch()
        return qemu.ready()

    def discard(self, qemu: Qemu) -> None:
        """Kill a QEMU the pool handed out; its teardown finishes in the background."""
        qemu.close(later=self.later)

    def later(self, job: Callable[[], object]) -> None:
        """Run ``job`` on the closing thread, after every teardown handed to it before
        (at once, here, once the pool is closed or the interpreter is exiting)."""
        self._closer.later(job)

    def close(self) -> None:
        """Kill every spare not handed out, and wait for every discarded QEMU to be gone."""
        while self._launched:
            self._launched.popleft().close()
        self._closer.close()
        if self._server is not None:  # last: closing it kills what it forked
            self._server.close()
            self._server = None
        self.loop.release()  # closed once the QEMUs handed out are closed too
