"""Every selected binary starts and speaks QMP; every unusable one is a failure
that says why (the other binaries still run)."""

from __future__ import annotations

import pytest

from qmpcompat.escape import terminal
from qmpcompat.harness import Qemu
from qmpcompat.provision import QemuBuild
from qmpcompat.selection import Problem


def test_qemu_starts(qemu_build: QemuBuild) -> None:
    with Qemu(qemu_build) as q:
        assert q.version == qemu_build.version, (
            f"{qemu_build.binary}: --version says {qemu_build.version_str}, "
            f"the QMP greeting says {'.'.join(map(str, q.version))}")
        assert q.cmd("query-status")["status"] in ("prelaunch", "running", "paused")


def test_qemu_usable(qemu_problem: Problem) -> None:
    pytest.fail(terminal(qemu_problem), pytrace=False)
