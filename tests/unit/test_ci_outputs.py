"""The schema differ in the formats CI shows where people look: each finding
of a QAPI source input points at the line of qapi/*.json that declares the
changed member; SARIF validates against the official schema, the GitLab and
GitHub outputs follow their documented formats."""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path

import jsonschema
import pytest
from helpers.ciformats import GITHUB_COMMAND, GITLAB_CODE_QUALITY, check_ci_outputs

from qmpcompat.cli import main
from qmpcompat.schema.sources.debsrc import debian_qapi_dir


def _line(path: Path, number: int) -> str:
    return path.read_text().splitlines()[number - 1]


@pytest.fixture(scope="module")
def trees(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """Two QEMU trees (qapi/ only): Debian's 7.2 and 10.0 sources."""
    root = tmp_path_factory.mktemp("trees")
    for name, version in (("old", "7.2"), ("new", "10.0")):
        shutil.copytree(debian_qapi_dir(version)[0], root / name / "qapi")
    return root / "old", root / "new"


def test_findings_point_at_the_declaring_line(trees: tuple[Path, Path], tmp_path: Path,
                                               monkeypatch: pytest.MonkeyPatch,
                                               capsys: pytest.CaptureFixture[str]) -> None:
    old, new = trees
    monkeypatch.chdir(new)  # as in a QEMU merge request's pipeline: the new tree checked out
    out = tmp_path / "out"
    assert main(["diff", str(old / "qapi"), "qapi", "--output", str(out), "--format", "sarif"]) == 1
    capsys.readouterr()
    check_ci_outputs(out, "schema-diff")
    sarif = json.loads((out / "schema-diff.sarif").read_text())
    results = {r["message"]["text"].split(":")[0]: r for r in sarif["runs"][0]["results"]}
    added = results["migrate/arg-type/channels"]["locations"][0]["physicalLocation"]
    assert added["artifactLocation"]["uri"] == "qapi/migration.json"
    assert "'*channels'" in _line(new / "qapi" / "migration.json", added["region"]["startLine"])
    removed = results["migrate/arg-type/blk"]
    assert removed["level"] == "error" and removed["ruleId"] == "INPUT_MEMBER_REMOVED"
    where = removed["locations"][0]["physicalLocation"]["region"]["startLine"]
    assert "'command': 'migrate'" in _line(new / "qapi" / "migration.json", where)
    gitlab = json.loads((out / "schema-diff.codequality.json").read_text())
    jsonschema.validate(gitlab, GITLAB_CODE_QUALITY)
    assert {i["location"]["path"] for i in gitlab} == {"qapi/migration.json"}
    assert main(["diff", str(old / "qapi"), "qapi", "--no-files", "--format", "github"]) == 1
    lines = capsys.readouterr().out.splitlines()
    assert lines and all(GITHUB_COMMAND.match(line) for line in lines), lines[:3]
    blk = next(line for line in lines if "migrate/arg-type/blk" in line)
    assert blk.startswith(f"::error file=qapi/migration.json,line={where},title=")


def test_git_ref_findings_point_into_qapi(trees: tuple[Path, Path], tmp_path: Path,
                                          capsys: pytest.CaptureFixture[str]) -> None:
    if not shutil.which("git"):
        pytest.skip("git is not installed")
    repo = tmp_path / "qemu"
    repo.mkdir()
    git = ["git", "-C", str(repo), "-c", "user.name=t", "-c", "user.email=t@localhost"]
    subprocess.run([*git, "init", "-q"], check=True)
    for tree, tag in zip(trees, ("old", "new"), strict=True):
        shutil.rmtree(repo / "qapi", ignore_errors=True)
        shutil.copytree(tree / "qapi", repo / "qapi")
        subprocess.run([*git, "add", "-A"], check=True)
        subprocess.run([*git, "commit", "-qm", tag], check=True)
        subprocess.run([*git, "tag", tag], check=True)
    assert main(["diff", f"{repo}@old", f"{repo}@new", "--no-files", "--format", "github"]) == 1
    lines = capsys.readouterr().out.splitlines()
    added = next(line for line in lines if "migrate/arg-type/channels%3A" in line)
    line = int(added.split("line=")[1].split(",")[0])
    assert added.startswith("::notice file=qapi/migration.json,")
    assert "'*channels'" in _line(trees[1] / "qapi" / "migration.json", line)
