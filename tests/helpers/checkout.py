"""The CI templates' jobs as this machine runs them: in a copy of the checkout
(what a CI clone of the commit has), with the venv every job makes first made
once per session by that job's own command (``VENV``) and linked into each
test's copy, and their script steps run by bash as the CI runs them."""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

from helpers.shared import Shared
from helpers.suite_runner import REPO

VENV = "python3 -m venv .venv && .venv/bin/pip install -q -e ."  # every job's first step
# What a CI job's environment does not hold of this one's.
_NOT_IN_CI = ("QMPCOMPAT_", "PYTEST", "VIRTUAL_ENV", "CI_", "GITHUB_")


def checkout(parent: Path) -> Path:
    """A copy of the checkout's files as they are now, without what git ignores,
    in ``parent``/checkout."""
    listed = subprocess.run(["git", "-C", str(REPO), "ls-files", "-z", "--cached", "--others",
                             "--exclude-standard"], capture_output=True, check=True)
    dst = parent / "checkout"
    for name in filter(None, listed.stdout.decode().split("\0")):
        if (REPO / name).is_file():
            (dst / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(REPO / name, dst / name)
    return dst


def run_script(script: str, cwd: Path, env: dict[str, str]) -> str:
    """A job's script lines run by ``bash -e`` in ``cwd`` with the CI's ``env``;
    its stdout. In a checkout that has its venv, the job's first step (``VENV``)
    is skipped. Fails the test unless the script exits 0."""
    if (cwd / ".venv" / "bin" / "qmpcompat").exists():
        script = script.replace(VENV, "true")
    clean = {k: v for k, v in os.environ.items() if not k.startswith(_NOT_IN_CI)}
    done = subprocess.run(["bash", "-e", "-c", script], cwd=cwd, env={**clean, **env}, text=True,
                          capture_output=True, timeout=1800, check=False)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    return done.stdout


def ci_checkout(shared: Shared, parent: Path) -> Path:
    """A copy of the checkout in ``parent`` whose ``.venv`` is the session's: made
    by ``VENV`` in a copy of its own, the first time a test asks. (Its editable
    install runs that copy's code, the same files as this copy's.)"""

    def make(path: Path) -> None:
        run_script(VENV, checkout(path), {})

    venv = shared.once("ci-venv", make) / "checkout" / ".venv"
    mine = checkout(parent)
    (mine / ".venv").symlink_to(venv)
    return mine
