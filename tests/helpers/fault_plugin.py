"""A pytest plugin for the hygiene tests: makes one vector's QEMU misbehave on
purpose, right before the command under test.

Enabled with ``-p helpers.fault_plugin`` (tests/ on PYTHONPATH) and
``QMPCOMPAT_TEST_FAULT=KIND:VECTOR[:MARKER]``, KIND being
- ``crash``: SIGSEGV the QEMU under test;
- ``hang``: SIGSTOP it (the harness's timeout must kill it and report a hang);
- ``stall``: in the first such case, write this process's pid and the QEMU's
  to MARKER, then sleep, so that the test can interrupt or kill the run while
  a QEMU is alive.
"""

from __future__ import annotations

import os
import signal
import time
from collections.abc import Generator
from pathlib import Path
from typing import Any

import pytest

from qmpcompat.harness import qemu as qemu_module

_current: list[str] = [""]


def pytest_configure(config: pytest.Config) -> None:
    spec = os.environ.get("QMPCOMPAT_TEST_FAULT")
    if not spec:
        return
    kind, vector, *rest = spec.split(":")
    original = qemu_module.Qemu.execute

    def execute(self: Any, command: str, arguments: Any = None, timeout: float | None = None) -> Any:
        if (self.name == "subject" and command in ("migrate", "migrate-incoming")
                and f"[{vector}-qemu-" in _current[0] and self.child is not None):
            if kind == "crash":
                os.kill(self.child.pid, signal.SIGSEGV)
            elif kind == "hang":
                os.kill(self.child.pid, signal.SIGSTOP)
            elif kind == "stall" and _first(Path(rest[0])):  # stall the first case only
                Path(rest[0]).write_text(f"{os.getpid()} {self.child.pid}")
                time.sleep(120)
        return original(self, command, arguments, timeout)

    qemu_module.Qemu.execute = execute  # type: ignore[method-assign]


def _first(marker: Path) -> bool:
    """True for the one process that makes ``marker`` (made here, atomically: two
    workers that reach the case at once do not both stall)."""
    try:
        os.close(os.open(marker, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o644))
    except FileExistsError:
        return False
    return True


@pytest.hookimpl(wrapper=True)
def pytest_runtest_protocol(item: pytest.Item, nextitem: pytest.Item | None) -> Generator[None, Any, Any]:
    _current[0] = item.nodeid
    try:
        return (yield)
    finally:
        _current[0] = ""
