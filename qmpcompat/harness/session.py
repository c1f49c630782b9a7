"""The asyncio side of a QEMU's QMP connection: qemu.qmp's client (its message
hooks quiet), an event loop shared by its users, and the session a launched
QEMU holds (loop, client, event listener), which exists exactly while QEMU runs.

``Qemu`` (``qmpcompat.harness.qemu``) is synchronous to its callers; everything
asynchronous it needs is here.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable
from dataclasses import dataclass
from enum import Enum
from typing import TypeVar

from qemu.qmp import (
    ConnectError,
    EventListener,
    ExecInterruptedError,
    Message,
    QMPClient,
)
from qemu.qmp.protocol import StateError

logging.getLogger("qemu.qmp").setLevel(logging.CRITICAL)
T = TypeVar("T")
# The errors qemu.qmp raises when the connection goes away under a command.
CONNECTION_LOST = (ExecInterruptedError, ConnectError, StateError, EOFError, OSError)


class Client(QMPClient):
    """qemu.qmp's client, its message hooks logging only when debug logging is on:
    the base hooks pretty-print every message for the log first, whatever the
    level (about a tenth of a hunt worker's CPU)."""

    def _cb_outbound(self, msg: Message) -> Message:
        if self.logger.isEnabledFor(logging.DEBUG):
            return super()._cb_outbound(msg)
        return msg

    def _cb_inbound(self, msg: Message) -> Message:
        if self.logger.isEnabledFor(logging.DEBUG):
            return super()._cb_inbound(msg)
        return msg


class WaitEnd(Enum):
    """How one wait for QEMU ended."""

    FINISHED = "finished"  # the coroutine finished: a result or an exception
    EXITED = "exited"      # QEMU's process exited first
    TIMED_OUT = "timed out"  # neither happened within the timeout


class EventLoop:
    """An asyncio event loop shared by its users (QEMUs, a pool): each ``acquire``
    counts one, each ``release`` lets one go, and the last release closes it."""

    def __init__(self) -> None:
        self.loop = asyncio.new_event_loop()
        self._users = 0

    def acquire(self) -> asyncio.AbstractEventLoop:
        self._users += 1
        return self.loop

    def release(self) -> None:
        self._users -= 1
        if self._users <= 0 and not self.loop.is_closed():
            self.loop.close()


@dataclass
class Session:
    """A launched QEMU's QMP side: its event loop, client and event listener. It
    exists from the moment the QMP server listens until ``close``."""

    events: EventLoop
    qmp: QMPClient
    listener: EventListener

    @property
    def loop(self) -> asyncio.AbstractEventLoop:
        return self.events.loop

    def run(self, coro: Awaitable[T]) -> T:
        return self.loop.run_until_complete(coro)

    def close(self) -> None:
        with contextlib.suppress(Exception):
            self.run(asyncio.wait_for(self.qmp.disconnect(), 2))
        self.events.release()
