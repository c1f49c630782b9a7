"""Broken inputs, tried on purpose: each gets one clear message naming its
file, line or vector, and the run goes on with the rest."""

from __future__ import annotations

import contextlib
import json
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml
from helpers import zygote
from helpers.shared import Shared
from helpers.suite_runner import PYTEST, REPO, basic_vectors, outcomes, run_suite

from qmpcompat.cli import main
from qmpcompat.errors import UnsafeInput
from qmpcompat.harness import Qemu, QemuOptions
from qmpcompat.provision import QemuBuild
from qmpcompat.vectors.lint import lint
from qmpcompat.vectors.load import load_vector_file
from qmpcompat.vectors.run import Runner

BAD = Path(__file__).resolve().parent / "bad-inputs"
CORPUS = yaml.safe_load((BAD / "cases.yaml").read_text())
CASES: dict[str, str] = CORPUS["vectors"]
RUNS: dict[str, dict[str, str]] = CORPUS["runs"]  # lint takes them; they are hostile when run


def _with(tmp_path: Path, *names: str) -> Path:
    root = basic_vectors(tmp_path)
    for name in names:
        shutil.copy(BAD / name, root / "migrate" / name)
    return root


def _linted(shared: Shared) -> list[str]:
    """What lint says of the basic vectors with every case beside them, once
    per session (each problem names its own file)."""

    def make(path: Path) -> None:
        problems = [str(p) for p in lint(_with(path, *CASES))]
        (path / "problems.json").write_text(json.dumps(problems))

    return list(json.loads((shared.once("bad-inputs-lint", make) / "problems.json").read_text()))


@pytest.mark.parametrize("name", sorted(CASES))
def test_lint_names_the_problem(shared: Shared, name: str) -> None:
    problems = _linted(shared)
    expected = f"vectors/migrate/{CASES[name]}"
    assert any(p.startswith(expected) for p in problems), "\n".join(problems)


def test_a_tree_over_the_limits_is_one_problem(shared: Shared) -> None:
    """huge-tree.yaml's 1,200 members are not each gone through: the tree is too
    large, and that is all lint (and the run) says of its arguments."""
    said = [p for p in _linted(shared) if p.startswith("vectors/migrate/huge-tree.yaml")
            and "argument" in p]
    assert len(said) == 1 and "argument tree too large" in said[0], said[:3]


ESCAPED = Path("/tmp/qmpcompat-escaped")  # what the hostile inputs try to create
DAEMON = b"sleep\x00987650\x00"  # ... and to leave running


def _escaped() -> list[str]:
    """Everything the hostile bad inputs would leave outside their case dirs."""
    found = [str(p) for p in ESCAPED.parent.glob(ESCAPED.name + "*")]
    for proc in Path("/proc").iterdir():
        with contextlib.suppress(OSError):
            if proc.name.isdigit() and (proc / "cmdline").read_bytes() == DAEMON:
                found.append(f"process {proc.name}: sleep 987650")
    return found


def test_the_run_goes_on(tmp_path: Path) -> None:
    assert not _escaped(), "left over from an earlier run: remove it first"
    root = _with(tmp_path, *CASES, *RUNS)
    good = {"M-0002", "MI-0001", "MI-0002", "MI-0003"}  # M-0001 is duplicated: neither copy runs
    rc, out, results = run_suite(tmp_path, "-n", "2", vectors=root)
    assert rc == 1
    for message in CASES.values():
        assert f"vectors/migrate/{message}" in out, message
    got = outcomes(results)
    assert {o for (v, _q), o in got.items() if v in good} == {"passed"}
    formatting = {"M-9028"}  # a file-level problem (comments): its vector still runs
    for name, said in RUNS.items():
        assert said["suite"] in out, name
    hostile = {"M-9031"}  # valid, and fails when run (quickly)
    assert {o for (v, _q), o in got.items() if v in hostile} == {"failed"}
    refused = {v for (v, _q), o in got.items() if v not in good | formatting | hostile}
    assert refused == {f"M-90{n:02}" for n in [*range(3, 11), *range(12, 21), 30, 32]}
    assert all(r["observed"] is None and r["message"].startswith("refused, the vector fails lint")
               for r in results["results"] if r["vector"] in refused), "a refused vector ran"
    # nothing happened outside the case dirs: no file, no process (run_suite also
    # checked that no temp dir and no process of the run is left)
    assert not _escaped()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["pytest.log", "reports", "vectors"]


