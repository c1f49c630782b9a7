"""The ready-to-copy CI templates in docs/ci/ work: their script steps run
here, in a copy of the checkout, as the CI would run them (less the step that
installs host packages, which this machine has), and leave the reports and CI
outputs the templates hand to GitLab and GitHub."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from pathlib import Path

import jsonschema
import pytest
import yaml
from helpers.ciformats import GITHUB_COMMAND, GITLAB_CODE_QUALITY, sarif_validator
from helpers.suite_runner import REPO

TEMPLATES = REPO / "docs" / "ci"
# What the test changes of the templates' variables: two builds, one vector.
VARIABLES = {"QMPCOMPAT_SUITES": "trixie,sid", "QMPCOMPAT_ARGS": "-k MI-0002"}


def _checkout(tmp_path: Path) -> Path:
    """A copy of the checkout's files as they are now, without what git ignores
    (what a CI clone of the commit has)."""
    listed = subprocess.run(["git", "-C", str(REPO), "ls-files", "-z", "--cached", "--others",
                             "--exclude-standard"], capture_output=True, check=True)
    files = listed.stdout.decode().split("\0")
    dst = tmp_path / "checkout"
    for name in filter(None, files):
        if (REPO / name).is_file():
            (dst / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(REPO / name, dst / name)
    return dst


def _run(script: str, cwd: Path, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    full = {k: v for k, v in os.environ.items() if not k.startswith(("QMPCOMPAT_", "PYTEST", "VIRTUAL_ENV"))}
    return subprocess.run(["bash", "-e", "-c", script], cwd=cwd, env={**full, **env}, text=True,
                          capture_output=True, timeout=1800, check=False)


def _check_reports(reports: Path) -> None:
    assert (reports / "summary.md").read_text().startswith("## qmpcompat: PASS")
    for name in ("behaviour-changes.sarif", "schema-diff.sarif"):
        errors = [e.message for e in sarif_validator().iter_errors(json.loads((reports / name).read_text()))]
        assert not errors, (name, errors[:3])
    for name in ("behaviour-changes.codequality.json", "schema-diff.codequality.json"):
        jsonschema.validate(json.loads((reports / name).read_text()), GITLAB_CODE_QUALITY)


def test_gitlab_template(tmp_path: Path) -> None:
    job = yaml.safe_load((TEMPLATES / "gitlab-ci.yml").read_text())
    variables = {**job["variables"], **VARIABLES}
    checkout = _checkout(tmp_path)
    done = _run("\n".join(job["qmpcompat"]["script"]), checkout, variables)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    reports = checkout / "reports"
    _check_reports(reports)
    uploads = job["qmpcompat"]["artifacts"]["reports"]
    assert isinstance(uploads["codequality"], str)  # GitLab refuses more than one file per job
    assert (checkout / uploads["junit"]).is_file()
    combined = json.loads((checkout / uploads["codequality"]).read_text())
    jsonschema.validate(combined, GITLAB_CODE_QUALITY)
    parts = [json.loads((reports / f"{stem}.codequality.json").read_text())
             for stem in ("behaviour-changes", "schema-diff")]
    assert combined == parts[0] + parts[1] and combined
    assert len({i["fingerprint"] for i in combined}) == len(combined)


def test_github_template(tmp_path: Path) -> None:
    workflow = yaml.safe_load((TEMPLATES / "github-actions.yml").read_text())
    job = workflow["jobs"]["qmpcompat"]
    steps = [s for s in job["steps"] if "run" in s and s["name"] != "host packages"]
    summary = tmp_path / "step-summary.md"
    checkout = _checkout(tmp_path)
    for step in steps:
        done = _run(step["run"], checkout, {**job["env"], **VARIABLES, "GITHUB_STEP_SUMMARY": str(summary)})
        assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
        annotations = [line for line in done.stdout.splitlines() if line.startswith("::")]
        assert all(GITHUB_COMMAND.match(line) for line in annotations), annotations[:3]
        assert any(line.startswith("::notice ") for line in annotations)  # the schema's info changes
    _check_reports(checkout / "reports")
    assert summary.read_text().startswith("## qmpcompat: PASS")
    uploads = [s["with"]["sarif_file"] for s in job["steps"] if "upload-sarif" in s.get("uses", "")]
    assert uploads and all((checkout / p).is_file() for p in uploads)


@pytest.mark.parametrize("name", ["gitlab-ci.yml", "github-actions.yml"])
def test_templates_are_documented(name: str) -> None:
    assert f"docs/ci/{name}" in (REPO / "docs" / "ci.md").read_text()
