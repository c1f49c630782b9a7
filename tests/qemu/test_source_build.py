"""Source builds: identities and labels of a tree, and a failed step named with
its log kept. Trees here are small stand-ins whose configure and build steps
run for real (the real QEMU build is `tox -e source`)."""

from __future__ import annotations

import os
import shlex
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest
from helpers.shared import Shared

from qmpcompat.errors import ProvisionError
from qmpcompat.provision import QemuBuild, firmware
from qmpcompat.provision.build import probe_version
from qmpcompat.provision.source_build import BuildFailed, build_source, named_sources
from qmpcompat.provision.source_tree import local_tree
from qmpcompat.selection import select

FAILING_NINJA = """rule fail
  command = echo "compiling..." && echo "error: broken on purpose" && false
build qemu-system-x86_64: fail
"""


def _tree(root: Path, configure: str) -> Path:
    (root / "qapi").mkdir(parents=True)
    (root / "qapi" / "qapi-schema.json").write_text("{ 'command': 'x' }\n")
    (root / "VERSION").write_text("11.2.50\n")
    script = root / "configure"
    script.write_text("#!/bin/sh\n" + configure)
    script.chmod(0o755)
    return root


def _git(root: Path, *args: str) -> str:
    return subprocess.run(["git", "-C", str(root), "-c", "user.name=t", "-c",
                           "user.email=t@localhost", *args], capture_output=True, text=True,
                          check=True).stdout


def test_git_identity_and_label(tmp_path: Path) -> None:
    root = _tree(tmp_path / "qemu", "exit 0\n")
    _git(root, "init", "-q")
    _git(root, "add", "-A")
    _git(root, "commit", "-q", "-m", "tree")
    commit = _git(root, "rev-parse", "HEAD").strip()
    clean = local_tree(str(root))
    assert clean.label == f"git {commit[:7]}" and clean.identity == f"git-{commit}"
    (root / "VERSION").write_text("11.2.51\n")
    dirty = local_tree(str(root))
    assert dirty.label == f"git {commit[:7]}, dirty"
    assert dirty.identity.startswith(f"git-{commit}-dirty-")
    (root / "new-file.c").write_text("int x;\n")  # an untracked file is a change too
    assert local_tree(str(root)).identity != dirty.identity
    assert clean.workdir_key == dirty.workdir_key  # one build dir per checkout


def test_not_a_tree(tmp_path: Path) -> None:
    with pytest.raises(ProvisionError, match="not a QEMU source tree"):
        local_tree(str(tmp_path))


@pytest.mark.parametrize(("step", "configure"), [
    ("configure", 'echo "ERROR: glib-2.0 not found" >&2; exit 1\n'),
    ("compile", f"cat > build.ninja <<'EOF'\n{FAILING_NINJA}EOF\n"),
])
def test_a_failed_step_is_named_and_its_log_kept(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                 module_cache: Path, step: str, configure: str) -> None:
    monkeypatch.setenv("QMPCOMPAT_CACHE", str(module_cache))
    root = _tree(tmp_path / "qemu", configure)
    stored = module_cache / "source" / "builds"
    before = sorted(stored.glob("*"))
    said: list[str] = []
    with pytest.raises(BuildFailed) as info:
        build_source(str(root), progress=said.append)
    err = info.value
    assert err.step == step and f"failed at step '{step}'" in str(err)
    assert err.log.is_file() and str(err.log) in str(err)
    log = err.log.read_text()
    assert ("glib-2.0 not found" if step == "configure" else "broken on purpose") in log
    assert ("glib-2.0 not found" if step == "configure" else "broken on purpose") in str(err)
    assert any(s.startswith("configure:") for s in said), said
    assert sorted(stored.glob("*")) == before, "nothing is stored"


