"""The real libvirt, run here: bookworm's libvirt 9.0.0 migrates the test guest
between two session daemons on the oldest build (the guest's pattern arrives,
and what it sent holds against CP-0001 with no difference), and from the newest
build it meets KD-0014 itself. Needs root and Debian's archive: run by
``tox -e libvirt`` (QMPCOMPAT_LIBVIRT=1), skipped otherwise, saying why."""

from __future__ import annotations

import os

import pytest

from qmpcompat.errors import ProvisionError
from qmpcompat.libvirt.observe import observe
from qmpcompat.libvirt.session import unusable
from qmpcompat.libvirt.tree import LibvirtTree, fetch_libvirt, libvirt_at, suite_of
from qmpcompat.provision import QemuBuild
from qmpcompat.provision.apt import PrivateApt
from qmpcompat.vectors.load import default_root, load
from qmpcompat.vectors.wire import Recording
from qmpcompat.vectors.wirecheck import hold

pytestmark = pytest.mark.skipif(
    os.environ.get("QMPCOMPAT_LIBVIRT") != "1" or bool(unusable()),
    reason="runs the real libvirt: tox -e libvirt (QMPCOMPAT_LIBVIRT=1, as root) "
           + (f"- here: {unusable()}" if unusable() else ""))


@pytest.fixture(scope="module")
def libvirt_9() -> LibvirtTree:
    return fetch_libvirt(suite_of("9.0.0-4+deb12u2"))


def test_a_cached_libvirt_needs_no_archive(libvirt_9: LibvirtTree,
                                           monkeypatch: pytest.MonkeyPatch) -> None:
    """Once unpacked, a profile's libvirt is found by its version even when no suite
    serves that version any more (sid moves on; a point release replaces one)."""
    monkeypatch.setattr(PrivateApt, "candidate", lambda *_a: "99.0.0-1")
    assert libvirt_at("9.0.0-4+deb12u2") == libvirt_9
    with pytest.raises(ProvisionError, match=r"serves libvirt 9\.0\.0-4"):
        fetch_libvirt(suite_of("9.0.0-4+deb12u2"))


def _held(doc: dict[str, object]) -> list[str]:
    profile = next(p for p in load().profiles if p.id == "CP-0001")
    rec = Recording("live", str(default_root()), doc)  # type: ignore[arg-type]
    return [str(d) for d in hold(profile, rec).differences]


def test_libvirt_migrates_the_test_guest_as_its_profile_says(libvirt_9: LibvirtTree,
                                                            oldest: QemuBuild) -> None:
    profile = next(p for p in load().profiles if p.id == "CP-0001")
    doc = observe(profile, libvirt_9, oldest, oldest)
    assert doc["outcome"] == {"virsh-exit": 0, "virsh-error": "", "state": "running",
                              "pattern": True, "guest-runs": True}
    assert not _held(doc)
    sent = [m for m in doc["messages"] if m.get("execute") == "migrate"]  # type: ignore[union-attr]
    assert sent[0]["arguments"] == {"detach": True, "resume": False, "uri": "fd:migrate"}


def test_libvirt_9_meets_kd_0014_itself(libvirt_9: LibvirtTree, newest: QemuBuild) -> None:
    profile = next(p for p in load().profiles if p.id == "CP-0001")
    doc = observe(profile, libvirt_9, newest, newest)
    outcome = doc["outcome"]
    assert isinstance(outcome, dict) and outcome["virsh-exit"] == 1
    assert "Parameter 'detach' is unexpected" in str(outcome["virsh-error"])
    assert not _held(doc)  # its cancel path (closefd, the resets) as the profile says
