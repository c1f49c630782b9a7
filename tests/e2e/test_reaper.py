"""The reaper (``qmpcompat.reaper``): when a process is killed with SIGKILL, every
temp dir and temp file it made is removed and whatever still uses one is killed:
in a process that makes one of each kind, and in real downloads (of a build, of
a source package) killed on the way, each into a cache of its own. A sweep
takes an owner for alive while its lock is held, whatever its pid says: one in
a real second pid namespace sharing the directory keeps its entries."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

from qmpcompat.provision import QemuBuild
from qmpcompat.provision.debian import cache_dir
from qmpcompat.reaper import CACHE_PREFIXES, OWNER_PREFIX, PREFIXES, _gone, make_dir, owner, sweep

# Makes one entry of each prefix in BASE (a dir, and a file for .qmpw-), starts a
# process working inside the .src- dir (as apt-get source does) and one naming
# the .dl- dir on its command line (as apt-get install does), prints their pids.
MAKER = textwrap.dedent("""
    import subprocess, sys, time
    from pathlib import Path
    from qmpcompat.reaper import CACHE_PREFIXES, make_dir, make_file
    base = Path(sys.argv[1])
    made = {p: make_dir(base, p) for p in CACHE_PREFIXES}
    (made[".dl-"] / "debs").mkdir()
    (made[".dl-"] / "debs" / "half.deb").write_bytes(b"x" * 1000)
    make_file(base, ".qmpw-", ".results.json")
    sleep = "import time; time.sleep(1000)"
    users = [subprocess.Popen([sys.executable, "-c", sleep], cwd=made[".src-"]),
             subprocess.Popen([sys.executable, "-c", sleep, str(made[".dl-"] / "debs")])]
    print(*(u.pid for u in users), flush=True)
    time.sleep(1000)
