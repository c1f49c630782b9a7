"""A provisioned build sees its own modules and firmware, never the host's QEMU's.

QEMU looks for a module or a firmware file in the places it is given first
(``QEMU_MODULE_DIR``, ``-L``) and then in the directories compiled into it,
which on a host with a QEMU package installed belong to another build. For
every build with ``host_dirs`` (a provisioned or foreign one), the host dirs
among them that exist are hidden when its QEMU starts: it runs in a private
mount namespace (util-linux's ``unshare``; a user namespace too when we are not
root) in which each of them is covered by an empty read-only tmpfs, so QEMU
finds nothing there, and a missing file stays missing instead of being taken
from another build. The namespace is the process's own and dies with it;
nothing changes for any other process. The chain ``setpriv`` (the death signal,
``qmpcompat.harness.process``) -> ``unshare`` -> ``sh`` (the mounts) -> QEMU
executes each step in the same process, so QEMU keeps its pid, its process
group, its death signal and the environment it was given (the fork server's
library included: it acts only in QEMU, ``qmpcompat/data/forkserver.c``).

Nothing to hide (no such dir on the host) costs nothing: QEMU starts as
before. Where the host does not allow the namespace (``unavailable`` says
why), QEMU starts without it, and the build's self-check
(``qmpcompat.selfcheck``) decides whether it took anything from outside.

``environment_fault`` reads a dead QEMU's stderr for the marks of a cause
that is not QEMU's: a module of another build, a firmware file it could not
find.
"""

from __future__ import annotations

import functools
import os
import re
import shutil
import subprocess

from qmpcompat.harness.process import private_dir
from qmpcompat.provision.build import QemuBuild
from qmpcompat.provision.provenance import inside

UNSHARE = shutil.which("unshare")
MOUNT = shutil.which("mount")
SH = shutil.which("sh") or "/bin/sh"
# The script run in the namespace: cover each dir up to "--", then become QEMU.
_HIDE = ('while [ "$1" != -- ]; do mount -t tmpfs -o ro,nosuid,nodev,noexec,mode=0555,size=4k '
         'qmpcompat-hidden "$1" || exit 126; shift; done; shift; exec "$@"')
HIDE_FAILED = 126  # the exit status when a dir could not be covered
# What QEMU prints when the cause of its death is a module or firmware of its
# environment (each with the fact it names): never a defect of the build itself.
_CAUSES = (
    (re.compile(r"[Oo]nly modules from the same build can be loaded"),
     "it loaded a module of another build"),
    (re.compile(r"(?:failed to initialize module|Failed to open module|Failed to initialize "
                r"module):? *([^\s:]+)"), "a module it could not load: {0}"),
    (re.compile(r"module_load\w*: Assertion"), "an assertion in its module loader"),
    (re.compile(r"could not load PC BIOS '([^']+)'"), "firmware {0} not found"),
    (re.compile(r"failed to find romfile \"([^\"]+)\""), "firmware {0} not found"),
)


def _unshare() -> list[str]:
    assert UNSHARE is not None
    if os.geteuid() == 0:
        return [UNSHARE, "--mount"]
    return [UNSHARE, "--user", "--map-root-user", "--mount"]


@functools.cache
def unavailable() -> str:
    """'' when this host lets this process make a private mount namespace and
    cover a directory in it; else why not (asked once per process)."""
    if UNSHARE is None or MOUNT is None:
        return "util-linux's unshare and mount are not both installed"
    probe = private_dir("qmpc-")
    try:
        proc = subprocess.run([*_unshare(), "--", SH, "-c", _HIDE, "qmpcompat-hide", str(probe),
                               "--", SH, "-c", "test ! -w \"$0\"", str(probe)],
                              capture_output=True, text=True, timeout=30, check=False,
                              stdin=subprocess.DEVNULL)
    except (OSError, subprocess.SubprocessError) as exc:
        return f"unshare does not run: {exc}"
    finally:
        shutil.rmtree(probe, ignore_errors=True)
    if proc.returncode != 0:
        said = (proc.stderr.strip().splitlines() or [f"exit status {proc.returncode}"])[-1]
        return (f"this host does not allow a private mount namespace ({said}); allow "
                "unprivileged user namespaces (sysctl kernel.unprivileged_userns_clone=1, "
                "kernel.apparmor_restrict_unprivileged_userns=0) or run as root")
    return ""


@functools.lru_cache(maxsize=64)
def _real(dirs: tuple[str, ...]) -> tuple[str, ...]:
    """The real paths of a build's own dirs (its own tree does not move during a
    run; asked at every start, so asked of the file system once)."""
    return tuple(os.path.realpath(d) for d in dirs)


def present(build: QemuBuild) -> list[str]:
    """The build's ``host_dirs`` that exist on this host now, as real paths, each
    once, leaving out any that holds a part of the build's own tree or lies in one."""
    if not build.host_dirs:
        return []
    own = _real(build.own_dirs())
    out: list[str] = []
    for path in build.host_dirs:
        real = os.path.realpath(path)
        if (os.path.isdir(real) and real not in out and not inside(real, own)
                and not any(inside(o, [real]) for o in own)):
            out.append(real)
    return out


def prefix(build: QemuBuild) -> list[str]:
    """The argv prefix that starts ``build``'s QEMU with its host dirs hidden:
    empty when none exists here, or when the host does not allow it (the
    self-check then says so and judges the build by what it loaded)."""
    hidden = present(build)
    if not hidden or unavailable():
        return []
    return [*_unshare(), "--", SH, "-c", _HIDE, "qmpcompat-hide", *hidden, "--"]


def environment_fault(build: QemuBuild, stderr: str) -> str | None:
    """The environment's part in a QEMU's death, from its stderr: a module of
    another build, a module or firmware file it could not load; None when
    nothing says so. A module path named outside the build's own tree is
    named as such."""
    for pattern, text in _CAUSES:
        found = pattern.search(stderr)
        if found:
            named = found.group(1) if found.groups() else ""
            why = text.format(named)
            if named.startswith("/") and not inside(named, build.own_dirs()):
                why += " (outside the build's own tree)"
            return why
    return None
