"""Every temp dir and temp file the package makes, removed even when the
process that made it is killed with SIGKILL.

Each one is named ``PREFIX{owner}-XXXXXXXX`` after the process that made it
(the name is its owner: there is no moment when it exists unowned), with a
prefix of ``ENTRY_PREFIXES``; the owner is the process's pid and a random token
(``PID.TOKEN``: processes in different pid namespaces, containers sharing one
cache directory, can have the same pid).

Before a process makes its first entry in a directory, it holds a lock there
for as long as it lives: the file ``.qmpo-{owner}``, locked with flock(2),
which the kernel releases however the process ends, and which the process
removes when it exits (one descriptor per directory it made entries in, made
anew if that directory was removed and made again). It also tells its reaper
about that directory: a small process in its own session, started with the
first, that waits on a pipe for its owner to end however it ends, then kills
what still uses the owner's entries in those directories (a command line that
names one, or ``QMPCOMPAT_CASE`` naming one in the environment) and removes
them. (QEMU itself already dies with its parent through PR_SET_PDEATHSIG.)

Run as ``python -m qmpcompat.reaper OWNER BASE``; more directories arrive on
its standard input, each path ended by a NUL byte.

When every process of a run is killed at once, its reaper included (a CI job's
whole cgroup, the OOM killer), its entries stay: guest memory dumps and
migration streams in case dirs, half-written downloads. So the first time a
process watches a directory it also sweeps it: every entry of this user whose
owner's lock is free (or gone) is reaped as its reaper would have, what still
uses it killed. A lock is proof across pid namespaces and clock steps; an entry
named by a pid alone (``PREFIX{pid}-XXXXXXXX``, of an older qmpcompat) is taken
as abandoned when no process has that pid, or the one that has it started after
the entry was last changed (the pid was reused).
"""

from __future__ import annotations

import atexit
import contextlib
import fcntl
import os
import secrets
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
ENTRY_PREFIXES = PRIVATE_PREFIXES + CACHE_PREFIXES
OWNER_PREFIX = ".qmpo-"  # an owner's lock in a directory it makes entries in
PREFIXES = (*ENTRY_PREFIXES, OWNER_PREFIX)


class _Reaper:
    """This process's reaper and the directories it was told about."""

    def __init__(self, base: str) -> None:
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "qmpcompat.reaper", owner(), base],
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
_OWNERS: dict[int, str] = {}  # by pid, likewise
_HELD: dict[tuple[int, str], tuple[int, Path]] = {}  # (pid, dir) -> its lock's fd and path
_SWEPT: set[str] = set()  # directories this process has swept
_LOCK = threading.Lock()


def owner() -> str:
    """This process's owner name, ``PID.TOKEN``."""
    pid = os.getpid()
    # setdefault: threads asking at once all get the one that was stored first
    return _OWNERS.get(pid) or _OWNERS.setdefault(pid, f"{pid}.{secrets.token_hex(3)}")


def watch(base: Path) -> None:
    """Make sure this process holds its lock in ``base`` (an absolute path) and its
    reaper will clean ``base`` when this process ends; call it before making an
    entry there. The first call for a directory sweeps what killed processes
    left there (``sweep``)."""
    key = str(base)
    with _LOCK:
        if key not in _SWEPT:
            _SWEPT.add(key)
            sweep(base)
        held = _HELD.get((os.getpid(), key))
        if held is None or not _holds(*held):  # (a directory removed and made again)
            if held is not None:
                os.close(held[0])
            _hold(base)
        reaper = _REAPERS.get(os.getpid())
        if reaper is None:
            _REAPERS[os.getpid()] = _Reaper(key)
        else:
            reaper.tell(key)


