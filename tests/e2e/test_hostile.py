"""Hostile inputs, as someone with write access to a vector directory, a results
file or the command line would try them: patterns that never end, text that
forges report lines, names that need DNS, options smuggled into external
commands, symlinked data files, replays that fill the disk, and verdicts that
another run or a malformed file could change. Each has its entry in
tests/e2e/bad-inputs/ (cases.yaml says what it must get)."""

from __future__ import annotations

import ast
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import textwrap
import time
import xml.etree.ElementTree as ET
from pathlib import Path
from typing import Any

import pytest
import yaml
from helpers import zygote
from helpers.suite_runner import REPO, SuiteRun, basic_vectors, outcomes

from qmpcompat import escape
from qmpcompat.ciformats import CiFinding, github, gitlab, sarif
from qmpcompat.cli import main
from qmpcompat.errors import UnsafeInput
from qmpcompat.harness import Qemu, QemuOptions
from qmpcompat.provision import QemuBuild
from qmpcompat.reaper import OWNER_PREFIX
from qmpcompat.report.html import render_html
from qmpcompat.report.junit import render_junit
from qmpcompat.report.results import environment, results_document
from qmpcompat.report.summary import render_summary
from qmpcompat.safety import Policy, policy
from qmpcompat.vectors import limits
from qmpcompat.vectors.pattern import check
from qmpcompat.vectors.transcript import run_fresh, steps_problems

BAD = Path(__file__).resolve().parent / "bad-inputs"
CORPUS = yaml.safe_load((BAD / "cases.yaml").read_text())


def _qmpcompat(*args: str, timeout: float = 120, cwd: Path = REPO) -> subprocess.CompletedProcess[str]:
    return zygote.run([sys.executable, "-m", "qmpcompat", *args], timeout=timeout, cwd=cwd)


class _Stuck(Exception):
    pass


def _stuck(_signum: int, _frame: object) -> None:
    raise _Stuck


def _in_process(capsys: pytest.CaptureFixture[str], *args: str,
                timeout: int = 60) -> tuple[int, str, str]:
    """``qmpcompat ARGS`` run by its entry point in this process (what a subprocess
    would print, without the interpreter's start-up): exit status, stdout, stderr.
    A command still running after ``timeout`` seconds (blocked opening a FIFO, say)
    is interrupted and fails the test."""
    capsys.readouterr()
    old = signal.signal(signal.SIGALRM, _stuck)
    signal.alarm(timeout)
    try:
        rc = main(list(args))
    except SystemExit as stop:  # argparse's usage errors
        rc = int(stop.code or 0)
    except _Stuck:
        pytest.fail(f"qmpcompat {' '.join(args)} still ran after {timeout} s")
    finally:
        signal.alarm(0)
        signal.signal(signal.SIGALRM, old)
    out = capsys.readouterr()
    return rc, out.out, out.err


# --- patterns that never end ------------------------------------------------


@pytest.mark.parametrize("name", sorted(CORPUS["runs"]))
def test_the_history_lint_runs_patterns_in_bounded_time(tmp_path: Path, name: str) -> None:
    root = basic_vectors(tmp_path)
    (root / "migrate" / name).write_text((BAD / name).read_text())
    proc = _qmpcompat("lint", "--vectors", str(root), timeout=60)  # a backtracking engine: hours
    assert proc.returncode == 1, proc.stderr
    assert f"vectors/migrate/{CORPUS['runs'][name]['lint']}" in proc.stdout


def test_patterns_match_in_linear_time() -> None:
    """desc-pattern and migration-error both, on a text long enough that a
    backtracking engine would not finish this year."""
    code = textwrap.dedent("""
        from qmpcompat.vectors.match import differences
        from qmpcompat.vectors.model import Expectation
        from qmpcompat.vectors.run import Observation
        from qmpcompat.vectors.versions import VersionRange
        every = VersionRange.parse("*")
        text = "x" * 60
        reject = Expectation(every, "reject", error_class="GenericError", desc_pattern="(x+x+)+y", why="w")
        print(differences(reject, Observation("reject", error_class="GenericError", desc=text)))
        failed = Expectation(every, "accept", migration="failed", migration_error="(x|xx)+y")
        print(differences(failed, Observation("accept", migration="failed", migration_error=text)))
    """)
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=30)
    assert proc.returncode == 0, proc.stderr
    assert "desc: expected /(x+x+)+y/" in proc.stdout and "migration error: expected" in proc.stdout


