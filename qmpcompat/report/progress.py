"""The progress line of a long run: per-version counts, the current vector,
and the time left, printed every few seconds (so CI logs stay short)."""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Callable

from qmpcompat.types import JSONObject, Outcome, label_order

MARKS = {Outcome.PASSED: "ok", Outcome.FAILED: "FAIL", Outcome.XFAILED: "known",
         Outcome.SKIPPED: "skip", Outcome.ERROR: "ERR"}


class Progress:
    """Feed it each finished case's record; it calls ``write`` with a line at
    most every ``interval`` seconds, and always for the last case."""

    def __init__(self, total: int, write: Callable[[str], None], interval: float = 5.0) -> None:
        self.total = total
        self.write = write
        self.interval = interval
        self.done = 0
        self.start = time.monotonic()
        self.last = self.start
        self.per_version: dict[str, Counter[str]] = {}

    def update(self, test: str, record: JSONObject | None) -> None:
        """One test finished; ``record`` is its case record, if it is a case."""
        self.done += 1
        if record is not None:
            self.per_version.setdefault(str(record["qemu"]), Counter())[str(record["outcome"])] += 1
        now = time.monotonic()
        if now - self.last >= self.interval or self.done >= self.total:
            self.last = now
            current = f"{record['vector']} on {record['qemu']}" if record else test.split("::")[-1]
            self.write(self.line(current, now))

    def line(self, current: str, now: float) -> str:
        elapsed = now - self.start
        left = elapsed / self.done * max(self.total - self.done, 0) if self.done else 0.0
        counts = "  ".join(
            f"{label}: " + " ".join(f"{n} {MARKS[Outcome(o)]}" for o, n in sorted(c.items()))
            for label, c in sorted(self.per_version.items(), key=lambda lc: label_order(lc[0])))
        return (f"qmpcompat: {self.done}/{self.total} tests, {elapsed:.0f}s elapsed, "
                f"~{left:.0f}s left; last {current} | {counts}")
