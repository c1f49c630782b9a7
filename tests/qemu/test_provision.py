"""The provisioner against the real Debian archive and real builds."""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

import pytest

from qmpcompat import selfcheck
from qmpcompat.errors import BinaryError, ProvisionError, UnknownSuiteError
from qmpcompat.provision import QemuBuild, build_from_path, provision
from qmpcompat.provision.apt import suite_sources
from qmpcompat.provision.build import load_manifest
from qmpcompat.provision.debian import cache_dir, upstream_version
from qmpcompat.selection import select


def test_default_set_spans_three_majors(builds: list[QemuBuild]) -> None:
    majors = {b.version[0] for b in builds}
    assert len(majors) >= 3, [b.describe() for b in builds]
    assert len({b.version for b in builds}) == len(builds), "versions must be distinct"


def test_each_build_is_what_qemu_says(builds: list[QemuBuild]) -> None:
    for build in builds:
        out = subprocess.run([*build.command()[:4], "--version"], env=build.environ(),
                             capture_output=True, text=True, check=True).stdout
        assert out.splitlines()[0] == build.version_line
        assert build.version_str in build.version_line
        assert build.package.split()[-1] in build.version_line  # the Debian version
        assert Path(build.loader).is_file() and build.env["QEMU_MODULE_DIR"]


def test_cached_run_downloads_nothing(builds: list[QemuBuild], monkeypatch: pytest.MonkeyPatch,
                                      tmp_path: Path) -> None:
    # With no apt-get or dpkg-deb on PATH, only the cache can answer.
    monkeypatch.setenv("PATH", str(tmp_path))
    again = provision()
    assert not again.errors
    assert [b.binary for b in again.builds] == [b.binary for b in builds
                                                if b.origin.startswith("debian:")]


def test_unknown_suite_is_one_clear_error(builds: list[QemuBuild]) -> None:
    result = provision(["bookworm", "no-such-suite"])
    assert isinstance(result.errors["no-such-suite"], UnknownSuiteError)
    assert "no-such-suite" in str(result.errors["no-such-suite"])
    assert [b.version[0] for b in result.builds] == [7]  # the good suite still provisions