def test_patterns_outside_the_linear_subset_are_refused() -> None:
    assert check("(a)\\1") == "invalid escape sequence: \\1"
    assert check("x(?=y)") == "invalid perl operator: (?="
    assert check("a" * 3000) == "too long (3000 characters; at most 2000)"
    assert check("Failed to connect to '127\\.0\\.0\\.1:[0-9]+': Connection refused") is None


# --- names that need DNS ----------------------------------------------------


def _resolver(monkeypatch: pytest.MonkeyPatch, tmp_path: Path, hosts: str,
              nsswitch: str = "hosts: files dns\n") -> None:
    (tmp_path / "hosts").write_text(hosts)
    (tmp_path / "nsswitch.conf").write_text(nsswitch)
    monkeypatch.setattr(policy, "HOSTS_FILE", tmp_path / "hosts")
    monkeypatch.setattr(policy, "NSSWITCH_FILE", tmp_path / "nsswitch.conf")


@pytest.mark.parametrize(("hosts", "nsswitch", "why"), [
    ("127.0.0.1 localhost\n::1 localhost ip6-localhost\n", "hosts: files dns\n", None),
    ("127.0.0.1 runsc\n", "hosts: files dns\n", "host 'localhost' is not in "),
    ("10.1.2.3 localhost\n", "hosts: files dns\n", "host 'localhost' is not loopback in "),
    ("127.0.0.1 localhost\n", "hosts: dns files\n", "does not ask /etc/hosts first"),
])
def test_localhost_only_where_etc_hosts_answers_it(monkeypatch: pytest.MonkeyPatch, tmp_path: Path,
                                                   hosts: str, nsswitch: str, why: str | None) -> None:
    _resolver(monkeypatch, tmp_path, hosts, nsswitch)
    case = Policy.for_case(tmp_path)
    got = case.host_problem("localhost")
    assert (got is None) if why is None else (why in str(got)), got
    assert Policy.template().host_problem("localhost") is None  # decided when a case runs
    for literal in ("127.0.0.1", "127.3.2.1", "::1", "[::1]"):
        assert case.host_problem(literal) is None


@pytest.mark.parametrize("name", ["ip6-loopback", "ip6-localhost", "LOCALHOST.", "localhost.localdomain",
                                  "127.0.0.1.nip.io", "0x7f000001", ""])
def test_other_names_never_reach_qemu(name: str) -> None:
    for p in (Policy.template(), Policy.for_case("/tmp/case")):
        assert p.host_problem(name) == f"host {name!r} is not loopback (127.0.0.0/8, ::1, localhost)"
        assert p.uri_problem(f"tcp:{name}:4444") is not None


def test_the_harness_refuses_localhost_without_etc_hosts(monkeypatch: pytest.MonkeyPatch,
                                                         tmp_path: Path, newest: QemuBuild) -> None:
    _resolver(monkeypatch, tmp_path, "127.0.0.1 vm\n")
    with Qemu(newest, QemuOptions(incoming_defer=True)) as q:
        with pytest.raises(UnsafeInput, match=r"host 'localhost' is not in .*QEMU would ask DNS"):
            q.execute("migrate-incoming", {"uri": "tcp:localhost:0"})
        assert q.execute("query-migrate").result.get("status") is None  # nothing was sent


# --- options smuggled into external commands --------------------------------