def test_the_harness_refuses_what_the_vectors_asked(newest: QemuBuild) -> None:
    """Below lint and the runner, the harness itself refuses the same things:
    nothing is started or sent."""
    with pytest.raises(UnsafeInput, match="machine property 'kernel'"):
        Qemu(newest, QemuOptions(machine="pc,kernel=/etc/hostname")).start()
    with Qemu(newest) as q:
        with pytest.raises(UnsafeInput, match="cpr-exec-command"):
            q.execute("migrate-set-parameters", {"mode": "cpr-exec", "cpr-exec-command": [
                "/bin/sh", "-c", f"touch {ESCAPED}"]})
        assert q.execute("query-migrate-parameters").result.get("mode") != "cpr-exec"
    for name in ("cpr-exec.yaml", "machine-file.yaml", "peer-exec.yaml"):
        for vec in load_vector_file(BAD / name, name)[0]:
            obs = Runner().run(vec, newest)
            assert obs.result == "error" and "refused by the safety gate" in obs.detail
    assert not _escaped()


def test_bad_binaries(tmp_path: Path, script) -> None:  # type: ignore[no-untyped-def]
    not_qemu = script("not-qemu", 'echo "hello"\n')
    exits = script("qemu-exits", 'case "$1" in --version) echo "QEMU emulator version 9.9.9";; '
                   '*) printf "bye\\n  ::error title=forged::x\\n" >&2; exit 0;; esac\n')
    rc, out, results = run_suite(tmp_path, "--qemu", str(not_qemu), "--qemu", str(exits),
                                 "--qmpcompat-suites", "sid", vectors=basic_vectors(tmp_path))
    assert rc == 1
    assert f"{not_qemu}: is not QEMU (`--version` said: 'hello')" in out
    assert "QEMU exited with status 0 while starting up" in out and "stderr: bye" in out
    assert "forged" in out  # what QEMU said is shown, never as a workflow command
    assert not [line for line in out.splitlines() if line.lstrip().startswith("::")], out
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
    snapshots = sorted((Path(__file__).resolve().parents[2] / "vectors" / "schema").glob("qemu-*.json"))
    bad = tmp_path / "snapshot.json"
    bad.write_text(text(snapshots[-1].read_text()))
    assert main(["diff", str(bad), str(snapshots[-1]), "--no-files"]) == 2
    err = capsys.readouterr().err
    assert str(bad) in err and message in err
    json.loads(snapshots[-1].read_text())  # the good one still reads


def test_fix_never_drops_comments(tmp_path: Path) -> None:
    root = _with(tmp_path, "comments.yaml")
    path = root / "migrate" / "comments.yaml"
    before = path.read_text()
    problems = [str(p) for p in lint(root, fix=True)]
    assert path.read_text() == before
    assert any("comments at line 7" in p and "(not rewritten)" in p for p in problems), problems


def test_a_duplicate_id_names_both_copies(tmp_path: Path) -> None:
    problems = [str(p) for p in lint(_with(tmp_path, "duplicate-ids.yaml"))]
    assert ("vectors/migrate/basic.yaml:3: M-0001: duplicate id (ids are never reused): also at "
            "vectors/migrate/duplicate-ids.yaml:3") in problems


