"""A host with another QEMU package installed, without installing anything.

``run_on_host_with_qemu`` runs a piece of Python in a private user and mount
namespace in which QEMU's compiled-in dirs hold another build's files, as
Debian's ``qemu-system-x86`` puts them there: overlays on
``/usr/lib/x86_64-linux-gnu`` (adding ``qemu/`` with the given modules) and
on ``/usr/share`` (adding ``qemu/`` with the given firmware files). Nothing
outside the namespace changes. The code prints one JSON document as its last
line of output, which is returned.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

LIBDIR = "/usr/lib/x86_64-linux-gnu"
SHARE = "/usr/share"
_MOUNT = ('mount -t overlay qmpcompat-test -o "lowerdir=$1,upperdir=$2,workdir=$3" "$1" && '
          'mount -t overlay qmpcompat-test -o "lowerdir=$4,upperdir=$5,workdir=$6" "$4" && '
          'shift 6 && exec "$@"')


def _layer(tmp: Path, name: str, files: list[Path]) -> tuple[Path, Path]:
    upper, work = tmp / f"{name}-upper", tmp / f"{name}-work"
    (upper / "qemu").mkdir(parents=True)
    work.mkdir()
    for path in files:
        shutil.copyfile(path, upper / "qemu" / path.name)
    return upper, work


def _skip_without_namespaces(tmp: Path) -> None:
    if shutil.which("unshare") is None:
        pytest.skip("util-linux's unshare is not installed")
    lower, upper, work = tmp / "probe-lower", tmp / "probe-upper", tmp / "probe-work"
    for d in (lower, upper, work):
        d.mkdir()
    proc = subprocess.run(["unshare", "--user", "--map-root-user", "--mount", "--", "mount", "-t",
                           "overlay", "qmpcompat-test", "-o",
                           f"lowerdir={lower},upperdir={upper},workdir={work}", str(lower)],
                          capture_output=True, text=True, check=False)
    if proc.returncode != 0:
        pytest.skip(f"this host allows no user namespace with an overlay mount: {proc.stderr}")


def run_on_host_with_qemu(tmp: Path, modules: list[Path], firmware: list[Path],
                          code: str, timeout: float = 300) -> dict[str, object]:
    """Run ``code`` (Python) where the host's QEMU dirs hold ``modules`` and
    ``firmware``; the JSON its last output line holds. Skips when this host
    allows no user namespace or overlay mount."""
    _skip_without_namespaces(tmp)
    lib_up, lib_work = _layer(tmp, "lib", modules)
    share_up, share_work = _layer(tmp, "share", firmware)
    script = tmp / "on_host.py"
    script.write_text(code)
    argv = ["unshare", "--user", "--map-root-user", "--mount", "--", "sh", "-c", _MOUNT,
            "mount-host-qemu", LIBDIR, str(lib_up), str(lib_work), SHARE, str(share_up),
            str(share_work), sys.executable, str(script)]
    proc = subprocess.run(argv, capture_output=True, text=True, timeout=timeout, check=False)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    return json.loads(proc.stdout.strip().splitlines()[-1])  # type: ignore[no-any-return]
