"""A pytest plugin for the lost-cell tests: stalls the first cell at its source's
``migrate``, so that the test can kill the worker running it.

Enabled with ``-p helpers.fault_consumer`` (tests/ on PYTHONPATH) and
``QMPCOMPAT_TEST_STALL_CONSUMER=MARKER``: the first such cell writes this
process's pid and the source QEMU's to MARKER, then sleeps. The source is the
QEMU named ``$QMPCOMPAT_TEST_STALL_SIDE``: ``source`` (a consumer cell's, the
default) or ``subject`` (a cross-version cell's)."""

from __future__ import annotations

import os
import time
from pathlib import Path
from typing import Any

import pytest

from qmpcompat.harness import qemu as qemu_module


def pytest_configure(config: pytest.Config) -> None:
    marker = os.environ.get("QMPCOMPAT_TEST_STALL_CONSUMER")
    if not marker:
        return
    original = qemu_module.Qemu.execute
    side = os.environ.get("QMPCOMPAT_TEST_STALL_SIDE", "source")

    def execute(self: Any, command: str, arguments: Any = None, timeout: float | None = None) -> Any:
        if self.name == side and command == "migrate" and self.child is not None \
                and not Path(marker).exists():
            Path(marker).write_text(f"{os.getpid()} {self.child.pid}")
            time.sleep(120)
        return original(self, command, arguments, timeout)

    qemu_module.Qemu.execute = execute  # type: ignore[method-assign]