@pytest.mark.parametrize(("layout", "message"), [
    ("missing", "does not exist"),
    ("no-schema", "has no vector-file.schema.json"),
    ("no-vectors", "holds no vector files"),
    ("flat", "holds no vector files"),  # vector files beside the schema, not in migrate/
])
def test_unusable_vector_dirs_are_usage_errors(tmp_path: Path, layout: str, message: str,
                                               capsys: pytest.CaptureFixture[str]) -> None:
    root = basic_vectors(tmp_path)
    if layout == "missing":
        shutil.rmtree(root)
    elif layout == "no-schema":
        (root / "vector-file.schema.json").unlink()
    else:
        for sub in ("migrate", "migrate-incoming"):
            if layout == "flat":
                shutil.copy(root / sub / "basic.yaml", root / f"{sub}.yaml")
            shutil.rmtree(root / sub)
    assert main(["lint", "--vectors", str(root)]) == 2
    assert message in capsys.readouterr().err
    assert main(["try", "M-0001", "--vectors", str(root)]) == 2
    if layout == "flat":
        rc, out = _pytest_usage(tmp_path, "--qmpcompat-vectors", str(root))
        assert rc == 4 and f"--qmpcompat-vectors: vector directory {root} {message}" in out


TIMEOUTS = ["nan", "inf", "0", "-1", "soon"]


def _timeouts_refused(shared: Shared) -> dict[str, tuple[int, str]]:
    """``pytest suites --qmpcompat-timeout VALUE`` for each bad VALUE, by pytest's
    entry point, all in one process (once per session): VALUE -> (exit status,
    output)."""
    code = ("import sys, pytest\n"
            "for value in sys.argv[2:]:\n"
            "    print(f'=== {value}', flush=True)\n"
            "    rc = pytest.main(['-p', 'no:cacheprovider', '-p', 'no:hypothesispytest', 'suites',\n"
            "                      '--qmpcompat-reports', sys.argv[1], '--qmpcompat-timeout', value])\n"
            "    sys.stderr.flush()\n"
            "    print(f'=== exit {int(rc)}', flush=True)\n")

    def make(path: Path) -> None:
        proc = subprocess.run([sys.executable, "-c", code, str(path / "reports"), *TIMEOUTS],
                              cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                              text=True, timeout=120)
        (path / "out").write_text(proc.stdout)

    out = (shared.once("bad-timeouts", make) / "out").read_text()
    runs = re.findall(r"^=== ([^\n]*)\n(.*?)^=== exit (\d+)$", out, re.MULTILINE | re.DOTALL)
    return {value: (int(rc), said) for value, said, rc in runs}


@pytest.mark.parametrize("value", TIMEOUTS)
def test_bad_timeouts_are_refused(shared: Shared, value: str) -> None:
    rc, out = _timeouts_refused(shared)[value]
    assert rc == 4 and "argument --qmpcompat-timeout" in out
    with pytest.raises(SystemExit) as exited:  # argparse's usage error
        main(["hunt", "--timeout", value, "--budget", "1s"])
    assert exited.value.code == 2


def test_try_exit_status(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    root = _with(tmp_path, "cpr-exec.yaml")
    assert main(["try", "M-9999", "--vectors", str(root), "--suites", "sid"]) == 2
    assert "unknown vector id M-9999" in capsys.readouterr().err
    assert main(["try", "M-9012", "--vectors", str(root), "--suites", "sid"]) == 2
    assert "refused by the safety gate (M-9012)" in capsys.readouterr().err
    assert main(["try", "M-0001", "--vectors", str(root), "--suites", "sid"]) == 0
    # KD-0003: a lone cpr channel kills QEMU 10.0 and later (SIGSEGV)
    assert main(["try", "M-0050", "--suites", "sid"]) == 1
    assert "crash: the QEMU under test, running migrate: QEMU killed by signal 11" in \
        capsys.readouterr().out


def _pytest_usage(tmp_path: Path, *args: str) -> tuple[int, str]:
    """Run the suite with ``args``, which must be refused before anything runs."""
    proc = zygote.run([*PYTEST, "suites", "--qmpcompat-reports", str(tmp_path / "reports"), *args],
                      cwd=REPO, timeout=120)
    return proc.returncode, proc.stdout + proc.stderr