""")


def _running(pid: int) -> bool:
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] != "Z"
    except (OSError, IndexError):
        return False


def _users(path: Path) -> list[str]:
    """Live processes whose command line names ``path`` or that work inside it."""
    found = []
    for proc in Path("/proc").iterdir():
        if not proc.name.isdigit() or not _running(int(proc.name)):
            continue
        try:
            cmdline = (proc / "cmdline").read_bytes()
            cwd = os.readlink(proc / "cwd")
        except OSError:
            continue
        if str(path).encode() in cmdline or (cwd + "/").startswith(f"{path}/"):
            found.append(cmdline.replace(b"\0", b" ").decode(errors="replace")[:120])
    return found


def _tree(root: Path) -> list[Path]:
    """Every path under ``root``; a directory removed while it is being read
    (the reaper at work) is skipped, where ``Path.rglob`` would raise."""
    return [Path(top, name) for top, dirs, files in os.walk(root) for name in dirs + files]


def _temp_entries(root: Path) -> list[str]:
    return sorted(str(p.relative_to(root)) for p in _tree(root) if p.name.startswith(PREFIXES))


def _assert_left_nothing(root: Path, timeout: float = 20) -> None:
    deadline = time.monotonic() + timeout
    while (left := _temp_entries(root)) or _users(root):
        assert time.monotonic() < deadline, f"left behind: {left} {_users(root)}"
        time.sleep(0.1)


def _maker(base: Path) -> tuple[subprocess.Popen[str], list[int]]:
    """MAKER run on ``base`` (made if missing), once it has made everything: the
    process and the pids of the two processes it started."""
    base.mkdir(exist_ok=True)
    proc = subprocess.Popen([sys.executable, "-c", MAKER, str(base)], stdout=subprocess.PIPE,
                            text=True)
    assert proc.stdout is not None
    return proc, [int(p) for p in proc.stdout.readline().split()]


def _kill(proc: subprocess.Popen[str], users: list[int]) -> None:
    """Stop what a failed test left running."""
    if proc.poll() is None:
        proc.kill()
    for pid in users:
        if _running(pid):
            os.kill(pid, signal.SIGKILL)


def test_sigkill_leaves_no_temp_entry_and_no_user(tmp_path: Path) -> None:
    base = tmp_path / "cache"
    proc, users = _maker(base)
    try:
        names = {e.name.split("-")[0] + "-" for e in base.iterdir()}
        assert names == {*CACHE_PREFIXES, OWNER_PREFIX}, names  # every kind, and the owner's lock
        assert all(e.name.startswith(tuple(f"{p}{proc.pid}." for p in PREFIXES))
                   for e in base.iterdir())  # each entry names its owner
        assert all(_running(u) for u in users)
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait(10)
        _assert_left_nothing(base)
        assert not any(_running(u) for u in users)
    finally:
        _kill(proc, users)


def test_the_reaper_leaves_other_processes_entries(tmp_path: Path) -> None:
    """Only the killed process's own entries go: not another process's, not a
    name that merely looks like one."""
    base = tmp_path / "cache"
    base.mkdir()
    other = base / f".dl-{os.getpid()}-keepme"
    other.mkdir()
    lookalike = base / ".dl-partial"
    lookalike.mkdir()
    proc, users = _maker(base)
    try:
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait(10)
        deadline = time.monotonic() + 20
        while len(list(base.iterdir())) > 2:
            assert time.monotonic() < deadline, list(base.iterdir())
            time.sleep(0.1)
        assert sorted(base.iterdir()) == sorted([other, lookalike])
    finally:
        _kill(proc, users)


# Holds an owner's lock (flock) in a directory, as a process of another pid
# namespace sharing that directory would: its pid means nothing here.
HOLDER = ("import fcntl, os, sys, time; fd = os.open(sys.argv[1], os.O_WRONLY | os.O_CREAT, 0o600); "
          "fcntl.flock(fd, fcntl.LOCK_EX); print('held', flush=True); time.sleep(1000)")


def test_a_sweep_takes_an_owner_for_alive_while_its_lock_is_held(tmp_path: Path) -> None:
    """An owner is named by pid and token, and proved alive by its lock, not by
    its pid: the entries of an owner whose pid no process here has (another pid
    namespace), its lock held, stay; once the lock is free they go, and so do
    the entries of an owner whose lock is gone, even one whose pid a live process
    here has (this one). An entry named by a pid alone (an older qmpcompat) is
    still judged by its pid."""
    base = tmp_path / "cache"
    base.mkdir()
    unused = 4_194_304 + os.getpid() % 1000  # above pid_max's limit: no process here has it
    entry, lost = base / f".dl-{unused}.a1b2c3-x1y2z3", base / f".src-{unused}.d4e5f6-u7v8w9"
    lock, old = base / f"{OWNER_PREFIX}{unused}.a1b2c3", base / f".dl-{unused}-r1s2t3"
    namesake = base / f".store-{os.getpid()}.ffffff-k1k2k3"
    for path in (entry, lost, old, namesake):
        path.mkdir()
    holder = subprocess.Popen([sys.executable, "-c", HOLDER, str(lock)], stdout=subprocess.PIPE,
                              text=True)
    try:
        assert holder.stdout is not None and holder.stdout.readline() == "held\n"
        assert sorted(sweep(base)) == sorted([lost, old, namesake])
        assert sorted(base.iterdir()) == sorted([entry, lock])
    finally:
        holder.kill()
        holder.wait(10)
    assert sorted(sweep(base)) == sorted([entry, lock])
    assert list(base.iterdir()) == []


# In a pid namespace of its own: a process that takes the pid PID (free here),
# makes a download dir in DIR as a run would, says its name and waits.
NAMESAKE = textwrap.dedent("""
    import os, sys, time
    from pathlib import Path
    with open("/proc/sys/kernel/ns_last_pid", "w") as f:
        f.write(str(int(sys.argv[2]) - 1))
    if os.fork() == 0:
        from qmpcompat.reaper import make_dir
        print(os.getpid(), make_dir(Path(sys.argv[1]), ".dl-").name, flush=True)
        time.sleep(1000)
    os.wait()
