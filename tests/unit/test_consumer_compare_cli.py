"""``qmpcompat consumers``: compare prints every difference and exits 1 on one,
``--mark`` writes the steps' observed lists, and observe says why it cannot run
where it cannot."""

from __future__ import annotations

import copy
import re
from pathlib import Path

import pytest
from helpers.suite_runner import consumer_vectors

from qmpcompat.cli import main
from qmpcompat.libvirt import session
from qmpcompat.vectors.lint import lint
from qmpcompat.vectors.yamlfile import load_yaml


def test_compare_passes_on_the_committed_set(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["consumers", "compare", "CP-0001"]) == 0
    out = capsys.readouterr().out
    assert "CP-0001 against libvirt 9.0.0-4+deb12u2, QEMU 7.2.22 -> 7.2.22" in out
    assert "0 difference(s)" in out and "difference(s)\n  " not in out


def test_compare_names_what_it_cannot_hold(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["consumers", "compare", "CP-0001", "CP-9999"]) == 2
    assert "no such profile: CP-9999" in capsys.readouterr().err
    assert main(["consumers", "compare", "CP-0004"]) == 0  # Proxmox: read from source, not run
    assert "CP-0004: no recordings of proxmox-qemu-server 9.2.6" in capsys.readouterr().out


def test_compare_names_a_difference(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    vectors = consumer_vectors(tmp_path, ("uri: fd:migrate", "uri: fd:other"),
                               "libvirt-9.0.0.yaml", "CP-0001")
    assert main(["consumers", "compare", "--vectors", str(vectors)]) == 1
    out = capsys.readouterr().out
    assert re.search(r"arguments src-migrate #\d+: uri: the profile sends 'fd:other', libvirt sent "
                     "'fd:migrate'", out), out


def test_mark_writes_the_observed_lists(tmp_path: Path) -> None:
    vectors = consumer_vectors(tmp_path, None, "libvirt-9.0.0.yaml", "CP-0001")
    path = vectors / "consumers" / "libvirt-9.0.0.yaml"
    path.write_text(re.sub(r"\n    observed: \[[^\]]*\]", "", path.read_text()))
    assert any("list them in its observed" in str(p) for p in lint(vectors))
    parsed = load_yaml(path)  # the parse every reader of the file shares in this process
    as_parsed = copy.deepcopy(parsed)
    assert main(["consumers", "compare", "--mark", "--vectors", str(vectors)]) == 0
    assert parsed == as_parsed  # --mark changed a copy of it
    assert "    observed: [7.2.22-to-7.2.22, 7.2.22-to-11.1.3," in path.read_text()
    assert not [str(p) for p in lint(vectors) if "consumers/" in p.file]


def test_observe_says_why_it_cannot_run(monkeypatch: pytest.MonkeyPatch,
                                        capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.setattr(session.os, "geteuid", lambda: 1000)
    assert main(["consumers", "observe", "CP-0001"]) == 2
    assert "needs root" in capsys.readouterr().err