def test_named_sources(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("QMPCOMPAT_SOURCE", "debian:10.2.2, ~/qemu")
    assert named_sources(["/src/qemu"]) == ["/src/qemu", "debian:10.2.2", "~/qemu"]


# A tree whose "compile" links qemu-system-x86_64 as a script that runs a real
# QEMU (a provisioned Debian build, through its own loader): the cache entry it
# makes starts and speaks QMP like a real source build's.
REAL_NINJA = """rule link
  command = cp stand-in $out && chmod +x $out
build qemu-system-x86_64: link stand-in
"""


@pytest.fixture(scope="module")
def module_cache(tmp_path_factory: pytest.TempPathFactory, shared: Shared) -> Path:
    """One private cache for the module's trees on each xdist worker (each tree
    has its own identity, so its own build dir and cache entry). Its build venv
    (pip install meson) is made once per session, by a build in a cache of its
    own that stops at configure, and linked in."""

    def make(cache: Path) -> None:
        with pytest.MonkeyPatch.context() as mp, pytest.raises(BuildFailed, match="'configure'"):
            mp.setenv("QMPCOMPAT_CACHE", str(cache))
            build_source(str(_tree(cache / "trees" / "first", "exit 1\n")))

    venv = shared.once("source-build-venv", make) / "source" / "pyenv"
    cache = tmp_path_factory.mktemp("cache")
    (cache / "source").mkdir()
    (cache / "source" / "pyenv").symlink_to(venv)
    return cache


@pytest.fixture
def real_tree(tmp_path: Path, newest: QemuBuild, module_cache: Path) -> Iterator[Path]:
    """A stand-in tree building a script that runs ``newest``, in a private cache."""
    env = " ".join(f"{k}={shlex.quote(v)}" for k, v in newest.env.items())
    runner = f'#!/bin/sh\nexec env {env} {" ".join(map(shlex.quote, newest.command()))} "$@"\n'
    configure = (f"cat > stand-in <<'EOF'\n{runner}EOF\n"
                 f"cat > build.ninja <<'EOF'\n{REAL_NINJA}EOF\n")
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("QMPCOMPAT_CACHE", str(module_cache))
        yield _tree(tmp_path / "qemu", configure)


def _runs(build: QemuBuild) -> bool:
    try:
        probe_version(build.command(), build.environ(), build.binary)
        return True
    except ProvisionError:
        return False


def test_a_broken_cache_entry_is_rebuilt(real_tree: Path) -> None:
    first = build_source(str(real_tree))
    store = Path(first.binary).parent
    assert _runs(first)
    breakages = {
        "a binary that no longer runs": lambda: Path(first.binary).write_text("#!/bin/sh\nexit 1\n"),
        "a half-written entry (no build.json)": lambda: (store / "build.json").unlink(),
        "a binary that is gone": lambda: Path(first.binary).unlink(),
    }
    for what, damage in breakages.items():
        damage()
        said: list[str] = []
        again = build_source(str(real_tree), progress=said.append)
        assert again.binary == first.binary and _runs(again), what
        assert any("is broken" in s and "rebuilding it" in s for s in said), (what, said)
    # A whole entry is used as it is: no message, nothing rebuilt.
    said = []
    assert build_source(str(real_tree), progress=said.append) == first and said == []


def test_a_cached_build_that_dies_at_start_is_rebuilt(real_tree: Path) -> None:
    first = build_source(str(real_tree))
    work_binary = (Path(os.environ["QMPCOMPAT_CACHE"]) / "source" / "work" /
                   f"{local_tree(str(real_tree)).workdir_key}-minimal-x86_64" / "qemu-system-x86_64")
    # It still answers --version (so the cache looks whole) but dies when started;
    # the build dir's binary is broken the same way (a rebuild must relink it).
    liar = ('#!/bin/sh\n[ "$1" = --version ] && echo "QEMU emulator version 11.2.50" && exit 0\n'
            'echo "qemu: broken on purpose" >&2; exit 1\n')
    for path in (Path(first.binary), work_binary):
        path.write_text(liar)
    said: list[str] = []
    sel = select(sources=[str(real_tree)], start_timeout=20.0, progress=said.append)
    assert not sel.problems, [str(p) for p in sel.problems]
    (build,) = sel.builds
    assert build.features_probed and "machine:none" in build.features
    assert any("discarding the broken cached build" in s for s in said), said
    assert Path(first.binary).read_text() != liar and work_binary.read_text() != liar


def test_firmware_is_copied_and_what_is_missing_named(tmp_path: Path,
                                                      monkeypatch: pytest.MonkeyPatch) -> None:
    tree, work, seabios = tmp_path / "tree", tmp_path / "work", tmp_path / "seabios"
    for d in (tree / "pc-bios", work / "pc-bios" / "optionrom", seabios):
        d.mkdir(parents=True)
    (tree / "pc-bios" / "kvmvapic.bin").write_bytes(b"tree")
    (tree / "pc-bios" / "README").write_text("not firmware")
    (work / "pc-bios" / "optionrom" / "multiboot_dma.bin").write_bytes(b"built")
    (work / "pc-bios" / "optionrom" / "linuxboot_dma.bin").symlink_to(tree / "pc-bios" / "kvmvapic.bin")
    (seabios / "bios-256k.bin").write_bytes(b"host")
    (seabios / "kvmvapic.bin").write_bytes(b"host's, not used: the tree has one")
    monkeypatch.setattr(firmware, "SEABIOS_DIR", tmp_path / "no-seabios")
    assert firmware.gather(tree, work, tmp_path / "a") == ["bios-256k.bin"]
    monkeypatch.setattr(firmware, "SEABIOS_DIR", seabios)
    dest = tmp_path / "b"
    assert firmware.gather(tree, work, dest) == []
    assert (dest / "kvmvapic.bin").read_bytes() == b"tree" and not (dest / "README").exists()
    assert (dest / "bios-256k.bin").read_bytes() == b"host"
    assert not (dest / "linuxboot_dma.bin").is_symlink(), "a copy, never a link"


def test_a_cached_binary_named_with_qemu_keeps_its_firmware(real_tree: Path) -> None:
    stored = build_source(str(real_tree))
    sel = select([stored.binary], start_timeout=20.0)
    assert not sel.problems, [str(p) for p in sel.problems]
    (build,) = sel.builds
    assert build.data_dirs == stored.data_dirs and build.data_dirs[0].endswith("/share")