# Every place qmpcompat runs an external command, and why an operand can never
# be taken for an option there: "--" (or git's --end-of-options) before the
# operands; operands that are absolute paths the harness made; no operand at
# all. A new call site fails this test until it is added here.
CALL_SITES = {
    ("qmpcompat/schema/sources/qapi.py", "from_git"): "end-of-options",  # git show REF:VERSION
    ("qmpcompat/schema/sources/qapi_source.py", "read"): "end-of-options",  # git show REF:PATH
    ("qmpcompat/provision/source_tree.py", "debian_tree"): "--",  # dpkg-source -x -- DSC DIR
    ("qmpcompat/provision/source_tree.py", "_git"): "fixed",  # git -C TREE rev-parse/status/diff/ls-files
    ("qmpcompat/provision/debian.py", "_extract"): "--",  # dpkg-deb -x -- DEB DIR
    ("qmpcompat/schema/sources/debsrc.py", "extract_matching"): "--",  # tar -x -f ABS -C ABS ... -- PATTERNS
    ("qmpcompat/provision/apt.py", "run"): "args",  # apt-get/apt-cache: callers put "--" in args
    ("qmpcompat/provision/apt.py", "run_src"): "args",
    ("qmpcompat/provision/apt.py", "host_proxy_settings"): "fixed",  # apt-config dump
    ("qmpcompat/provision/apt.py", "host_arch"): "fixed",  # dpkg --print-architecture
    ("qmpcompat/provision/source_build.py", "missing_packages"): "--",  # dpkg-query -W -f=.. -- PKGS
    ("qmpcompat/provision/source_build.py", "_dependencies"): "--",  # apt-get install ... -- PKGS
    ("qmpcompat/provision/source_build.py", "_run_logged"): "fixed",  # configure, ninja, make: paths
    ("qmpcompat/provision/build.py", "probe_version"): "fixed",  # QEMU --version (argv[0] is the program)
    ("qmpcompat/harness/process.py", "__init__"): "--",  # setpriv --pdeathsig KILL -- QEMU ...
    ("qmpcompat/harness/forkserver.py", "_built"): "fixed",  # cc --version; cc FLAGS -o ABS ABS
    ("qmpcompat/hunt/backtrace.py", "backtrace"): "fixed",  # gdb -p PID
    ("qmpcompat/reaper.py", "__init__"): "fixed",  # python -m qmpcompat.reaper PID.TOKEN DIR
    ("qmpcompat/libvirt/tree.py", "_runs"): "fixed",  # virsh --version, through its tree's loader
    ("qmpcompat/libvirt/session.py", "start"): "fixed",  # unshare ... -- /bin/sh -c SCRIPT ARGS
    ("qmpcompat/libvirt/session.py", "virsh"): "fixed",  # setpriv ... -- env -i ... virsh -c URI VERB
    ("qmpcompat/reproduce/report.py", "run"): "fixed",  # python SCRIPT --qemu CMD: a file it wrote
    ("qmpcompat/data/reproducer.py", "__init__"): "fixed",  # the QEMU the user named, then its options
    ("qmpcompat/harness/isolation.py", "unavailable"): "--",  # unshare ... -- sh -c SCRIPT PROBE
    ("qmpcompat/provision/foreign.py", "_pypi"): "fixed",  # pip download ... NAME==VERSION (NAME
    # matched [A-Za-z0-9][A-Za-z0-9._-]*: it cannot start with '-')
}


def _call_sites() -> dict[tuple[str, str], str]:
    """(file, innermost function) -> the source of its subprocess calls in qmpcompat/."""
    found: dict[tuple[str, str], str] = {}

    def visit(node: ast.AST, path: str, func: str) -> None:
        for child in ast.iter_child_nodes(node):
            name = child.name if isinstance(child, (ast.FunctionDef, ast.AsyncFunctionDef)) else func
            if isinstance(child, ast.Call) and ast.unparse(child.func) in (
                    "subprocess.run", "subprocess.Popen", "subprocess.check_output"):
                found[(path, func)] = found.get((path, func), "") + ast.unparse(child) + "\n"
            visit(child, path, name)

    for path in sorted((REPO / "qmpcompat").rglob("*.py")):
        visit(ast.parse(path.read_text()), str(path.relative_to(REPO)), "")
    return found


def test_every_external_command_is_classified() -> None:
    sites = _call_sites()
    assert set(sites) == set(CALL_SITES), "classify the new or gone call sites in CALL_SITES"
    for site, rule in CALL_SITES.items():
        if rule in ("--", "end-of-options"):
            assert f"'{'--' if rule == '--' else '--end-of-options'}'" in sites[site], site
    apt = (REPO / "qmpcompat/provision/apt.py").read_text()
    # every apt operand follows "--"
    for operand in ("package]", "*packages]", "f'{package}={version}']", "*pins]"):
        assert apt.replace('"', "'").count(operand) == apt.replace('"', "'").count("'--', " + operand)


