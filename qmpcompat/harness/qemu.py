"""Drive one QEMU over QMP: start it, run commands, read events, stop it.

A ``Qemu`` is synchronous to its caller; underneath it uses qemu.qmp's
asyncio client. A started QEMU holds a ``Session`` (its event loop, client
and event listener), which exists exactly while QEMU runs. Each QEMU
has an ``EventLoop`` of its own unless it is given one to share (a
``QemuPool`` shares one, so that its spares' handshakes go on while another
QEMU answers); there is no module-global loop. QMP always goes over a unix
socket in a private 0700 directory; QEMU connects to us, so there is no
start-up race.

The asynchronous parts are in ``qmpcompat.harness.session``. Every wait for
QEMU (``_await``) is named steps: ``_started`` (the session, or
QemuError), ``_watch`` (run the coroutine while watching the process; say how
the wait ended, a ``WaitEnd``), then the result, or ``_failure`` (QemuDied,
QemuHung or QemuError with QEMU's stderr tail).
"""

from __future__ import annotations

import asyncio
import contextlib
import shutil
import time
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

from qemu.qmp import EventListener, ExecuteError

from qmpcompat.errors import EnvironmentFault, QemuDied, QemuError, QemuHung
from qmpcompat.harness.forkserver import ForkServer
from qmpcompat.harness.isolation import environment_fault, prefix
from qmpcompat.harness.process import Child, private_dir
from qmpcompat.harness.reply import CommandFailed, Reply, wire
from qmpcompat.harness.session import CONNECTION_LOST, Client, EventLoop, Session, WaitEnd
from qmpcompat.provision.build import QemuBuild
from qmpcompat.safety import Policy, check_command, check_options, qemu_opt
from qmpcompat.types import JSON, JSONObject, json_object

T = TypeVar("T")
MAX_TIMEOUT = 3600.0  # seconds: the longest start-up or command timeout a run may set
QUICK_SPAN, QUICK_INTERVAL = 0.1, 0.004  # a migration's first 0.1 s: query-migrate every 4 ms or less


@dataclass
class QemuOptions:
    machine: str = "none"
    incoming_defer: bool = False
    extra_args: Sequence[str] = ()
    timeout: float = 10.0  # seconds for start-up and for each command
    memory: str | None = None


