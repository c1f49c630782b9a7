"""Two libvirt daemons in session mode on this host, as an unprivileged uid, each
driving its own QEMU: the source and the destination of a real libvirt migration.

What it takes (each found the hard way, and said in vectors/README.md):

- libvirt's daemon run by root is always in system mode, so each daemon runs as
  uid/gid ``nobody`` (``setpriv``), with its own HOME and XDG directories in a
  work dir every component of which that uid can read (the cache under a
  mode-700 home cannot be read by it: the libvirt tree and the QEMU builds are
  linked or copied into the work dir);
- a distinct ``host_uuid`` in each ``libvirtd.conf``, else libvirt refuses a
  migration to the same host; ``stdio_handler = "file"`` in ``qemu.conf`` (no
  virtlogd); the monitor traffic logged to a file
  (``log_filters = "1:qemu.qemu_monitor_json 1:qemu.qemu_monitor"``, and
  ``1:libvirt.domain`` for the API call each command served);
- the QEMU driver reads its CPU map from ``/usr/share/libvirt`` with no way to
  point it elsewhere: each daemon starts in its own mount namespace
  (``unshare --mount``, which needs root) where an overlay lays the tree's
  ``libvirt`` directory over the host's ``/usr/share``, nothing else changed;
- each QEMU build is a small wrapper script given as ``<emulator>``, that runs
  the build through its own loader (``QemuBuild.command``).

Every path reaches a command line as one argv element; the one shell script
(the namespace's set-up) takes them as positional parameters.
"""

from __future__ import annotations

import os
import pwd
import shlex
import shutil
import signal
import stat
import subprocess
import time
import uuid
from dataclasses import dataclass, field, replace
from pathlib import Path

from qmpcompat.errors import QmpCompatError
from qmpcompat.libvirt.tree import LibvirtTree
from qmpcompat.provision import QemuBuild

USER = "nobody"
DOMAIN = "qmpcompat-guest"
START_TIMEOUT = 30.0
LOG_FILTERS = "1:qemu.qemu_monitor_json 1:qemu.qemu_monitor 1:libvirt.domain"
SIDES = ("source", "destination")
# In the daemon's own mount namespace: lay $1 (holding only ``libvirt``) over
# /usr/share, then become the unprivileged uid and start the daemon ($4 ...).
_NAMESPACE = ('mount -t overlay qmpcompat-libvirt -o "lowerdir=$1:/usr/share" /usr/share'
              ' && uid=$2 && gid=$3 && shift 3'
              ' && exec setpriv --reuid="$uid" --regid="$gid" --clear-groups -- "$@"')


class LibvirtError(QmpCompatError):
    """Running the real libvirt failed: what was being done, and its output."""

    def __init__(self, what: str, output: str = "") -> None:
        super().__init__(f"{what}{': ' + output.strip()[-1500:] if output.strip() else ''}")
        self.what, self.output = what, output


def unusable() -> str:
    """Why the real libvirt cannot be run on this host ("" when it can)."""
    if os.geteuid() != 0:
        return ("running libvirt's daemons as an unprivileged uid in their own mount namespace "
                "needs root (setpriv, unshare --mount)")
    missing = [t for t in ("unshare", "setpriv", "mount", "dpkg-deb") if not shutil.which(t)]
    if missing:
        return f"this host lacks {', '.join(missing)} (util-linux, mount, dpkg)"
    try:
        pwd.getpwnam(USER)
    except KeyError:
        return f"this host has no user {USER!r}"
    return ""


def _hidden(path: Path) -> bool:
    """Whether some directory on the way to ``path`` is closed to other users."""
    return any(not os.stat(p).st_mode & stat.S_IXOTH for p in [*reversed(path.parents), path]
               if p.is_dir())


def _link_tree(src: Path, dst: Path) -> None:
    """``src`` again at ``dst``: hard links where the file system allows, else copies."""
    def link(a: str, b: str) -> None:
        try:
            os.link(a, b)
        except OSError:
            shutil.copy2(a, b)
    shutil.copytree(src, dst, symlinks=True, copy_function=link)