def test_a_git_ref_is_never_an_option(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """``REPO@--output=FILE`` made ``git show`` write FILE."""
    repo = tmp_path / "qemu"
    (repo / "qapi").mkdir(parents=True)
    git = ["git", "-C", str(repo), "-c", "user.name=t", "-c", "user.email=t@localhost"]
    subprocess.run([*git, "init", "-q"], check=True)
    (repo / "qapi" / "qapi-schema.json").write_text("{ 'command': 'x' }\n")
    subprocess.run([*git, "add", "."], check=True)
    subprocess.run([*git, "commit", "-qm", "x"], check=True)
    out = tmp_path / "written-by-git"
    for ref, said in CORPUS["git-refs"].items():
        assert main(["history", f"{repo}@{ref.format(out=out)}"]) == 2
        assert said.format(out=out) in capsys.readouterr().err
    assert not out.exists()


# --- data files that are links or special files -----------------------------

SECRET = "qmpcompat-secret-token-7f3a"  # what a link points at: never to be printed


def _not_regular(kind: str, path: Path, target: Path) -> None:
    """Make ``path`` a link to ``target`` (which holds the secret) or a FIFO."""
    if kind == "link":
        target.write_text(f'{{"format": "{SECRET}"}}\n# {SECRET}\n')
        path.symlink_to(target)
    else:
        os.mkfifo(path)


@pytest.mark.parametrize("kind", sorted(CORPUS["not-regular"]))
@pytest.mark.parametrize("place", ["migrate/x.yaml", "flags.yaml", "known-defects.yaml",
                                   "cross-version/x.yaml", "vector-file.schema.json"])
def test_lint_refuses_data_files_that_are_not_regular(tmp_path: Path, kind: str, place: str,
                                                      capsys: pytest.CaptureFixture[str]) -> None:
    root = basic_vectors(tmp_path / "run")
    path = root / place
    path.parent.mkdir(exist_ok=True)
    path.unlink(missing_ok=True)
    _not_regular(kind, path, tmp_path / "secret")
    rc, stdout, stderr = _in_process(capsys, "lint", "--vectors", str(root), "--no-history")
    out = stdout + stderr  # a FIFO opened: for ever, until the alarm
    assert rc in (1, 2) and CORPUS["not-regular"][kind] in out, out
    assert SECRET not in out


@pytest.mark.parametrize("kind", sorted(CORPUS["not-regular"]))
@pytest.mark.parametrize("command", [
    ["report", "render", "{path}", "-o", "{out}"],
    ["report", "merge", "{path}", "-o", "{out}"],
    ["report", "changes", "{path}", "{path}"],
    ["diff", "{path}", "vectors/schema/qemu-11.1.3.json", "--no-files"],
    ["diff", "vectors/schema/qemu-10.0.13.json", "vectors/schema/qemu-11.1.3.json", "--no-files",
     "--ignore", "{path}"],
    ["history", "{path}", "--no-files"],
    ["hunt", "--replay", "{path}", "--qemu", "/bin/false"],
])
def test_commands_refuse_data_files_that_are_not_regular(tmp_path: Path, kind: str,
                                                         command: list[str],
                                                         capsys: pytest.CaptureFixture[str],
                                                         monkeypatch: pytest.MonkeyPatch) -> None:
    path = tmp_path / "input.json"
    _not_regular(kind, path, tmp_path / "secret")
    args = [a.format(path=path, out=tmp_path / "out") for a in command]
    monkeypatch.chdir(REPO)  # the schema files the commands name
    rc, stdout, stderr = _in_process(capsys, *args)
    out = stdout + stderr
    assert rc == 2, out
    assert CORPUS["not-regular"][kind] in out and SECRET not in out, out
    assert "Traceback" not in out


# --- text that reaches reports and logs -------------------------------------

HOSTILE: list[str] = yaml.safe_load((BAD / "hostile-strings.yaml").read_text())["strings"]
# Characters that must never reach any output as themselves (tab and newline may,
# where the format keeps lines).
RAW = re.compile("[\x00-\x08\x0b-\x1f\x7f-\x9f\u202a-\u202e\u2066-\u2069\u2028\u2029\ufeff]")


def _hostile_results(text: str) -> dict[str, Any]:
    label = f"11.1.3{text}"
    binary = {"binary": f"/q/{text}", "version": "11.1.3", "version_line": "11.1", "run_label": label,
              "package": text, "features": [f"machine:{text}"], "features_probed": True}
    case = {"vector": "M-0001", "command": "migrate", "description": text, "file": f"{text}:1",
            "qemu": label, "qemu_version": "11.1.3", "binary": f"/q/{text}", "package": text,
            "outcome": "failed", "message": f"desc: expected {text!r}, got {text}", "expected": text,
            "observed": {"result": "crash", "error_class": text, "desc": text,
                         "detail": f"QEMU killed by signal 11 {text}\n  stderr: {text}"}}
    defect = dict(case, vector="M-0002", outcome="xfailed", defect="KD-0001",
                  message=f"known defect KD-0001: {text}")
    env = environment([binary], text, [{"name": text, "error": text}], [text],
                      [{"suite": text, "date": text}])
    consumer = {"profile": "CP-0001", "consumer": text, "consumer_version": text, "description": text,
                "file": f"{text}:1", "step": text, "location": f"{text}:2", "guest": {},
                "machine": text, "source": label, "source_version": "11.1.3", "destination": label,
                "destination_version": "11.1.3", "outcome": "failed", "expected": text,
                "message": text, "defect": None, "observed": {"result": "reject", "desc": text}}
    unsteady = {"vector": "M-0001", "qemu": label, "reused": "crash", "reused_detail": text,
                "fresh": "reject", "outcome": "failed"}
    doc = results_document(env, [case, defect], 0.0, {
        "schema_gate": [{"qemu": label, "baseline": text, "gate": "release", "level": "breaking",
                         "rule": text, "path": text, "change": text}],
        "known_defects": [{"id": "KD-0001", "summary": text, "versions": text, "vector": "M-0002"}],
        "consumers": [consumer],  # type: ignore[list-item]
        "run": {"persistent": True, "fork_server": True, "qemus": {"reused": 1}, "rerun": 1,
                "unsteady": [unsteady], "fork_unavailable": {label: text}}})  # type: ignore[typeddict-item]
    return dict(doc)


def _no_raw(output: str, where: str) -> None:
    found = RAW.search(output)
    assert found is None, f"{where}: raw {found.group()!r} in {output[found.start() - 40:found.end()]!r}"


def _markdown_safe(output: str, where: str) -> None:
    _no_raw(output, where)
    for line in output.splitlines():
        assert not line.lstrip().startswith(("::", "##[", "##vso", "<", "```")) or "FORGED" not in line, \
            f"{where}: {line!r}"
        if "FORGED" in line:
            assert not line.startswith("#"), f"{where}: forged heading {line!r}"
            assert not re.search(r"(?<!\\)<(?=[A-Za-z/!?])", line), f"{where}: HTML in {line!r}"
        if line.startswith("|"):  # a table row: its cells are the ones it was written with
            cells = re.split(r"(?<!\\)\|", line)
            header = "| " + " | ".join(["x"] * (len(cells) - 2)) + " |"
            assert len(re.split(r"(?<!\\)\|", header)) == len(cells)


@pytest.mark.parametrize("text", HOSTILE)
def test_hostile_text_in_every_report_format(text: str, tmp_path: Path) -> None:

    doc = _hostile_results(text)
    summary = render_summary(doc)  # type: ignore[arg-type]
    _markdown_safe(summary, "summary.md")
    assert summary.splitlines()[0].startswith("## qmpcompat: FAIL")
    assert sum(line.startswith("## ") for line in summary.splitlines()) == 1
    page = render_html(doc)  # type: ignore[arg-type]
    start = page.index('<script type="application/json" id="qmpcompat-data">') + 52
    block = page[start:page.index("</script>", start)]  # the first </script> ends the block
    data = json.loads(block)
    assert "<" not in block and data["results"][0]["description"] == escape.visible_lines(text)
    _no_raw(block, "index.html")
    junit = render_junit(doc)  # type: ignore[arg-type]
    root = ET.fromstring(junit.encode())
    _no_raw(junit.replace("\n", " "), "junit.xml")
    assert any(escape.visible(text) in (p.get("value") or "") for p in root.iter("property"))


@pytest.mark.parametrize("text", HOSTILE)
def test_hostile_text_in_ci_formats(text: str) -> None:

    findings = [CiFinding("RULE", level, f"{text} title", f"{text} message", text, f"{text}.yaml", 3)
                for level in ("breaking", "warning", "info")]
    lines = github(findings).splitlines()
    assert len(lines) == 3 and all(line.startswith(("::error ", "::warning ", "::notice ")) for line in lines)
    _no_raw("\n".join(lines), "github")  # one line per finding: the message cannot start another
    said = escape.visible_lines(f"{text} title: {text} message")
    issues = json.loads(gitlab(findings, "x"))
    assert [i["description"] for i in issues] == [said] * 3
    log = json.loads(sarif(findings, {"RULE": ("breaking", "why")}, "1", "x"))
    assert [r["message"]["text"] for r in log["runs"][0]["results"]] == [said] * 3


@pytest.mark.parametrize("text", HOSTILE)
def test_hostile_text_on_the_terminal(text: str, tmp_path: Path, capsys: pytest.CaptureFixture[str],
                                      monkeypatch: pytest.MonkeyPatch) -> None:
    """What ``qmpcompat report render`` and ``report changes`` print of a results
    file (the verdict, QEMU's words before and after), and escape.terminal."""

    doc = _hostile_results(text)
    older = {"binary": "/q/old", "version": "11.1.2", "version_line": "11.1", "run_label": "11.1.2"}
    doc["environment"]["binaries"].insert(0, older)
    doc["results"] += [dict(r, qemu="11.1.2", qemu_version="11.1.2", outcome="passed", defect=None,
                            observed={"result": "reject", "error_class": "GenericError", "desc": "plain"})
                       for r in doc["results"]]
    for r in doc["results"]:
        if r.get("defect") is None:
            r.pop("defect", None)
    results = tmp_path / "reports" / "results.json"
    results.parent.mkdir()
    results.write_text(json.dumps(doc))
    rc, render_out, render_err = _in_process(capsys, "report", "render", str(results), "-o",
                                             str(tmp_path / "out"))
    assert rc == 1, render_err
    monkeypatch.chdir(tmp_path)  # reports/results.json
    rc, changes_out, changes_err = _in_process(capsys, "report", "changes", "11.1.2", "11.1.3")
    assert rc in (0, 1) and "FORGED" in changes_out, changes_out + changes_err
    for output in (render_out, render_err, changes_out, changes_err, escape.terminal(text)):
        _no_raw(output.replace("\t", " "), "terminal")
        assert not any(line.lstrip().startswith(("::", "##")) for line in output.splitlines()), output
    for name in ("summary.md", "index.html", "junit.xml"):
        _no_raw((tmp_path / "out" / name).read_text().replace("\n", " "), name)


# --- verdicts: malformed input ----------------------------------------------


@pytest.mark.parametrize("command", [
    ["report", "render", "{path}", "-o", "{out}"],
    ["report", "merge", "{path}", "{path}", "-o", "{out}"],
    ["report", "changes", "{path}", "{path}"],
    ["diff", "{path}", "vectors/schema/qemu-11.1.3.json", "--no-files"],
    ["history", "{path}", "--no-files"],
    ["hunt", "--replay", "{path}", "--qemu", "/bin/false"],
])
@pytest.mark.parametrize("shape", ["list", "object"])
def test_deeply_nested_json_is_an_input_error(tmp_path: Path, command: list[str], shape: str,
                                             capsys: pytest.CaptureFixture[str],
                                             monkeypatch: pytest.MonkeyPatch) -> None:
    depth = CORPUS["malformed-json"]["depth"]
    path = tmp_path / "nested.json"
    inner = "[" * depth + "]" * depth
    path.write_text(inner if shape == "list" else '{"format": "qmpcompat-results/1", "a": ' + inner + "}")
    monkeypatch.chdir(REPO)  # the schema files the commands name
    rc, out, err = _in_process(capsys, *[a.format(path=path, out=tmp_path / "out") for a in command])
    assert rc == 2, out + err
    assert "Traceback" not in err and len(err.strip().splitlines()) == 1, err
    assert str(path) in err and CORPUS["malformed-json"]["message"] in err
    assert not (tmp_path / "out").exists()


# --- verdicts: a step after a quit ------------------------------------------


@pytest.mark.parametrize("name", sorted(CORPUS["replays"]))
def test_replays_judge_what_qemu_was_asked(name: str, capsys: pytest.CaptureFixture[str]) -> None:
    """A quit QEMU accepts ends the transcript: the steps after it are not sent
    (they were reported as a crash of QEMU). The replay QEMU plays is run as a
    user runs it; the ones refused before any QEMU starts, in this process."""
    want = CORPUS["replays"][name]
    args = ("hunt", "--replay", str(BAD / name), "--suites", "sid", "--no-backtrace")
    if name == "replay-quit-then-more.json":
        proc = _qmpcompat(*args)
        rc, out, err = proc.returncode, proc.stdout, proc.stderr
    else:
        rc, out, err = _in_process(capsys, *args)
    assert rc == want["status"], out + err
    assert want["says"] in out + err
    assert "crash" not in out


def test_a_quit_before_the_main_step_is_no_crash(newest: QemuBuild) -> None:
    steps = [{"execute": "quit", "arguments": {}},
             {"execute": "migrate", "arguments": {"uri": "unix:{tmpdir}/x.sock"}}]
    obs = run_fresh(steps, newest, incoming=False)  # type: ignore[arg-type]
    assert obs.result == "error", obs
    assert obs.detail == "QEMU quit as step 1 asked; the 1 step after it was not sent: the " \
        "transcript's main step never ran"


# --- verdicts: one run per reports directory ---------------------------------


def test_a_reports_directory_is_owned_by_one_run(tmp_path: Path,
                                                 capsys: pytest.CaptureFixture[str]) -> None:
    """While a run (with xdist workers) writes into a reports directory, another
    run and the report commands are refused there, saying who holds it; the first
    run's verdict stands. A killed holder leaves no lock behind."""

    # a plain process: the message names the holder by its command line, which a fork shows as its zygote's
    first = SuiteRun(tmp_path / "first", "-n", "2", vectors=basic_vectors(tmp_path / "v"), suites="sid",
                     plain=True)
    placeholder = first.reports / "results.json"  # written once the run holds the directory
    deadline = time.monotonic() + 120
    while not placeholder.exists():
        assert time.monotonic() < deadline and first.proc.poll() is None, first.output
        time.sleep(0.1)
    said = CORPUS["reports-in-use"].format(pid=first.proc.pid, python=sys.executable)
    results = tmp_path / "other.json"
    results.write_text(json.dumps(_hostile_results("plain")))
    render = _qmpcompat("report", "render", str(results), "-o", str(first.reports))
    assert render.returncode == 2 and said in render.stderr, render.stderr
    assert {p.name for p in first.reports.iterdir() if not p.name.startswith(OWNER_PREFIX)} <= {
        "results.json", "summary.md", "index.html", "junit.xml"}  # no lock file among them (but
    # the running run's owner locks, its reaper's proof that it lives: qmpcompat.reaper)
    second = SuiteRun(tmp_path / "second", f"--qmpcompat-reports={first.reports}", suites="sid")
    assert second.wait(120) == 4 and said in second.output, second.output
    assert first.wait() == 0, first.output
    first.assert_clean()
    got = first.results()
    assert set(outcomes(got).values()) == {"passed"} and len(got["results"]) == 5
    # a holder killed with SIGKILL: the kernel drops the lock with it
    holder = subprocess.Popen([sys.executable, "-c", "import sys, time; from pathlib import Path; "
                               "from qmpcompat.report.lock import own; own(Path(sys.argv[1]), 'x'); "
                               "print('held', flush=True); time.sleep(600)", str(tmp_path / "r")],
                              stdout=subprocess.PIPE, text=True)
    assert holder.stdout is not None and holder.stdout.readline() == "held\n"
    assert _in_process(capsys, "report", "render", str(results), "-o", str(tmp_path / "r"))[0] == 2
    os.kill(holder.pid, signal.SIGKILL)
    holder.wait()
    assert _in_process(capsys, "report", "render", str(results), "-o", str(tmp_path / "r"))[0] == 1  # FAIL


# --- resource limits of transcripts ------------------------------------------


def test_a_transcript_that_fills_its_case_dir_fails(monkeypatch: pytest.MonkeyPatch,
                                                      newest: QemuBuild) -> None:
    """Each pmemsave is within the gate's limit; together they pass the case's."""
    monkeypatch.setattr(limits, "MAX_CASE_BYTES", 6 * 1024 * 1024)
    dump = {"execute": "pmemsave", "arguments": {"val": 0, "size": 4 * 1024 * 1024,
                                                   "filename": "{tmpdir}/dump"}}
    steps = [dump, {**dump, "arguments": {**dump["arguments"], "filename": "{tmpdir}/dump2"}},
             {"execute": "migrate", "arguments": {"uri": "bogus:x"}}]
    obs = run_fresh(steps, newest, incoming=False)  # type: ignore[arg-type]
    assert obs.result == "error"
    assert obs.detail == ("over a resource limit: after step 2 the case's directory holds 8 MiB "
                          "(at most 6 MiB)")
    assert len(obs.replies or []) == 2  # the migrate was never sent


def test_transcripts_have_a_step_and_time_limit(monkeypatch: pytest.MonkeyPatch, newest: QemuBuild) -> None:
    status = {"execute": "query-status", "arguments": {}}
    many = [status] * 101 + [{"execute": "migrate", "arguments": {"uri": "bogus:x"}}]
    assert steps_problems(many, Policy.template()) == ["steps: 102 steps (at most 100)"]
    monkeypatch.setattr(limits, "MAX_STEPS_SECONDS", 0.0)
    obs = run_fresh([status, *many[-1:]], newest, incoming=False)  # type: ignore[list-item]
    assert obs.result == "error" and obs.detail.startswith(
        "over a resource limit: after step 1 the transcript has run 0s (at most 0s)"), obs.detail


# --- what killed runs left ----------------------------------------------------


def test_a_run_removes_what_killed_runs_left(tmp_path: Path) -> None:
    """A run killed with its reaper leaves case dirs (guest memory dumps) and
    processes using them; the next run's start reaps them. Entries of live
    owners stay; an entry whose pid now belongs to a younger process is reaped."""
    base = Path(tempfile.mkdtemp(prefix="qs-"))  # short: QEMU's socket paths live under it
    dead = subprocess.Popen(["true"])
    dead.wait()  # its pid is free now (and not reused within this test)
    left = base / f"qmpv-{dead.pid}-x1y2z3"
    left.mkdir()
    (left / "dump-source").write_bytes(b"\0" * (1 << 20))
    user = subprocess.Popen(["sleep", "987651"], env={**os.environ, "QMPCOMPAT_CASE": str(left)})
    live = subprocess.Popen(["sleep", "987652"])  # started now: owns its entry
    kept = base / f"qmpc-{live.pid}-a1b2c3"
    kept.mkdir()
    reused = base / f"qmph-{live.pid}-d4e5f6"  # older than the process that now has the pid
    reused.mkdir()
    os.utime(reused, (time.time() - 3600, time.time() - 3600))
    try:
        proc = subprocess.run([sys.executable, "-m", "qmpcompat", "try", "M-0001", "--suites", "sid"],
                              cwd=REPO, capture_output=True, text=True, timeout=120,
                              env={**os.environ, "TMPDIR": str(base)})
        assert proc.returncode == 0, proc.stderr
        assert not left.exists() and not reused.exists() and kept.exists()
        assert user.wait(10) == -9  # it used the dead run's case dir
    finally:
        for p in (user, live):
            p.kill()
            p.wait()
        shutil.rmtree(base, ignore_errors=True)
