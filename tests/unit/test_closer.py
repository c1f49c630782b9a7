"""Teardown off the caller's path (``qmpcompat.harness.closer``): jobs run on one
background thread in the order they were handed over, ``close`` waits for them,
and a job handed over after ``close`` runs at once."""

from __future__ import annotations

import threading
import time

from qmpcompat.harness.closer import Closer


def test_jobs_run_in_order_off_the_callers_thread() -> None:
    closer, done, threads = Closer(), [], set()

    def job(n: int) -> None:
        time.sleep(0.01 * (3 - n))  # the first is the slowest: order is kept all the same
        done.append(n)
        threads.add(threading.current_thread().name)

    for n in range(3):
        closer.later(lambda n=n: job(n))
    assert len(done) < 3  # the caller went on before the teardown ended
    closer.close()
    assert done == [0, 1, 2]
    assert len(threads) == 1 and threading.current_thread().name not in threads
    closer.later(lambda: done.append(3))  # closed: at once, here
    assert done == [0, 1, 2, 3]
