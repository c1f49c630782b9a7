"""A build's self-check is remembered by what its outcome depends on
(qmpcompat.checkmemo): the same build in the same state takes the earlier
check, and says so; a changed build, host dir or code, a failed check, a
wrapper and ``recheck`` check afresh."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import pytest

from qmpcompat import checkmemo, selfcheck
from qmpcompat.errors import QemuDied
from qmpcompat.harness.features import with_features
from qmpcompat.provision.build import QemuBuild
from qmpcompat.selection import select


class Counted:
    """The real self-check and feature probe, counting its calls."""

    def __init__(self) -> None:
        self.calls = 0

    def __call__(self, build: QemuBuild) -> QemuBuild:
        self.calls += 1
        return with_features(selfcheck.provenance(build, 10.0), 10.0)


def test_the_same_build_is_checked_once_and_says_so(newest: QemuBuild, tmp_path: Path) -> None:
    check = Counted()
    first = checkmemo.checked(newest, check, tmp_path)
    again = checkmemo.checked(newest, check, tmp_path)
    assert check.calls == 1
    assert first.provenance is not None and first.provenance.remembered == ""
    assert again.provenance is not None and again.provenance.remembered  # when it ran
    assert replace(again, provenance=replace(again.provenance, remembered="")) == first
    assert again.features_probed and again.features == first.features
    afresh = checkmemo.checked(newest, check, tmp_path, recheck=True)
    assert check.calls == 2 and afresh.provenance is not None and not afresh.provenance.remembered


def test_a_changed_tree_or_host_dir_checks_again(newest: QemuBuild, tmp_path: Path) -> None:
    """A file added to one of the build's own dirs (here a ``-L`` dir of its), a
    ``QEMU*`` variable in the environment, a host QEMU dir appearing: each is a new
    key, and a new check."""
    own = tmp_path / "own"
    own.mkdir()
    build = replace(newest, data_dirs=(*newest.data_dirs, str(own)))
    check, cache = Counted(), tmp_path / "cache"
    checkmemo.checked(build, check, cache)
    (own / "extra.rom").write_bytes(b"\0" * 16)
    checkmemo.checked(build, check, cache)
    assert check.calls == 2
    checkmemo.checked(build, check, cache)
    assert check.calls == 2
    with pytest.MonkeyPatch.context() as mp:  # an environment QEMU reads, as its modules' dir
        mp.setenv("QEMU_MODULE_DIR", str(own))
        checkmemo.checked(build, check, cache)
    assert check.calls == 3
    host = tmp_path / "host-qemu"
    hosted = replace(build, host_dirs=(*build.host_dirs, str(host)))
    before = checkmemo.key(hosted)
    host.mkdir()
    assert checkmemo.key(hosted) != before


def test_a_failed_check_is_never_remembered(newest: QemuBuild, tmp_path: Path) -> None:
    calls: list[str] = []

    def failing(build: QemuBuild) -> QemuBuild:
        calls.append(build.label)
        raise QemuDied("at start-up", 1)

    for _ in range(2):
        with pytest.raises(QemuDied):
            checkmemo.checked(newest, failing, tmp_path)
    assert len(calls) == 2 and not list(tmp_path.iterdir())


def test_a_wrapper_is_never_remembered(newest: QemuBuild, tmp_path: Path) -> None:
    wrapper = tmp_path / "qemu-wrapper"
    wrapper.write_text(f'#!/bin/sh\nexec {" ".join(newest.command())} "$@"\n')
    wrapper.chmod(0o755)
    assert checkmemo.key(QemuBuild(str(wrapper), newest.version, newest.version_line)) is None
    assert checkmemo.key(newest) is not None


def test_a_run_takes_an_earlier_check_and_says_so(tmp_path: Path) -> None:
    """``select`` as every run calls it: afresh with ``recheck`` (as `qmpcompat
    provision` and --qmpcompat-fresh ask), then remembered, in the progress
    line and in the provenance every report shows."""
    said: list[str] = []
    first = select(suites=["sid"], start_timeout=10.0, recheck=True, progress=said.append)
    again = select(suites=["sid"], start_timeout=10.0, progress=said.append)
    assert not first.problems and not again.problems
    [fresh], [kept] = first.builds, again.builds
    assert fresh.provenance is not None and not fresh.provenance.remembered
    assert kept.provenance is not None and kept.provenance.remembered
    assert f"self-check of {kept.label} taken from an earlier run" in " ".join(said)
