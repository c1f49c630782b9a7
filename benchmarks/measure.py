"""What the benchmark measures with: the floor of a build, the median times of
callables measured in rounds, a sampler of a process tree's memory and QEMUs, and a whole
conformance run in a subprocess (its wall time, cases, peak memory, most QEMUs
alive, and how its cases ran)."""

from __future__ import annotations

import json
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from qmpcompat.harness import Qemu
from qmpcompat.provision import QemuBuild
from qmpcompat.types import Outcome

REPO = Path(__file__).resolve().parents[1]


def interleaved(funcs: dict[str, Callable[[], object]], rounds: int) -> dict[str, float]:
    """The median wall time of each of ``funcs``, over ``rounds`` rounds that call
    each once in turn: a drift of the machine's speed while they are measured
    weighs on all of them alike, so their ratios hold."""
    times: dict[str, list[float]] = {name: [] for name in funcs}
    for _ in range(rounds):
        for name, func in funcs.items():
            start = time.perf_counter()
            func()
            times[name].append(time.perf_counter() - start)
    return {name: statistics.median(t) for name, t in times.items()}


def floor_case(build: QemuBuild) -> Callable[[], None]:
    """One floor case of ``build``: start ``-M none``, finish the QMP handshake,
    quit. Called once before it is timed (the page cache warmed)."""
    def once() -> None:
        with Qemu(build):
            pass

    once()
    return once


def peak_rss_mib(build: QemuBuild) -> float:
    """The peak RSS of a bare QEMU of ``build`` (``-M none``, after the handshake)."""
    with Qemu(build) as q:
        assert q.child is not None
        status = Path(f"/proc/{q.child.pid}/status").read_text()
        rss = int(next(ln.split()[1] for ln in status.splitlines() if ln.startswith("VmHWM")))
    return rss / 1024


PSS_EVERY = 10  # samples between two readings of the tree's PSS (smaps_rollup costs more)


def _kib(path: str, field: str) -> int:
    """A ``field:`` line's kB of a /proc file (0 when the process is gone)."""
    try:
        text = Path(path).read_text()
    except OSError:
        return 0
    return int(next((ln.split()[1] for ln in text.splitlines() if ln.startswith(field)), "0"))


class Sampler:
    """Samples a process tree every 20 ms: the peak of its total RSS, which counts
    a page that processes share (a build's binary and libraries, the
    interpreter) once for each of them, so it overstates; the peak of its total
    PSS (every 10th sample), where a shared page is split between its sharers,
    so the sum is the tree's own memory; and the most QEMUs alive."""

    def __init__(self, root: int) -> None:
        self.root, self.peak_rss, self.peak_pss, self.peak_qemus = root, 0, 0, 0
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self.loop, daemon=True)
        self.thread.start()

    def tree(self) -> list[int]:
        children: dict[int, list[int]] = {}
        for entry in Path("/proc").iterdir():
            if entry.name.isdigit():
                try:
                    ppid = int((entry / "stat").read_text().rsplit(")", 1)[1].split()[1])
                except (OSError, IndexError, ValueError):
                    continue
                children.setdefault(ppid, []).append(int(entry.name))
        out, todo = [], [self.root]
        while todo:
            pid = todo.pop()
            out.append(pid)
            todo += children.get(pid, [])
        return out

    def loop(self) -> None:
        samples = 0
        while not self.stop.is_set():
            rss, qemus = 0, 0
            tree = self.tree()
            for pid in tree:
                try:
                    cmd = Path(f"/proc/{pid}/cmdline").read_bytes()
                except OSError:
                    continue
                rss += _kib(f"/proc/{pid}/status", "VmRSS:")
                qemus += b"qemu-system" in cmd
            if samples % PSS_EVERY == 0:
                self.peak_pss = max(self.peak_pss, sum(_kib(f"/proc/{pid}/smaps_rollup", "Pss:")
                                                       for pid in tree))
            samples += 1
            self.peak_rss, self.peak_qemus = max(self.peak_rss, rss), max(self.peak_qemus, qemus)
            time.sleep(0.02)

    def done(self) -> dict[str, float]:
        self.stop.set()
        self.thread.join()
        return {"peak_rss_mib": self.peak_rss / 1024, "peak_pss_mib": self.peak_pss / 1024,
                "peak_qemus": self.peak_qemus}


def conformance_run(paths: Sequence[str], workers: int, extra: Sequence[str] = ()) -> dict[str, Any]:
    """One whole run of the main job's command over ``paths`` (pytest with the
    plugin, reports in a temporary dir): wall time, cases (records and pair
    cells), exit status, peak memory and QEMUs of the whole process tree, and
    results.json's ``run`` (how the cases ran)."""
    with tempfile.TemporaryDirectory() as reports:
        cmd = [sys.executable, "-m", "pytest", *paths, "-q", "-p", "no:cacheprovider",
               "--qmpcompat-quiet", "--qmpcompat-reports", reports, *extra]
        if workers > 1:
            cmd += ["-n", str(workers)]
        start = time.perf_counter()
        proc = subprocess.Popen(cmd, cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                                text=True)
        sampler = Sampler(proc.pid)
        out, _ = proc.communicate()
        seconds = time.perf_counter() - start
        mem = sampler.done()
        doc = json.loads((Path(reports) / "results.json").read_text())
        cells = [*doc.get("pairs", []), *doc.get("consumers", [])]
        cases = len(doc["results"]) + len(cells)
        failed = sorted([*(f"{r['vector']} on {r['qemu']}: {r['message'][:300]}"
                           for r in doc["results"] if Outcome(r["outcome"]).bad),
                         *(f"{r.get('vector') or r.get('profile')} {r['source']} -> {r['destination']}: "
                           f"{r['message'][:300]}" for r in cells if Outcome(r["outcome"]).bad)])
    return {"seconds": seconds, "cases": cases, "workers": workers, "exit": proc.returncode, **mem,
            "failed": failed,
            "run": doc.get("run"), "summary": out.strip().splitlines()[-1] if out.strip() else ""}
