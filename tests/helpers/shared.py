"""Set-ups made once per pytest session for every xdist worker: the first test
that asks for one makes it while the others wait, then all read it. (A
session-scoped fixture alone is made once per worker, a module-scoped one once
per worker the module's tests land on.)"""

from __future__ import annotations

import fcntl
import re
import shutil
from collections.abc import Callable
from pathlib import Path

import pytest


class Shared:
    """The set-ups of one session, in a directory all its processes see: the
    xdist workers' common base temp dir (each worker's own is below it), or the
    base temp dir of a run without xdist."""

    def __init__(self, config: pytest.Config, factory: pytest.TempPathFactory) -> None:
        base = factory.getbasetemp()
        self.root = (base.parent if hasattr(config, "workerinput") else base) / "shared"
        self.root.mkdir(exist_ok=True)

    def once(self, name: str, make: Callable[[Path], object]) -> Path:
        """The directory ``name``, filled by ``make`` the first time any process
        of the session asks for it. A ``make`` that fails leaves nothing behind,
        so the next test to ask tries again (and fails with its own error)."""
        slug = re.sub(r"[^A-Za-z0-9_.,=-]+", "_", name)
        path, done = self.root / slug, self.root / f"{slug}.done"
        with (self.root / f"{slug}.lock").open("w") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)  # released when the file closes
            if not done.exists():
                shutil.rmtree(path, ignore_errors=True)
                path.mkdir()
                make(path)
                done.touch()
        return path
