"""A hostile ``$TMPDIR`` (spaces, ``;``, ``,``, quotes, ``$(...)``) changes
nothing: real migrations through every kind of path the harness builds (the
QMP socket option, unix and file uris, exec sinks as a uri and as an argv) still
complete, and nothing is written outside the case's directory."""

from __future__ import annotations

import os
import shutil
import tempfile
from pathlib import Path

import pytest

from qmpcompat.provision import QemuBuild
from qmpcompat.reaper import OWNER_PREFIX, owner
from qmpcompat.vectors.load import load
from qmpcompat.vectors.match import judge
from qmpcompat.vectors.run import Runner

# exec uri sink, exec argv sink, file uri with offset, unix socket
VECTORS = ("M-0006", "M-0040", "M-0010", "MI-0001")
NAMES = ["a b", "a;touch PWNED;b", "a,b", "it's", 'say"x', "$(touch PWNED)", "x{port}"]


@pytest.mark.parametrize("name", NAMES)
def test_hostile_tmpdir(name: str, newest: QemuBuild, monkeypatch: pytest.MonkeyPatch) -> None:
    outer = Path(tempfile.mkdtemp(prefix="qh-", dir="/tmp"))
    base, cwd = outer / name, outer / "cwd"
    base.mkdir()
    cwd.mkdir()
    monkeypatch.chdir(cwd)
    monkeypatch.setattr(tempfile, "tempdir", str(base))
    vectors = {v.id: v for v in load().vectors}
    try:
        with Runner(timeout=10) as runner:  # closed: every case's teardown has finished
            for vid in VECTORS:
                vec = vectors[vid]
                obs = runner.run(vec, newest)
                verdict = judge(vec, newest.version, obs, [])
                assert verdict.outcome == "passed", (vid, obs.summary())
        assert sorted(p.name for p in outer.iterdir()) == sorted([name, "cwd"]), \
            "something was written next to the case dirs"
        assert not list(cwd.iterdir()), "something ran in QEMU's working directory"
        assert [p.name for p in base.iterdir()] == [f"{OWNER_PREFIX}{owner()}"], \
            "a case dir was left behind"  # (this process's lock stays while it lives)
        assert not os.path.exists("/tmp/PWNED")
    finally:
        shutil.rmtree(outer, ignore_errors=True)
