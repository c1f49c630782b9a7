"""tools/host-packages, run as root on a host that lacks what the tests need: it
installs it without what it only recommends, and two runs at once (.ci/run's
early one and tox's) install it once. apt-get is a stand-in that logs its
arguments and puts the programs on PATH; PATH holds nothing else the script
looks for."""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest
from helpers.suite_runner import REPO

SCRIPT = REPO / "tools" / "host-packages"
# the tools the script itself runs, taken from the host
TOOLS = ("bash", "flock", "id", "sleep", "chmod", "cat")
APT_GET = """#!/bin/bash
echo "$*" >> "$LOG"
if [ "$1" != update ]; then
  sleep 1
  for p in chromium chromedriver gdb cc; do printf '#!/bin/sh\\n' > "$BIN/$p"; chmod +x "$BIN/$p"; done
fi
"""

pytestmark = pytest.mark.skipif(os.geteuid() != 0, reason="installs only as root")


@pytest.fixture
def host(tmp_path: Path) -> dict[str, str]:
    """The environment of a host with apt-get and none of the packages."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    for tool in TOOLS:
        found = shutil.which(tool)
        assert found, tool
        (bin_dir / tool).symlink_to(found)
    (bin_dir / "apt-get").write_text(APT_GET)
    (bin_dir / "apt-get").chmod(0o755)
    return {"PATH": str(bin_dir), "BIN": str(bin_dir), "LOG": str(tmp_path / "apt.log")}


def _apt_calls(env: dict[str, str]) -> list[str]:
    return Path(env["LOG"]).read_text().splitlines()


def test_installs_without_recommends(host: dict[str, str]) -> None:
    keyring = [] if any(Path(f"/usr/share/keyrings/debian-archive-keyring.{ext}").exists()
                        for ext in ("gpg", "pgp")) else ["debian-archive-keyring"]
    wanted = " ".join([*keyring, "chromium", "chromium-driver", "gdb", "gcc", "libc6-dev"])
    done = subprocess.run(["bash", str(SCRIPT)], env=host, capture_output=True, text=True,
                          timeout=60, check=False)
    assert done.returncode == 0, done.stderr
    assert f"installing {wanted}" in done.stderr
    assert _apt_calls(host) == ["update -qq", f"install -y -qq --no-install-recommends {wanted}"]


def test_two_runs_at_once_install_once(host: dict[str, str]) -> None:
    first, second = (subprocess.Popen(["bash", str(SCRIPT)], env=host, stderr=subprocess.PIPE,
                                      text=True) for _ in range(2))
    assert first.wait(60) == 0 and second.wait(60) == 0
    installs = [c for c in _apt_calls(host) if c.startswith("install")]
    assert len(installs) == 1, _apt_calls(host)