""")


def test_an_owner_in_another_pid_namespace_keeps_its_entries(tmp_path: Path) -> None:
    """A real second pid namespace sharing the directory (two containers, one
    cache): its process has a pid no process here has, so by pid its download
    looks abandoned from here; its lock says it is not, and the sweep keeps it
    until that namespace is gone."""
    base = tmp_path / "cache"
    base.mkdir()
    free = subprocess.Popen(["true"])
    free.wait()  # its pid is free here now
    user = [] if os.geteuid() == 0 else ["--user", "--map-root-user"]  # (root of its own)
    cmd = ["unshare", *user, "--pid", "--fork", "--kill-child", sys.executable, "-c", NAMESAKE,
           str(base), str(free.pid)]
    try:
        ns = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    except FileNotFoundError:
        pytest.skip("unshare (util-linux) is not installed")
    try:
        assert ns.stdout is not None
        said = ns.stdout.readline().split()
        if not said:
            pytest.skip(f"no pid namespace here: {ns.communicate(timeout=10)[1].strip()}")
        pid, entry = int(said[0]), base / said[1]
        assert pid == free.pid and entry.is_dir() and not _running(pid)  # a pid that is free here
        assert _gone(pid, entry.stat())  # by pid alone it would be reaped
        assert sweep(base) == [] and entry.is_dir()
    finally:
        ns.kill()  # the namespace's first process: every process in it dies with it
        ns.wait(10)
    deadline = time.monotonic() + 10
    while not sweep(base):
        assert time.monotonic() < deadline, list(base.iterdir())
        time.sleep(0.1)
    assert list(base.iterdir()) == []


def test_a_directory_made_again_gets_the_owner_s_lock_again(tmp_path: Path) -> None:
    """An owner whose directory was removed (its lock with it) and made again
    locks it anew before its next entry there: no entry of a live owner is ever
    without its lock."""
    base = tmp_path / "reports"
    base.mkdir()
    make_dir(base, ".dl-").rmdir()
    lock = base / f"{OWNER_PREFIX}{owner()}"
    assert lock.is_file()
    shutil.rmtree(base)
    base.mkdir()
    entry = make_dir(base, ".dl-")
    assert lock.is_file() and sorted(base.iterdir()) == sorted([lock, entry])


def test_an_owner_that_exits_removes_its_lock(tmp_path: Path) -> None:
    """A process that ends normally removes its locks itself (with its reaper
    stopped first, so that only the process can have done it)."""
    code = ("import os, sys; from pathlib import Path; from qmpcompat import reaper; "
            "reaper.make_dir(Path(sys.argv[1]), '.dl-').rmdir(); "
            "mine = reaper._REAPERS[os.getpid()].proc; mine.kill(); mine.wait(); "
            "print(sorted(os.listdir(sys.argv[1])))")
    done = subprocess.run([sys.executable, "-c", code, str(tmp_path)], capture_output=True,
                          text=True, timeout=60, check=True)
    assert done.stdout.startswith(f"['{OWNER_PREFIX}"), done.stdout  # held while it ran
    assert list(tmp_path.iterdir()) == []


def _link_or_copy(src: str, dst: str) -> None:
    try:
        os.link(src, dst)
    except OSError:
        shutil.copy2(src, dst)


def _own_cache(tmp_path: Path) -> Path:
    """A cache of its own holding the real cache's private apt states (package
    and source lists hard-linked: apt replaces a list, it never rewrites one),
    with the suites marked as just looked up: nothing but the download itself
    reaches the archive. What the reaper keeps there (the temp entries, and the
    locks of the processes writing there now, which a hard link would share) is
    not state: it is left out."""
    real, cache = cache_dir(), tmp_path / "cache"
    for apt in ("apt", "apt-src"):
        shutil.copytree(real / apt, cache / apt, copy_function=_link_or_copy, symlinks=True,
                        ignore=shutil.ignore_patterns(*(f"{p}*" for p in PREFIXES)))
    index = json.loads((real / "suites.json").read_text())
    (cache / "suites.json").write_text(json.dumps({**index, "updated": time.time()}))
    return cache


@pytest.mark.parametrize("prefix,args", [
    (".dl-", ["provision", "--suites", "bookworm"]),           # a build and its dependencies
    (".fetch-", ["provision", "--source", "debian:10.2.2"]),   # a source tree to build
    (".src-", ["history", "--no-committed", "--no-files", "debian:10.2.2"]),  # QAPI source
], ids=["build", "source-tree", "qapi-source"])
def test_sigkill_of_a_download_leaves_nothing(builds: list[QemuBuild], tmp_path: Path,
                                              prefix: str, args: list[str]) -> None:
    """A real download through the private apt, killed with SIGKILL while apt
    is fetching into the temp dir: apt is killed and the temp dir removed."""
    cache = _own_cache(tmp_path)
    proc = subprocess.Popen([sys.executable, "-m", "qmpcompat", *args], cwd=tmp_path,
                            env={**os.environ, "QMPCOMPAT_CACHE": str(cache)},
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    try:
        deadline = time.monotonic() + 300
        mine = f"{prefix}{proc.pid}."
        while not any(_users(d) for d in _tree(cache) if d.name.startswith(mine)):
            assert proc.poll() is None, (proc.stderr.read() if proc.stderr else b"").decode()
            assert time.monotonic() < deadline, "the download never started"
            time.sleep(0.01)
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait(10)
        _assert_left_nothing(cache)
    finally:
        if proc.poll() is None:
            proc.kill()
