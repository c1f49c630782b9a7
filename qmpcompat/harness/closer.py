"""Teardown off the caller's path: jobs run in order on one background thread.

A QEMU killed with SIGKILL is gone for every purpose a caller has, but the
kernel takes a few milliseconds to tear it down, and what it left behind (its
escaped children, its private dir) is removed after that. ``Closer.later``
hands such work to one thread, in the order it was handed over (a case's dir is
removed after its QEMUs are reaped); ``close`` waits for all of it. A job handed
over once the closer is closed (or while the interpreter exits) runs at once.
"""

from __future__ import annotations

from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor


class Closer:
    """One background thread that runs teardown jobs in the order given."""

    def __init__(self) -> None:
        self._pool: ThreadPoolExecutor | None = None  # made with the first job
        self._closed = False

    def later(self, job: Callable[[], object]) -> None:
        """Run ``job`` on the closing thread, after every job handed over before."""
        if self._closed:
            job()
            return
        if self._pool is None:
            self._pool = ThreadPoolExecutor(1, thread_name_prefix="qmpcompat-close")
        try:
            self._pool.submit(job)
        except RuntimeError:  # cannot schedule new futures after interpreter shutdown
            job()

    def close(self) -> None:
        """Wait until every job handed over has run; later jobs run at once."""
        self._closed = True
        if self._pool is not None:
            self._pool.shutdown(wait=True)
