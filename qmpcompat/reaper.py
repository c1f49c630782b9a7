"""Every temp dir and temp file the package makes, removed even when the
process that made it is killed with SIGKILL.

Each one is named ``PREFIX{pid}-XXXXXXXX`` after the process that made it (the
name is its owner: there is no moment when it exists unowned), with a prefix of
``PREFIXES``. Before a process makes its first one in a directory, it tells its
reaper about that directory: a small process in its own session, started with
the first, that waits on a pipe for its owner to end however it ends, then
kills what still uses the owner's entries in those directories (a command line
that names one, or ``QMPCOMPAT_CASE`` naming one in the environment) and
removes them. (QEMU itself already dies with its parent through
PR_SET_PDEATHSIG.)

Run as ``python -m qmpcompat.reaper PID BASE``; more directories arrive on its
standard input, each path ended by a NUL byte.

When every process of a run is killed at once, its reaper included (a CI job's
whole cgroup, the OOM killer), its entries stay: guest memory dumps and
migration streams in case dirs, half-written downloads. So the first time a
process watches a directory it also sweeps it: every entry of this user whose
owner is gone (no process has its pid, or the one that has it started after
the entry was last changed: the pid was reused) is reaped as its reaper would
have, what still uses it killed.

A limit: the owner is named by its pid, so processes in different pid
namespaces (containers) that share one cache directory could take each other's
entries for their own.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from pathlib import Path

# Under $TMPDIR: a QEMU's own dir, a vector case's, the hunt's floor samples',
# the hunt's Hypothesis home (``qmpcompat.harness.process.private_dir``).
PRIVATE_PREFIXES = ("qmpc-", "qmpv-", "qmpf-", "qmph-")
# In the cache and the reports dir: a download of a build (``.dl-``), of a
# source package (``.src-``; ``.fetch-`` for a tree to build), a source build
# or the fork server's library being stored (``.store-``), a report file or a
# remembered answer being written (``.qmpw-``, ``write_atomic``).
CACHE_PREFIXES = (".dl-", ".src-", ".fetch-", ".store-", ".qmpw-")
PREFIXES = PRIVATE_PREFIXES + CACHE_PREFIXES


class _Reaper:
    """This process's reaper and the directories it was told about."""

    def __init__(self, base: str) -> None:
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "qmpcompat.reaper", str(os.getpid()), base],
            stdin=subprocess.PIPE, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
            start_new_session=True, close_fds=True)
        self.bases = {base}

    def tell(self, base: str) -> None:
        if base not in self.bases:
            assert self.proc.stdin is not None
            # one write of at most PIPE_BUF bytes: whole, even with several threads
            os.write(self.proc.stdin.fileno(), os.fsencode(base) + b"\0")
            self.bases.add(base)


_REAPERS: dict[int, _Reaper] = {}  # by pid: a forked child starts its own
_SWEPT: set[str] = set()  # directories this process has swept
_LOCK = threading.Lock()


def watch(base: Path) -> None:
    """Make sure this process's reaper will clean ``base`` (an absolute path) when
    this process ends; call it before making an entry there. The first call for
    a directory sweeps what killed processes left there (``sweep``)."""
    key = str(base)
    with _LOCK:
        if key not in _SWEPT:
            _SWEPT.add(key)
            sweep(base)
        reaper = _REAPERS.get(os.getpid())
        if reaper is None:
            _REAPERS[os.getpid()] = _Reaper(key)
        else:
            reaper.tell(key)