def _hold(base: Path) -> None:
    """Make and lock this process's lock file in ``base``, until it ends. (A sweep
    that took the new file for a dead owner's, between its creation and the
    lock, removed it: then it is made again.) On a file system without flock the
    file is kept unlocked: a sweep there cannot lock it either, so it takes the
    owner for alive and leaves its entries to its reaper."""
    if not _HELD:
        atexit.register(_let_go)
    path = base / f"{OWNER_PREFIX}{owner()}"
    while True:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_NOFOLLOW | os.O_CLOEXEC, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)
        except OSError:
            _HELD[(os.getpid(), str(base))] = (fd, path)
            return
        if _holds(fd, path):
            _HELD[(os.getpid(), str(base))] = (fd, path)
            return
        os.close(fd)


def _holds(fd: int, path: Path) -> bool:
    """Whether the lock file at ``path`` is still the one ``fd`` locks."""
    try:
        return os.stat(path, follow_symlinks=False).st_ino == os.fstat(fd).st_ino
    except OSError:
        return False


def _let_go() -> None:
    """At exit: remove this process's lock files (its reaper would, a little later)."""
    for (pid, _base), (fd, path) in list(_HELD.items()):
        if pid == os.getpid():
            path.unlink(missing_ok=True)
            os.close(fd)
            del _HELD[(pid, _base)]


def _take(lock: Path) -> int | None:
    """The lock file ``lock`` locked, when no process holds it: its descriptor
    (-1 when there is no such file); None when a process holds it."""
    try:
        fd = os.open(lock, os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC)
    except FileNotFoundError:
        return -1
    except OSError:
        return None
    try:
        fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
    except OSError:
        os.close(fd)
        return None
    return fd


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
    with their reapers; the entries removed. A dead owner's lock is held while
    its entries go (an owner making that very file waits, then makes it anew)."""
    try:
        names = os.listdir(base)
    except OSError:
        return []
    owners: dict[str, list[Path]] = {}
    for name in names:
        prefix = next((p for p in PREFIXES if name.startswith(p)), None)
        who = name[len(prefix):].split("-", 1)[0] if prefix else ""
        if who.partition(".")[0].isdigit() and who not in (owner(), str(os.getpid())):
            with contextlib.suppress(OSError):
                st = os.lstat(base / name)
                if st.st_uid == os.geteuid() and ("." in who or _gone(int(who), st)):
                    owners.setdefault(who, []).append(base / name)
    removed = []
    for who, entries in owners.items():
        fd = _take(base / f"{OWNER_PREFIX}{who}") if "." in who else -1
        if fd is not None:
            try:
                reap(who, base, entries)
            finally:
                if fd >= 0:
                    os.close(fd)
            removed += entries
    return removed


def _owned_prefix(prefix: str) -> str:
    if prefix not in ENTRY_PREFIXES:
        raise ValueError(f"temp prefix {prefix!r} is not one the reaper removes: {ENTRY_PREFIXES}")
    return f"{prefix}{owner()}-"


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


def owned_entries(who: str, base: Path) -> list[Path]:
    """The entries of ``base`` that the owner ``who`` made with one of
    ``ENTRY_PREFIXES``, and its lock there."""
    names = tuple(f"{p}{who}-" for p in ENTRY_PREFIXES)
    try:
        return [base / name for name in sorted(os.listdir(base))
                if name.startswith(names) or name == f"{OWNER_PREFIX}{who}"]
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


def reap(who: str, base: Path, entries: list[Path] | None = None) -> None:
    """Kill what uses the entries the owner ``who`` left in ``base`` (or only
    ``entries`` of them), and remove them."""
    found = owned_entries(who, base) if entries is None else entries
    if found:
        _kill_users(found)
        for path in found:
            if path.is_dir() and not path.is_symlink():
                shutil.rmtree(path, ignore_errors=True)
            else:
                path.unlink(missing_ok=True)


def main(argv: list[str]) -> int:
    who, bases = argv[0], [argv[1]]
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    told = b""
    try:
        while chunk := os.read(0, 65536):
            told += chunk
    except OSError:
        pass
    bases += [os.fsdecode(b) for b in told.split(b"\0") if b]
    for base in dict.fromkeys(bases):
        reap(who, Path(base))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
