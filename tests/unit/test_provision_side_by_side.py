"""Provisioning fetches the builds side by side (``provision.debian.provision``):
on a cold cache they download and unpack at once, each build's entry filled by
one fetch alone, and a build that fails is its suite's error while the others
are provisioned. The archive is stood in for (no download here)."""

from __future__ import annotations

import threading
import time
from pathlib import Path

import pytest

from qmpcompat.errors import ProvisionError
from qmpcompat.provision import debian
from qmpcompat.provision.build import QemuBuild
from qmpcompat.types import Version

SERVED = {"bookworm": "1:7.2+dfsg-7", "trixie": "1:10.0.13+ds-0", "sid": "1:11.1.3+ds-1"}


def test_builds_are_fetched_side_by_side(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    running, most = [0], [0]
    lock = threading.Lock()

    def resolve(self: debian.DebianProvisioner, suites: object, refresh: bool = False,
                strict: bool = False) -> debian.ProvisionResult:
        return debian.ProvisionResult(suites=dict(SERVED))

    def fetch(self: debian.DebianProvisioner, suite: str, version: str, again: bool = False,
              target: str = "x86_64") -> QemuBuild:
        with lock:
            running[0] += 1
            most[0] = max(most[0], running[0])
        time.sleep(0.3)
        with lock:
            running[0] -= 1
        if suite == "trixie":
            raise ProvisionError("the archive went away")
        major = int(version.split(":")[1].split(".")[0])
        return QemuBuild(binary=f"/{suite}/qemu", version=Version(major, 0, 0), version_line="")

    monkeypatch.setattr(debian.DebianProvisioner, "resolve", resolve)
    monkeypatch.setattr(debian.DebianProvisioner, "fetch", fetch)
    monkeypatch.setattr(debian.os, "sched_getaffinity", lambda _pid: {0, 1})
    result = debian.provision(tuple(SERVED), cache=tmp_path)
    assert most[0] == 2  # two CPUs: two at once
    assert [b.binary for b in result.builds] == ["/bookworm/qemu", "/sid/qemu"]
    assert [b.request for b in result.builds] == [debian.request_of(SERVED["bookworm"], "x86_64"),
                                                  debian.request_of(SERVED["sid"], "x86_64")]
    assert list(result.errors) == ["trixie"] and "went away" in str(result.errors["trixie"])
