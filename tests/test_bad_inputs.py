"""Broken inputs, tried on purpose: each gets one clear message naming its
file, line or vector, and the run goes on with the rest."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
import yaml
from suite_runner import basic_vectors, outcomes, run_suite

from qmpcompat.cli import main
from qmpcompat.vectors.lint import lint

BAD = Path(__file__).resolve().parent / "bad-inputs"
CASES: dict[str, str] = yaml.safe_load((BAD / "cases.yaml").read_text())["vectors"]


def _with(tmp_path: Path, *names: str) -> Path:
    root = basic_vectors(tmp_path)
    for name in names:
        shutil.copy(BAD / name, root / "migrate" / name)
    return root


@pytest.mark.parametrize("name", sorted(CASES))
def test_lint_names_the_problem(tmp_path: Path, name: str) -> None:
    problems = [str(p) for p in lint(_with(tmp_path, name))]
    expected = f"vectors/migrate/{CASES[name]}"
    assert any(p.startswith(expected) for p in problems), "\n".join(problems)


def test_the_run_goes_on(tmp_path: Path) -> None:
    root = _with(tmp_path, *CASES)
    good = {v for v in ("M-0001", "M-0002", "MI-0001", "MI-0002", "MI-0003")}
    rc, out, results = run_suite(tmp_path, "-n", "2", vectors=root)
    assert rc == 1
    for message in CASES.values():
        assert f"vectors/migrate/{message}" in out, message
    got = outcomes(results)
    assert {o for (v, _q), o in got.items() if v in good} == {"passed"}
    refused = {v for (v, _q), o in got.items() if v not in good}
    assert refused == {"M-9003", "M-9004", "M-9005", "M-9006", "M-9007", "M-9008", "M-9009", "M-9010"}
    assert all(r["observed"] is None and r["message"].startswith("refused, the vector fails lint")
               for r in results["results"] if r["vector"] in refused), "a refused vector ran"


def test_bad_binaries(tmp_path: Path, script) -> None:  # type: ignore[no-untyped-def]
    not_qemu = script("not-qemu", 'echo "hello"\n')
    exits = script("qemu-exits", 'case "$1" in --version) echo "QEMU emulator version 9.9.9";; '
                   '*) echo "bye" >&2; exit 0;; esac\n')
    rc, out, results = run_suite(tmp_path, "--qemu", str(not_qemu), "--qemu", str(exits),
                                 "--qmpcompat-suites", "sid", vectors=basic_vectors(tmp_path))
    assert rc == 1
    assert f"{not_qemu}: is not QEMU (`--version` said: 'hello')" in out
    assert "QEMU exited with status 0 while starting up" in out and "stderr: bye" in out
    problems = {p["name"] for p in results["environment"]["problems"]}
    assert problems == {str(not_qemu), str(exits)}
    assert {r["qemu"] for r in results["results"]} == {b["version"] for b in
                                                      results["environment"]["binaries"]}
    assert all(r["outcome"] == "passed" for r in results["results"])


@pytest.mark.parametrize(("text", "message"), [
    (lambda full: full[: len(full) // 2], ": not JSON: "),
    (lambda full: '{"a": 1}', ": neither a qmpcompat snapshot nor a query-qmp-schema reply"),
])
def test_bad_snapshot(tmp_path: Path, text, message: str,  # type: ignore[no-untyped-def]
                      capsys: pytest.CaptureFixture[str]) -> None:
    snapshots = sorted((Path(__file__).resolve().parents[1] / "vectors" / "schema").glob("qemu-*.json"))
    bad = tmp_path / "snapshot.json"
    bad.write_text(text(snapshots[-1].read_text()))
    assert main(["diff", str(bad), str(snapshots[-1]), "--no-files"]) == 2
    err = capsys.readouterr().err
    assert str(bad) in err and message in err
    json.loads(snapshots[-1].read_text())  # the good one still reads