@dataclass
class Qemu:
    """One QEMU process with a negotiated QMP session.

    Use as a context manager; teardown always kills the process and removes
    its private directory. ``workdir`` is that private directory: tests may put
    migration sockets and files in it.

    Every QEMU passes the safety gate: its command line before it starts, every
    command before it is sent (``UnsafeInput`` if refused). ``policy`` says what
    the case may touch; by default its own ``workdir``, no exec beyond the sinks.

    With a ``spawner`` (a ``ForkServer`` of the same build and options), the
    process is forked from it rather than started by exec
    (``ForkServerUnavailable`` when it no longer serves: the caller decides).
    """

    build: QemuBuild
    options: QemuOptions = field(default_factory=QemuOptions)
    name: str = "qemu"
    policy: Policy | None = None
    loop: EventLoop | None = None  # shared with other QEMUs; by default one of its own
    spawner: ForkServer | None = None
    workdir: Path = field(init=False)
    child: Child | None = field(init=False, default=None)
    events: list[JSONObject] = field(init=False, default_factory=list)
    greeting: JSONObject = field(init=False, default_factory=dict)
    _session: Session | None = field(init=False, default=None)
    _owns_dir: bool = field(init=False, default=True)
    _accepting: asyncio.Task[None] | None = field(init=False, default=None)

    # -- lifecycle ------------------------------------------------------------

    def qemu_options(self, qmp_path: Path) -> list[str]:
        """The command line after the build's own prefix: what the gate checks."""
        opts = self.options
        argv = ["-M", opts.machine, "-nodefaults", "-display", "none",
                "-qmp", f"unix:{qemu_opt(str(qmp_path))}"]
        if opts.memory:
            argv += ["-m", opts.memory]
        if opts.incoming_defer:
            argv += ["-incoming", "defer"]
        return argv + list(opts.extra_args)

    def argv(self, qmp_path: Path) -> list[str]:
        return [*self.build.command(), *self.qemu_options(qmp_path)]

    def fork_server(self) -> ForkServer:
        """A fork server (not started) for QEMUs of this build and options, named
        like this one: each forked QEMU finds its QMP socket in its own dir."""
        return ForkServer(self.build, self.qemu_options, f"{self.name}.qmp", self.options.timeout)

    def start(self, workdir: Path | None = None) -> Qemu:
        """Start QEMU and negotiate QMP; raise QemuDied / QemuHung if it fails to."""
        return self.launch(workdir).ready()

    def launch(self, workdir: Path | None = None) -> Qemu:
        """Start the process and begin the QMP handshake without waiting for it: the
        handshake goes on whenever this process's event loop runs (e.g. while another
        QEMU answers a command). ``ready`` finishes it."""
        self._owns_dir = workdir is None
        self.workdir = workdir or private_dir()
        policy = self.policy = self.policy or Policy.for_case(self.workdir)
        sock = self.workdir / f"{self.name}.qmp"
        try:
            check_options(self.qemu_options(sock), policy)
            events = self.loop or EventLoop()
            events.acquire()
            session = self._session = Session(events, Client(self.name), EventListener())
            session.qmp.register_listener(session.listener)
            session.run(session.qmp.start_server(str(sock)))
            stderr = self.workdir / f"{self.name}.stderr"
            if self.spawner is None:
                self.child = Child([*prefix(self.build), *self.argv(sock)], self.build.environ(),
                                   stderr)
            elif self.spawner.options == self.qemu_options(Path(sock.name)):
                self.child = self.spawner.spawn(self.workdir, stderr)  # (cwd: the workdir)
            else:
                raise QemuError(f"QEMU {self.name}: its fork server has other options")
            self._accepting = session.loop.create_task(session.qmp.accept())
        except BaseException:
            self.close()
            raise
        return self

    def ready(self) -> Qemu:
        """Finish the handshake ``launch`` began; raise QemuDied / QemuHung if QEMU
        does not get there (the start-up timeout counts from this call)."""
        task, self._accepting = self._accepting, None
        if task is not None:
            try:
                self._await(task, "while starting up")
            except BaseException:
                self.close()
                raise
            qmp = self._started().qmp
            raw = wire(qmp.greeting._asdict()) if qmp.greeting else {}
            self.greeting = dict(json_object(raw.get("QMP") or {}))
        return self

    def __enter__(self) -> Qemu:
        return self.start() if self.child is None else self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self, later: Callable[[Callable[[], object]], object] | None = None,
              ) -> int | None:
        """Disconnect, kill the process, remove the private dir. Returns the exit status
        (None if it was still running and had to be killed by us). With ``later``
        (e.g. a thread pool's ``submit``), QEMU is sent SIGKILL at once and waiting
        for it to go, killing what it left behind and removing the dir are handed
        to ``later``: the caller goes on while the kernel tears QEMU down."""
        status = None
        session, self._session = self._session, None
        accepting, self._accepting = self._accepting, None
        if self.child is not None:
            status = self.child.poll()
            if later is not None:
                self.child.signal_kill()  # the disconnect below then meets a closed socket
        if session is not None:
            if accepting is not None:
                accepting.cancel()
                with contextlib.suppress(BaseException):
                    session.run(accepting)
            session.close()
        workdir = self.workdir if self._owns_dir and getattr(self, "workdir", None) else None
        child = self.child

        def finish() -> None:
            if child is not None:
                child.kill()
            if workdir is not None:
                shutil.rmtree(workdir, ignore_errors=True)

        if later is None:
            finish()
        else:
            later(finish)
        return status

    def commands(self, steps: Sequence[tuple[str, Mapping[str, JSON] | None]]) -> list[JSON]:
        """Send several commands the caller needs to succeed at once (pipelined: one
        round trip for all of them) and return their results in order;
        CommandFailed for the first that fails. Each passes the safety gate first."""
        session = self._started()
        policy = self.policy or Policy.for_case(self.workdir)
        for command, arguments in steps:
            check_command(command, arguments, policy)
        what = "after " + ", ".join(c for c, _ in steps)
        async def every() -> list[object]:  # gathered on the session's own loop
            return list(await asyncio.gather(*(session.qmp.execute(c, a) for c, a in steps)))

        try:
            results = self._await(every(), what)
        except ExecuteError as exc:
            name = str(dict(exc.sent).get("execute"))
            raise CommandFailed(Reply(name, next((a for c, a in steps if c == name), None),
                                      error_class=exc.error_class,
                                      desc=exc.error.error.desc)) from None
        finally:
            self._drain_events()
        return [wire(result) for result in results]

    def shares_loop(self, other: Qemu) -> bool:
        """Whether ``other`` runs on this QEMU's event loop (then the two cannot be
        waited for from two threads at once)."""
        return self.loop is not None and self.loop is other.loop

    @property
    def alive(self) -> bool:
        return self.child is not None and self.child.poll() is None

    @property
    def version(self) -> tuple[int, int, int]:
        v = json_object(json_object(self.greeting.get("version", {})).get("qemu", {}))
        major, minor, micro = (v.get(part, 0) for part in ("major", "minor", "micro"))
        if isinstance(major, int) and isinstance(minor, int) and isinstance(micro, int):
            return (major, minor, micro)
        raise QemuError(f"the QMP greeting's version is not three numbers: {v}", "")

    def stderr_tail(self) -> str:
        return self.child.stderr_tail() if self.child else ""

    # -- the event loop bridge ---------------------------------------------------

    def _started(self) -> Session:
        """The session of a launched QEMU; QemuError when it is not (or is closed)."""
        if self._session is None:
            raise QemuError(f"QEMU {self.name} is not started")
        return self._session

    def _await(self, coro: Awaitable[T], what: str, timeout: float | None = None) -> T:
        """Run ``coro`` while watching the process: QEMU's death or silence becomes
        QemuDied / QemuHung with its stderr tail, never a bare connection error;
        an ExecuteError (QEMU refused the command) is the caller's to handle."""
        session = self._started()
        timeout = self.options.timeout if timeout is None else timeout
        task: asyncio.Future[T] = asyncio.ensure_future(coro, loop=session.loop)
        end = self._watch(session, task, time.monotonic() + timeout)
        if end is WaitEnd.FINISHED:
            exc = task.exception()
            if exc is None:
                return task.result()
            if isinstance(exc, ExecuteError):
                raise exc
        else:
            with contextlib.suppress(BaseException):  # stop waiting for it
                task.cancel()
                session.run(task)
        raise self._failure(task, what, timeout)

    def _watch(self, session: Session, task: asyncio.Future[T], deadline: float) -> WaitEnd:
        """Run the loop until ``task`` finishes, QEMU exits or ``deadline`` passes."""
        ended: list[WaitEnd] = []

        async def watch() -> None:
            while not task.done():
                if self.child is not None and self.child.poll() is not None:
                    await asyncio.sleep(0.05)  # let a final reply or EOF arrive
                    ended.append(WaitEnd.EXITED)
                    return
                if time.monotonic() > deadline:
                    ended.append(WaitEnd.TIMED_OUT)
                    return
                await asyncio.sleep(0.005)

        watcher = session.loop.create_task(watch())
        both: list[asyncio.Future[Any]] = [task, watcher]
        session.run(asyncio.wait(both, return_when=asyncio.FIRST_COMPLETED))
        watcher.cancel()
        if task.done() and not task.cancelled():
            return WaitEnd.FINISHED
        return ended[0] if ended else WaitEnd.TIMED_OUT

    def _failure(self, task: asyncio.Future[Any], what: str, timeout: float) -> BaseException:
        """The error for a wait that gave no result: QemuDied when QEMU exited (now
        or within a moment), QemuHung when it stayed silent past ``timeout`` (it is
        killed), QemuError when the connection broke while it still ran; any other
        exception of the coroutine as it is."""
        status = self.child.poll() if self.child else None
        if status is None and self.child is not None:
            status = self.child.wait(0.5)
        if status is not None:
            return self._died(what, status)
        lost = task.exception() if task.done() and not task.cancelled() else None
        if lost is not None and not isinstance(lost, CONNECTION_LOST):
            return lost
        if lost is not None and self.child is not None:
            status = self.child.wait(2.0)
            if status is not None:
                return self._died(what, status)
        tail = self.stderr_tail()
        if self.child is not None:
            self.child.kill()
        if lost is None:
            return QemuHung(what, timeout, tail)
        return QemuError(f"QMP connection lost {what}: {lost}", tail)

    def _died(self, what: str, status: int) -> QemuError:
        """QemuDied, or EnvironmentFault when QEMU's stderr says its environment
        (a module or firmware of another build, or none found) killed it."""
        tail = self.stderr_tail()
        whole = self.child.stderr_path.read_text(errors="replace") if self.child else ""
        cause = environment_fault(self.build, whole[-20000:] if whole else tail)
        if cause:
            return EnvironmentFault(what, status, cause, tail)
        return QemuDied(what, status, tail)

    # -- commands ------------------------------------------------------------

    def execute(self, command: str, arguments: Mapping[str, JSON] | None = None,
                timeout: float | None = None) -> Reply:
        """Run one command; return its result or error. QEMU dying or hanging raises;
        so does a command the safety gate refuses (UnsafeInput, nothing sent)."""
        session = self._started()
        check_command(command, arguments, self.policy or Policy.for_case(self.workdir))
        start = time.monotonic()
        try:
            result = self._await(session.qmp.execute(command, arguments), f"after {command}",
                                 timeout)
        except ExecuteError as exc:
            reply = Reply(command, arguments, error_class=exc.error_class, desc=exc.error.error.desc,
                          seconds=time.monotonic() - start)
        else:
            reply = Reply(command, arguments, result=wire(result), seconds=time.monotonic() - start)
        self._drain_events()
        return reply

    def cmd(self, command: str, arguments: Mapping[str, JSON] | None = None) -> JSON:
        """Run a command the caller needs to succeed; raise CommandFailed if it does not."""
        reply = self.execute(command, arguments)
        if not reply.ok:
            raise CommandFailed(reply)
        return reply.result

    def send_fd(self, fdname: str, fd: int) -> None:
        """Pass ``fd`` to QEMU and name it ``fdname`` (``getfd``)."""
        self._started().qmp.send_fd_scm(fd)
        self.cmd("getfd", {"fdname": fdname})

    def _drain_events(self) -> None:
        if self._session is not None:
            self.events.extend(wire(dict(e)) for e in self._session.listener.clear())

    def wait_event(self, name: str, timeout: float | None = None) -> JSONObject:
        """Return the first event called ``name`` (already seen or still to come)."""
        listener = self._started().listener
        self._drain_events()
        for ev in self.events:
            if ev.get("event") == name:
                return ev

        async def next_named() -> JSONObject:
            while True:
                ev = wire(dict(await listener.get()))
                self.events.append(ev)
                if ev.get("event") == name:
                    return ev

        return self._await(next_named(), f"waiting for event {name}", timeout)

    # -- migration -------------------------------------------------------------

    def query_migrate(self) -> JSONObject:
        return dict(json_object(self.cmd("query-migrate") or {}))

    def wait_migration(self, final: Sequence[str] = ("completed", "failed", "cancelled"),
                       timeout: float = 30.0, interval: float = 0.02) -> JSONObject:
        """Poll ``query-migrate`` until its status is one of ``final``; QemuHung if not in
        time. The first polls come quickly (1 ms, doubling up to ``QUICK_INTERVAL``
        for the first ``QUICK_SPAN`` seconds, then up to ``interval``): most migrations of a
        machine without RAM end within a few milliseconds, of a small guest within
        a few dozen."""
        start = time.monotonic()
        deadline = start + timeout
        pause = min(0.001, interval)
        while True:
            info = self.query_migrate()
            if info.get("status") in final:
                return info
            now = time.monotonic()
            if now > deadline:
                tail = self.stderr_tail()
                if self.child is not None:
                    self.child.kill()
                raise QemuHung(f"to finish migrating (last status {info.get('status')!r})",
                               timeout, tail)
            time.sleep(pause)
            cap = QUICK_INTERVAL if now - start < QUICK_SPAN else interval
            pause = min(pause * 2, interval, cap)


def check_starts(build: QemuBuild, timeout: float) -> None:
    """Start ``build`` once and finish the QMP handshake within ``timeout``
    seconds (QemuDied / QemuHung if not)."""
    with Qemu(build, QemuOptions(timeout=timeout)):
        pass
