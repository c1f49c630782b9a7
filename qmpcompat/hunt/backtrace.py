"""A backtrace of a crash, when gdb is on the host.

The finding's transcript is played on a fresh QEMU that gdb has attached to
(``gdb -p``, batch mode): when QEMU takes the fatal signal, gdb prints every
thread's stack and kills it. Debian's builds are stripped, so frames inside
QEMU show only exported names unless the matching ``-dbgsym`` package is
installed; the frames in GLib and libc still say where it went wrong.
"""

from __future__ import annotations

import shutil
import subprocess
import time
from collections.abc import Sequence
from pathlib import Path

from qmpcompat.errors import QemuError, UnsafeInput
from qmpcompat.harness import Qemu, QemuOptions
from qmpcompat.harness.process import private_dir
from qmpcompat.provision import QemuBuild
from qmpcompat.safety import Policy
from qmpcompat.vectors.transcript import Step, fill_steps, play

GDB_WAIT = 30.0
MAX_LINES = 80


def _traced(pid: int) -> bool:
    try:
        status = Path(f"/proc/{pid}/status").read_text()
    except OSError:
        return False
    return any(line.startswith("TracerPid:") and line.split()[1] != "0"
               for line in status.splitlines())


def backtrace(build: QemuBuild, steps: Sequence[Step], incoming: bool) -> str | None:
    """gdb's backtrace of QEMU crashing on ``steps``; None when gdb is missing, cannot
    attach, or QEMU does not take a signal."""
    gdb = shutil.which("gdb")
    if gdb is None:
        return None
    tmp = private_dir("qmpv-")
    try:
        with Qemu(build, QemuOptions(incoming_defer=incoming, timeout=5.0), "subject",
                  Policy.for_case(tmp)).start(tmp) as q:
            assert q.child is not None
            pid = q.child.pid
            proc = subprocess.Popen(
                [gdb, "-nx", "-batch", "-p", str(pid), "-ex", "set pagination off",
                 "-ex", "handle SIGUSR1 SIGUSR2 SIGPIPE SIGCHLD nostop noprint pass",
                 "-ex", "continue", "-ex", "thread apply all bt"],
                stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                stdin=subprocess.DEVNULL)
            deadline = time.monotonic() + 10
            while not _traced(pid) and proc.poll() is None and time.monotonic() < deadline:
                time.sleep(0.05)
            time.sleep(0.5)  # gdb continues the process once attached
            try:
                play(q, fill_steps(steps, str(tmp)))
                out, _ = proc.communicate(timeout=GDB_WAIT)
            except (subprocess.TimeoutExpired, QemuError, UnsafeInput, OSError):
                proc.kill()
                out, _ = proc.communicate()
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    text = out or ""
    at = text.find("received signal")
    if at < 0:
        return None
    lines = text[text.rfind("\n", 0, at) + 1:].splitlines()
    return "\n".join(line for line in lines[:MAX_LINES] if line.strip())
