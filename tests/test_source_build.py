"""Source builds: identities and labels of a tree, and a failed step named with
its log kept. Trees here are small stand-ins whose configure and build steps
run for real (the real QEMU build is `tox -e source`)."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from qmpcompat.errors import ProvisionError
from qmpcompat.provision.source_build import BuildFailed, build_source, named_sources
from qmpcompat.provision.source_tree import local_tree

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
                                                 step: str, configure: str) -> None:
    monkeypatch.setenv("QMPCOMPAT_CACHE", str(tmp_path / "cache"))
    root = _tree(tmp_path / "qemu", configure)
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
    assert not list((tmp_path / "cache" / "source" / "builds").glob("*")), "nothing is stored"


def test_named_sources(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("QMPCOMPAT_SOURCE", "debian:10.2.2, ~/qemu")
    assert named_sources(["/src/qemu"]) == ["/src/qemu", "debian:10.2.2", "~/qemu"]