def test_host_without_apt(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PATH", str(tmp_path))
    with pytest.raises(ProvisionError, match="no apt-get") as info:
        provision(["bookworm"], cache=tmp_path / "cache")
    assert "--qemu" in str(info.value)


def test_named_binary_and_bad_ones(newest: QemuBuild, script, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    notexec = tmp_path / "qemu-noexec"
    notexec.write_text("#!/bin/sh\n")
    liar = script("qemu-liar", 'echo "not a qemu at all"\n')
    sel = select([str(tmp_path / "missing"), str(notexec), str(liar), "/bin/true"], suites=[])
    reasons = [p.error.reason for p in sel.problems if isinstance(p.error, BinaryError)]
    assert reasons[:3] == ["no such file", "not executable",
                           "is not QEMU (`--version` said: 'not a qemu at all')"]
    assert reasons[3].startswith("is not QEMU (`--version` said: 'true (GNU coreutils)")
    assert all(p.error.hint for p in sel.problems)
    assert sel.builds == []


def test_build_dir_binary(newest: QemuBuild, script) -> None:  # type: ignore[no-untyped-def]
    # A user's binary is any executable that is QEMU: here a wrapper around a real build.
    env = " ".join(f"{k}={v}" for k, v in newest.env.items())
    wrapper = script("qemu-system-x86_64", f'{env} exec {" ".join(newest.command())} "$@"\n')
    build = build_from_path(str(wrapper))
    assert build.version == newest.version and build.origin == "path"
    assert build.target == "x86_64"


def test_cache_dir_follows_environment(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.delenv("QMPCOMPAT_CACHE", raising=False)
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
    assert cache_dir() == tmp_path / "qmpcompat"
    monkeypatch.setenv("QMPCOMPAT_CACHE", str(tmp_path / "elsewhere"))
    assert cache_dir() == tmp_path / "elsewhere"


@pytest.mark.parametrize(("debian", "upstream"), [
    ("1:10.0.2+ds-2+deb13u1~bpo12+1", "10.0.2"),
    ("1:7.2+dfsg-7+deb12u18+b3", "7.2"),
    ("1:11.1.3+ds-1", "11.1.3"),
    ("8.2.1-1", "8.2.1"),
])
def test_upstream_version(debian: str, upstream: str) -> None:
    assert upstream_version(debian) == upstream


def test_suite_sources() -> None:
    assert suite_sources("bookworm-backports") == ["bookworm", "bookworm-backports"]
    assert suite_sources("sid") == ["sid"]
    assert suite_sources("experimental") == ["sid", "experimental"]


def test_provisioned_tree_has_no_absolute_links(builds: list[QemuBuild]) -> None:
    root = Path(builds[0].binary).parents[2]
    for dirpath, dirnames, filenames in os.walk(root):
        for name in dirnames + filenames:
            path = Path(dirpath) / name
            if path.is_symlink():
                assert not os.readlink(path).startswith("/"), path


def test_version_probe_follows_the_timeout(script) -> None:  # type: ignore[no-untyped-def]
    # Not a fixed 20 s: the run's --qmpcompat-timeout bounds the --version probe too.
    slow = script("qemu-slow", "sleep 30\n")
    sel = select([str(slow)], suites=[], start_timeout=0.5)
    assert [p.error.reason for p in sel.problems if isinstance(p.error, BinaryError)] == [
        "`--version` did not finish within 0.5s"]


def _copy_cache(builds: list[QemuBuild], tmp_path: Path) -> tuple[QemuBuild, Path]:
    """A copy of the cache with the bookworm build (and the archive's lists) in it."""
    seven = next(b for b in builds if b.version[0] == 7)
    prefix = Path(seven.binary).parents[2]
    cache = tmp_path / "cache"
    (cache / "builds").mkdir(parents=True)
    subprocess.run(["cp", "-a", str(prefix), str(cache / "builds" / prefix.name)], check=True)
    for name in ("apt", "suites.json"):
        subprocess.run(["cp", "-a", str(cache_dir() / name), str(cache / name)], check=True)
    return seven, cache / "builds" / prefix.name


def test_copied_cache_runs_its_own_files(builds: list[QemuBuild], tmp_path: Path) -> None:
    seven, copy = _copy_cache(builds, tmp_path)
    build = load_manifest(copy)
    assert build is not None
    here = str(copy.resolve())
    for path in [build.binary, build.loader, *build.data_dirs, *build.library_path.split(":"),
                 *build.env.values()]:
        assert path.startswith(here + "/"), f"{path} is outside the copied cache"
    out = subprocess.run([*build.command()[:4], "--version"], env=build.environ(),
                         capture_output=True, text=True, check=True).stdout
    assert out.splitlines()[0] == seven.version_line
    # A manifest that names files outside its own tree is not trusted.
    manifest = copy / "build.json"
    data = json.loads(manifest.read_text())
    data["loader"] = "/lib64/ld-linux-x86-64.so.2"
    manifest.write_text(json.dumps(data))
    assert load_manifest(copy) is None


def test_corrupted_cached_build_is_provisioned_again(builds: list[QemuBuild],
                                                    tmp_path: Path) -> None:
    seven, copy = _copy_cache(builds, tmp_path)
    # Starts `--version`, but dies at start-up: its TCG accelerator module is gone.
    for module in (copy / "usr/lib/x86_64-linux-gnu/qemu").glob("accel-tcg-*.so"):
        module.unlink()
    said: list[str] = []
    sel = select(suites=["bookworm"], cache=tmp_path / "cache", progress=said.append,
                 start_timeout=10)
    assert not sel.problems, [str(p) for p in sel.problems]
    assert [b.version for b in sel.builds] == [seven.version]
    assert any("does not start; provisioning it again" in s for s in said), said
    assert list((copy / "usr/lib/x86_64-linux-gnu/qemu").glob("accel-tcg-*.so"))


def test_only_self_checks_just_the_builds_it_keeps(newest: QemuBuild,
                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    """``--only LABEL`` narrows the selection before the self-check: a command run
    on one build does not start and check every other build of the set."""
    checked: list[str] = []
    real = selfcheck.provenance

    def spy(build: QemuBuild, timeout: float) -> QemuBuild:
        checked.append(build.label)
        return real(build, timeout)

    monkeypatch.setattr(selfcheck, "provenance", spy)
    sel = select(start_timeout=20.0, only=[newest.label], recheck=True)  # none remembered
    assert [b.label for b in sel.builds] == checked == [newest.label]
