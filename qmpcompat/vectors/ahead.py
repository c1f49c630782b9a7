"""Cases that wait run ahead of their turn, beside the others.

A few vectors spend seconds waiting rather than working (``waits``): a
``cancel-after`` case waits that long before it cancels, and a vsock connect
that nobody answers waits out the kernel's connect timeout (2 s). Run in turn,
each holds a worker idle that long. ``Ahead`` runs them on background threads
from the start of the run instead, each on a fresh QEMU of its own, while the
workers go on with the other cases; when a case's turn comes, its test takes
the observation already made (waiting for it if it is still running).

Every process of a run (the xdist workers, or the one process of a serial
run) shares one directory. A case is run by whoever claims it first (a file
made with ``O_EXCL``): a background thread of any worker, or the test itself
when its turn comes before anyone has claimed it (it then runs as any other
case does). Its observation is written there as JSON; a test whose case was
claimed elsewhere waits for it, and runs the case itself when the thread that
claimed it could not make one (it says so with a ``.none`` file), or when none
comes within ``TAKE_TIMEOUT`` (a worker that died holding the claim).
"""

from __future__ import annotations

import hashlib
import json
import os
import threading
import time
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from qmpcompat.provision import QemuBuild
from qmpcompat.types import json_object
from qmpcompat.vectors.model import Vector
from qmpcompat.vectors.observation import Observation
from qmpcompat.vectors.run import Runner

THREADS = 1  # background threads per process: each holds one case (one bare QEMU) at a time
TAKE_TIMEOUT = 120.0  # seconds a test waits for a case claimed elsewhere before running it itself
VSOCK_CONNECT_WAIT = 2.0  # the kernel's vsock connect timeout (VSOCK_DEFAULT_CONNECT_TIMEOUT)


def waits(vec: Vector) -> float:
    """The seconds a case of ``vec`` may spend waiting rather than working: its
    ``cancel-after`` (then as long again for the cancel to end it), or the
    kernel's vsock connect timeout for a ``migrate`` over vsock; 0 for any other."""
    if vec.cancel_after is not None:
        return 2 * vec.cancel_after
    if vec.command == "migrate" and "vsock" in vec.features:
        return VSOCK_CONNECT_WAIT
    return 0.0


def _key(vec: Vector, build: QemuBuild) -> str:
    return hashlib.sha256(f"{vec.id}\0{vec.file}\0{build.binary}".encode()).hexdigest()[:24]


def _claim(path: Path) -> bool:
    """True for the one thread or process that makes ``path``."""
    try:
        os.close(os.open(path, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o600))
    except FileExistsError:
        return False
    return True


class Ahead:
    """The waiting cases of one process's run, run ahead on ``THREADS`` threads.

    ``cases`` are every (vector, build) the run will check that ``waits``; every
    process of the run passes the same list and ``directory``. ``offset`` says
    where in the list this process's threads begin (so two workers start on
    different cases)."""

    def __init__(self, directory: Path, cases: Sequence[tuple[Vector, QemuBuild]],
                 timeout: float, allow_exec: bool) -> None:
        self.directory = directory
        self.cases = list(cases)
        self._keys = {(v.id, v.file, b.binary): _key(v, b) for v, b in self.cases}
        self.timeout, self.allow_exec = timeout, allow_exec
        self._stop = threading.Event()
        self._pool: ThreadPoolExecutor | None = None
        self.ran = 0  # cases this process's threads ran

    def start(self, offset: int = 0) -> Ahead:
        """Start the background threads (a no-op without cases). The first case
        each thread runs is claimed before this returns, so that no test, however
        soon its turn comes, finds it unclaimed."""
        if self.cases and self._pool is None:
            self._pool = ThreadPoolExecutor(THREADS, thread_name_prefix="qmpcompat-ahead")
            n = len(self.cases)
            for i in range(n):
                vec, build = self.cases[(offset + i) % n]
                first = i < THREADS and _claim(self._paths(_key(vec, build))[0])
                self._pool.submit(self._run_one, vec, build, first)
        return self

    def _paths(self, key: str) -> tuple[Path, Path, Path]:
        """The claim, the observation, and the mark of a claim that gave none."""
        return (self.directory / f"{key}.claim", self.directory / f"{key}.json",
                self.directory / f"{key}.none")

    def _run_one(self, vec: Vector, build: QemuBuild, claimed: bool = False) -> None:
        claim, result, none = self._paths(_key(vec, build))
        if not claimed and (self._stop.is_set() or not _claim(claim)):
            return
        try:
            with Runner(self.timeout, allow_exec=self.allow_exec) as runner:
                obs = runner.run(vec, build)
            partial = result.with_suffix(".part")
            partial.write_text(json.dumps(obs.to_json()))
            partial.rename(result)  # whole, or not there
        except BaseException:
            none.touch()  # its test runs the case itself, and meets what went wrong
            raise
        self.ran += 1

    def take(self, vec: Vector, build: QemuBuild) -> Observation | None:
        """The observation of a case run ahead (waited for while it runs); None when
        the caller is to run the case itself: it is not a waiting case of this
        run, or its turn came before anyone claimed it (it is claimed now), or
        the thread that claimed it made none, or none came within ``TAKE_TIMEOUT``."""
        key = self._keys.get((vec.id, vec.file, build.binary))
        if key is None:
            return None
        claim, result, none = self._paths(key)
        if _claim(claim):
            return None
        deadline = time.monotonic() + TAKE_TIMEOUT
        while not result.exists():
            if none.exists() or time.monotonic() > deadline:
                return None
            time.sleep(0.01)
        obs = Observation.from_json(json_object(json.loads(result.read_text())))
        obs.ahead = True
        return obs

    def close(self) -> None:
        """Start no more cases; wait for those running to end."""
        self._stop.set()
        if self._pool is not None:
            self._pool.shutdown(wait=True, cancel_futures=True)
