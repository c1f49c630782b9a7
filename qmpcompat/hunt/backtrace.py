"""A backtrace of a crash, when gdb is on the host.

The finding's transcript is played on a fresh QEMU that gdb has attached to
(``gdb -p``, batch mode): when QEMU takes the fatal signal, gdb prints every
thread's stack and kills it.

Debian's builds are stripped: QEMU's own frames have no names (``??``) unless
the matching ``qemu-system-x86-dbgsym`` package from Debian's separate debug
archive is installed, and the project's private apt cannot reach that archive
here (its index requests are refused), so qmpcompat does not fetch it. A build
from source (``qmpcompat provision --source debian:VERSION``) has debug info:
its backtrace names every frame with file and line. ``symbols`` tells the two
kinds of binary apart by their ELF sections.
"""

from __future__ import annotations

import shutil
import struct
import subprocess
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from qmpcompat.errors import QemuError, UnsafeInput
from qmpcompat.harness import Qemu, QemuOptions
from qmpcompat.harness.process import private_dir
from qmpcompat.provision import QemuBuild
from qmpcompat.safety import Policy
from qmpcompat.vectors.transcript import Step, fill_steps, play

GDB_WAIT = 30.0
MAX_LINES = 80
NO_SYMBOLS = (
    "QEMU's own frames have no names (`??`): this build is stripped, as Debian strips its "
    "packages. The names are in the matching `qemu-system-x86-dbgsym` package of Debian's "
    "separate debug archive (`debian-debug`, suite `SUITE-debug`); with it installed, gdb "
    "finds them. qmpcompat does not fetch it: the project's private apt cannot reach that "
    "archive (its index requests are refused). For a backtrace with every frame named, "
    "build the same version from source with debug info (`qmpcompat provision --source "
    "debian:VERSION`; it prints the binary's path) and replay the transcript on it with gdb "
    "on the host: `qmpcompat hunt --replay FILE --qemu PATH`.")


@dataclass(frozen=True)
class Trace:
    """gdb's backtrace of one build's crash, and whether the build has symbols."""

    build: QemuBuild
    text: str
    symbols: bool


def symbols(binary: str | Path) -> bool:
    """Whether an ELF binary keeps a symbol table or debug info (a ``.symtab`` or
    ``.debug_info`` section); False for a stripped or unreadable one."""
    try:
        with open(binary, "rb") as f:
            head = f.read(64)
            if head[:4] != b"\x7fELF" or head[4] != 2:  # ELF64 only (the x86_64 builds)
                return False
            order = "<" if head[5] == 1 else ">"
            shoff, = struct.unpack_from(order + "Q", head, 0x28)
            entsize, count, names_at = struct.unpack_from(order + "HHH", head, 0x3A)
            f.seek(shoff)
            table = f.read(entsize * count)
            name_offset, = struct.unpack_from(order + "Q", table, names_at * entsize + 0x18)
            name_size, = struct.unpack_from(order + "Q", table, names_at * entsize + 0x20)
            f.seek(name_offset)
            names = f.read(name_size)
    except (OSError, struct.error, IndexError):
        return False
    found = set()
    for i in range(count):
        at, = struct.unpack_from(order + "I", table, i * entsize)
        found.add(names[at:names.find(b"\0", at)])
    return bool(found & {b".symtab", b".debug_info"})


def _traced(pid: int) -> bool:
    try:
        status = Path(f"/proc/{pid}/status").read_text()
    except OSError:
        return False
    return any(line.startswith("TracerPid:") and line.split()[1] != "0"
               for line in status.splitlines())


def backtrace(build: QemuBuild, steps: Sequence[Step], incoming: bool) -> Trace | None:
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
    return Trace(build, "\n".join(line for line in lines[:MAX_LINES] if line.strip()),
                 symbols(build.binary))