def _started(pid: int) -> float | None:
    """When process ``pid`` started (epoch seconds), or None when there is none."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        uptime = float(Path("/proc/uptime").read_text().split()[0])
    except (OSError, IndexError, ValueError):
        return None
    ticks = os.sysconf("SC_CLK_TCK")
    return time.time() - uptime + int(fields[19]) / ticks  # field 22: starttime


def _gone(pid: int, entry: os.stat_result) -> bool:
    """Whether the owner ``pid`` of an entry last changed at ``entry`` is gone."""
    started = _started(pid)
    return started is None or started > entry.st_mtime + 1.0  # 1 s: the clocks' rounding


def sweep(base: Path) -> list[Path]:
    """Reap the entries of ``base`` this user's processes left when they died
    with their reapers; the entries removed."""
    removed = []
    try:
        names = os.listdir(base)
    except OSError:
        return []
    owners: dict[int, list[Path]] = {}
    for name in names:
        prefix = next((p for p in PREFIXES if name.startswith(p)), None)
        pid = name[len(prefix):].split("-", 1)[0] if prefix else ""
        if not pid.isdigit() or int(pid) == os.getpid():
            continue
        with contextlib.suppress(OSError):
            st = os.lstat(base / name)
            if st.st_uid == os.geteuid() and _gone(int(pid), st):
                owners.setdefault(int(pid), []).append(base / name)
    for owner, entries in owners.items():
        reap(owner, base, entries)
        removed += entries
    return removed


def _owned_prefix(prefix: str) -> str:
    if prefix not in PREFIXES:
        raise ValueError(f"temp prefix {prefix!r} is not one the reaper removes: {PREFIXES}")
    return f"{prefix}{os.getpid()}-"


def make_dir(parent: Path, prefix: str) -> Path:
    """A new 0700 directory in ``parent`` (which must exist), named for this
    process with ``prefix`` (one of ``PREFIXES``), removed by the reaper if
    this process dies before removing it."""
    owned = _owned_prefix(prefix)
    parent = parent.absolute()
    watch(parent)
    return Path(tempfile.mkdtemp(prefix=owned, dir=parent))


@contextlib.contextmanager
def temp_dir(parent: Path, prefix: str) -> Iterator[Path]:
    """``make_dir``, removed with what is left in it when the block ends."""
    path = make_dir(parent, prefix)
    try:
        yield path
    finally:
        shutil.rmtree(path, ignore_errors=True)


def make_file(parent: Path, prefix: str, suffix: str = "") -> tuple[int, Path]:
    """A new 0600 file in ``parent`` (an open descriptor and its path), named for
    this process like ``make_dir`` and likewise removed by the reaper."""
    owned = _owned_prefix(prefix)
    parent = parent.absolute()
    watch(parent)
    fd, name = tempfile.mkstemp(prefix=owned, suffix=suffix, dir=parent)
    return fd, Path(name)


def _umask() -> int:
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


def write_atomic(path: Path, text: str) -> None:
    """Write ``text`` to ``path`` through a temp file in the same directory and a
    rename (a temp file the reaper removes if this process is killed on the way);
    the file ends up with mode ``0666 & ~umask`` like any file ``open`` creates
    (``mkstemp`` alone would leave it 0600)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = make_file(path.parent, ".qmpw-", f".{path.name}")
    try:
        with os.fdopen(fd, "w") as fh:
            fh.write(text)
        os.chmod(tmp, 0o666 & ~_umask())
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


def owned_entries(pid: int, base: Path) -> list[Path]:
    """The entries of ``base`` that process ``pid`` made with one of ``PREFIXES``."""
    names = tuple(f"{p}{pid}-" for p in PREFIXES)
    try:
        return [base / name for name in sorted(os.listdir(base)) if name.startswith(names)]
    except OSError:
        return []


def _kill_users(paths: list[Path]) -> None:
    """SIGKILL processes whose command line names one of ``paths`` (sink commands,
    apt downloading into a dir), that work inside one (apt fetching a source
    package there), or whose environment says they belong to one
    (``QMPCOMPAT_CASE``, which QEMU and everything it starts inherit, daemons
    included)."""
    needles = [str(p).encode() for p in paths]
    inside = tuple(str(p) + "/" for p in paths)
    entries = {f"QMPCOMPAT_CASE={p}".encode() for p in paths}
    for proc in Path("/proc").iterdir():
        if not proc.name.isdigit() or int(proc.name) == os.getpid():
            continue
        try:
            cmdline = (proc / "cmdline").read_bytes()
            environ = set((proc / "environ").read_bytes().split(b"\0"))
        except OSError:
            continue
        try:
            cwd = os.readlink(proc / "cwd") + "/"
        except OSError:
            cwd = ""
        if any(n in cmdline for n in needles) or environ & entries or cwd.startswith(inside):
            with contextlib.suppress(OSError):
                os.kill(int(proc.name), signal.SIGKILL)


def reap(pid: int, base: Path, entries: list[Path] | None = None) -> None:
    """Kill what uses the entries process ``pid`` left in ``base`` (or only
    ``entries`` of them), and remove them."""
    found = owned_entries(pid, base) if entries is None else entries
    if found:
        _kill_users(found)
        for path in found:
            if path.is_dir() and not path.is_symlink():
                shutil.rmtree(path, ignore_errors=True)
            else:
                path.unlink(missing_ok=True)


def main(argv: list[str]) -> int:
    pid, bases = int(argv[0]), [argv[1]]
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    told = b""
    try:
        while chunk := os.read(0, 65536):
            told += chunk
    except OSError:
        pass
    bases += [os.fsdecode(b) for b in told.split(b"\0") if b]
    for base in dict.fromkeys(bases):
        reap(pid, Path(base))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