def _open_up(path: Path) -> None:
    for dirpath, dirnames, _files in os.walk(path):
        for d in (dirpath, *(os.path.join(dirpath, n) for n in dirnames)):
            if not os.path.islink(d):
                os.chmod(d, os.stat(d).st_mode | 0o755)


@dataclass
class Daemon:
    """One session daemon: its home, log, socket and process."""

    side: str
    home: Path
    proc: subprocess.Popen[bytes] | None = None

    @property
    def log(self) -> Path:
        return self.home / "libvirtd.log"

    @property
    def socket(self) -> Path:
        return self.home / "run" / "libvirt" / "libvirt-sock"

    @property
    def uri(self) -> str:
        return f"qemu+unix:///session?socket={self.socket}"

    def environ(self) -> list[str]:
        return [f"HOME={self.home}", f"XDG_CONFIG_HOME={self.home / '.config'}",
                f"XDG_RUNTIME_DIR={self.home / 'run'}", f"XDG_CACHE_HOME={self.home / '.cache'}",
                "PATH=/usr/bin:/bin", "LC_ALL=C.UTF-8"]


@dataclass
class Session:
    """The two daemons of one observed migration, in ``workdir`` (made readable
    by the daemons' uid); ``stop`` ends everything they started."""

    tree: LibvirtTree
    workdir: Path
    daemons: dict[str, Daemon] = field(default_factory=dict)
    emulators: dict[str, Path] = field(default_factory=dict)
    uid: int = 0
    gid: int = 0

    def __post_init__(self) -> None:
        if why := unusable():
            raise LibvirtError(f"cannot run libvirt here: {why}")
        entry = pwd.getpwnam(USER)
        self.uid, self.gid = entry.pw_uid, entry.pw_gid
        if any(c in str(self.workdir) for c in ":,\n"):
            raise LibvirtError(f"work dir {self.workdir} holds a ':' or ',' (an overlay option)")
        os.chmod(self.workdir, 0o755)
        if _hidden(self.tree.root):
            _link_tree(self.tree.root, self.workdir / "libvirt")
            self.tree = self.tree.moved(self.workdir / "libvirt")
        (self.workdir / "share").mkdir()
        (self.workdir / "share" / "libvirt").symlink_to(self.tree.data)

    # -- QEMU builds -----------------------------------------------------------

    def emulator(self, build: QemuBuild) -> Path:
        """A wrapper script that runs ``build`` (staged into the work dir when the
        daemons' uid cannot reach it), for a domain's ``<emulator>``."""
        if build.binary in self.emulators:
            return self.emulators[build.binary]
        paths = [build.binary, build.loader, *build.library_path.split(":"), *build.data_dirs]
        prefix = Path(os.path.commonpath([p for p in paths if p]))
        if _hidden(prefix):
            staged = self.workdir / "qemu" / f"{len(self.emulators)}-{build.label}"
            _link_tree(prefix, staged)
            _open_up(staged)
            build = _moved_build(build, prefix, staged)
        script = self.workdir / f"qemu-{len(self.emulators)}-{build.label}.sh"
        env = "".join(f"export {k}={shlex.quote(v)}\n" for k, v in build.env.items())
        script.write_text(f"#!/bin/sh\n# {build.describe()}, through its own loader, for libvirt\n"
                          f"{env}exec {shlex.join(build.command())} \"$@\"\n")
        script.chmod(0o755)
        self.emulators[build.binary] = script
        return script

    # -- daemons ---------------------------------------------------------------

    def start(self) -> None:
        """Start both daemons and wait until each listens."""
        for side in SIDES:
            home = self.workdir / side
            self.daemons[side] = daemon = Daemon(side, home)
            conf = home / ".config" / "libvirt"
            conf.mkdir(parents=True)
            (home / "run").mkdir()
            (conf / "libvirtd.conf").write_text(
                f'host_uuid = "{uuid.uuid4()}"\nlog_filters = "{LOG_FILTERS}"\n'
                f'log_outputs = "1:file:{daemon.log}"\n')
            (conf / "qemu.conf").write_text('stdio_handler = "file"\n')
            shutil.chown(home, self.uid, self.gid)
            for dirpath, dirnames, filenames in os.walk(home):
                for name in (*dirnames, *filenames):
                    os.chown(os.path.join(dirpath, name), self.uid, self.gid)
            argv = ["unshare", "--mount", "--propagation", "private", "--", "/bin/sh", "-c",
                    _NAMESPACE, "qmpcompat-libvirtd", str(self.workdir / "share"), str(self.uid),
                    str(self.gid), "env", "-i", *daemon.environ(),
                    *(f"{k}={v}" for k, v in self.tree.environ().items()),
                    *self.tree.command("usr/sbin/libvirtd"), "--config", str(conf / "libvirtd.conf")]
            with open(home / "libvirtd.stderr", "wb") as err:
                daemon.proc = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=err, stderr=err,
                                               start_new_session=True)
        for daemon in self.daemons.values():
            self._wait_listening(daemon)

    def _wait_listening(self, daemon: Daemon) -> None:
        deadline = time.monotonic() + START_TIMEOUT
        assert daemon.proc is not None
        while not daemon.socket.exists():
            if daemon.proc.poll() is not None or time.monotonic() > deadline:
                tail = (daemon.home / "libvirtd.stderr").read_text(errors="replace")
                raise LibvirtError(f"the {daemon.side} libvirtd (libvirt {self.tree.version}) did "
                                   "not start", tail)
            time.sleep(0.05)

    def virsh(self, side: str, *args: str, timeout: float = 120.0,
              check: bool = True) -> subprocess.CompletedProcess[str]:
        """Run virsh as the daemons' uid against one daemon."""
        daemon = self.daemons[side]
        argv = ["setpriv", f"--reuid={self.uid}", f"--regid={self.gid}", "--clear-groups", "--",
                "env", "-i", *daemon.environ(), *self.tree.command("usr/bin/virsh"),
                "-c", daemon.uri, *args]
        try:
            out = subprocess.run(argv, capture_output=True, text=True, timeout=timeout, check=False,
                                 stdin=subprocess.DEVNULL)
        except subprocess.TimeoutExpired as exc:
            raise LibvirtError(f"virsh {args[0]} on the {side} did not end within {timeout:g}s") from exc
        if check and out.returncode != 0:
            raise LibvirtError(f"virsh {' '.join(args[:2])} on the {side} failed", out.stderr)
        return out

    def stop(self) -> None:
        """Destroy the domain on both sides, end both daemons and any QEMU they left."""
        for side, daemon in self.daemons.items():
            if daemon.proc is not None and daemon.proc.poll() is None:
                self.virsh(side, "destroy", DOMAIN, timeout=30, check=False)
        for daemon in self.daemons.values():
            if daemon.proc is None:
                continue
            if daemon.proc.poll() is None:
                daemon.proc.send_signal(signal.SIGTERM)
                try:
                    daemon.proc.wait(10)
                except subprocess.TimeoutExpired:
                    daemon.proc.kill()
                    daemon.proc.wait()
            for pidfile in (daemon.home / "run" / "libvirt" / "qemu").rglob("*.pid"):
                _kill_pidfile(pidfile)  # a QEMU the daemon started and left running


def _move(path: str, old: Path, new: Path) -> str:
    """``path`` under ``new`` where it was under ``old`` (anything else as it is)."""
    return str(new / Path(path).relative_to(old)) if path and Path(path).is_relative_to(old) else path


def _moved_build(build: QemuBuild, old: Path, new: Path) -> QemuBuild:
    """``build`` with every path it names under ``old`` moved under ``new``."""
    return replace(build, binary=_move(build.binary, old, new), loader=_move(build.loader, old, new),
                   library_path=":".join(_move(p, old, new) for p in build.library_path.split(":")),
                   data_dirs=tuple(_move(p, old, new) for p in build.data_dirs),
                   env={k: _move(v, old, new) for k, v in build.env.items()})


def _kill_pidfile(pidfile: Path) -> None:
    """End the QEMU a daemon's pid file names, if it is still there: the file is the
    unprivileged daemon's, so a pid is killed only when it is a QEMU process (not
    init, not a pid reused since by something else)."""
    try:
        pid = int(pidfile.read_text().strip())
        if pid > 1 and b"qemu-system" in Path(f"/proc/{pid}/cmdline").read_bytes():
            os.kill(pid, signal.SIGKILL)
    except (OSError, ValueError):
        pass
