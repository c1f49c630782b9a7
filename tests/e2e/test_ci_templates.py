"""The ready-to-copy CI templates in docs/ci/ work: their script steps run
here, in a copy of the checkout, as the CI would run them (less the step that
installs host packages, which this machine has; the steps both templates share
word for word run once; the venv their first step makes is made once a session,
helpers.checkout), and leave the reports and CI outputs the templates
hand to GitLab and GitHub."""

from __future__ import annotations

import json
import re
import shutil
from pathlib import Path
from typing import Any

import jsonschema
import pytest
import yaml
from helpers.checkout import ci_checkout, run_script
from helpers.ciformats import GITHUB_COMMAND, GITLAB_CODE_QUALITY, sarif_validator
from helpers.shared import Shared
from helpers.suite_runner import REPO

TEMPLATES = REPO / "docs" / "ci"
# What the test changes of the templates' variables: two builds, one vector.
VARIABLES = {"QMPCOMPAT_SUITES": "trixie,sid", "QMPCOMPAT_ARGS": "-k MI-0002"}


def _check_reports(reports: Path) -> None:
    assert (reports / "summary.md").read_text().startswith("## qmpcompat: PASS")
    for name in ("behaviour-changes.sarif", "schema-diff.sarif"):
        errors = [e.message for e in sarif_validator().iter_errors(json.loads((reports / name).read_text()))]
        assert not errors, (name, errors[:3])
    for name in ("behaviour-changes.codequality.json", "schema-diff.codequality.json"):
        jsonschema.validate(json.loads((reports / name).read_text()), GITLAB_CODE_QUALITY)


def _shared_steps(a: list[str], b: list[str]) -> list[str]:
    """The script lines both templates start with, word for word."""
    n = 0
    while n < min(len(a), len(b)) and a[n] == b[n]:
        n += 1
    return a[:n]


def test_ci_templates(tmp_path: Path, shared: Shared) -> None:
    """Both templates' script steps, in a copy of the checkout: the steps they
    start with word for word (the install, provisioning and the suite's run)
    once, with the values both give the variables those steps read; then, each
    from the reports those steps left, each template's own steps."""
    pipeline = yaml.safe_load((TEMPLATES / "gitlab-ci.yml").read_text())
    gitlab, gl_env = pipeline["qmpcompat"], {**pipeline["variables"], **VARIABLES}
    job = yaml.safe_load((TEMPLATES / "github-actions.yml").read_text())["jobs"]["qmpcompat"]
    summary = tmp_path / "step-summary.md"
    gh_env = {**job["env"], **VARIABLES, "GITHUB_STEP_SUMMARY": str(summary)}
    gh_steps = [s["run"].splitlines() for s in job["steps"] if "run" in s and s["name"] != "host packages"]
    shared_steps = _shared_steps(gitlab["script"], gh_steps[0])
    # each template's own steps run in the checkout the shared ones installed into
    assert shared_steps and "pip install" in shared_steps[0], "the templates no longer install the same way"
    read = set(re.findall(r"\$\{?(\w+)", "\n".join(shared_steps)))
    assert {v: gl_env.get(v) for v in read} == {v: gh_env.get(v) for v in read}, read
    checkout = ci_checkout(shared, tmp_path)
    said = run_script("\n".join([*shared_steps, 'echo "rc=$rc"']), checkout, gl_env)
    status = said.splitlines()[-1]  # rc=0, or rc=1 if the suite failed
    after_suite = tmp_path / "reports-after-suite"
    shutil.copytree(checkout / "reports", after_suite)
    _gitlab_rest(gitlab, [status, *gitlab["script"][len(shared_steps):]], checkout, gl_env)
    shutil.rmtree(checkout / "reports")
    shutil.copytree(after_suite, checkout / "reports")
    _github_rest(job, [[status, *gh_steps[0][len(shared_steps):]], *gh_steps[1:]], checkout, gh_env)
    assert summary.read_text().startswith("## qmpcompat: PASS")


def _gitlab_rest(job: dict[str, Any], script: list[str], checkout: Path, env: dict[str, str]) -> None:
    run_script("\n".join(script), checkout, env)
    reports = checkout / "reports"
    _check_reports(reports)
    uploads = job["artifacts"]["reports"]
    assert isinstance(uploads["codequality"], str)  # GitLab refuses more than one file per job
    assert (checkout / uploads["junit"]).is_file()
    combined = json.loads((checkout / uploads["codequality"]).read_text())
    jsonschema.validate(combined, GITLAB_CODE_QUALITY)
    parts = [json.loads((reports / f"{stem}.codequality.json").read_text())
             for stem in ("behaviour-changes", "schema-diff")]
    assert combined == parts[0] + parts[1] and combined
    assert len({i["fingerprint"] for i in combined}) == len(combined)


def _github_rest(job: dict[str, Any], steps: list[list[str]], checkout: Path, env: dict[str, str]) -> None:
    for step in steps:
        said = run_script("\n".join(step), checkout, env)
        annotations = [line for line in said.splitlines() if line.startswith("::")]
        assert all(GITHUB_COMMAND.match(line) for line in annotations), annotations[:3]
        assert any(line.startswith("::notice ") for line in annotations)  # the schema's info changes
    _check_reports(checkout / "reports")
    uploads = [s["with"]["sarif_file"] for s in job["steps"] if "upload-sarif" in s.get("uses", "")]
    assert uploads and all((checkout / p).is_file() for p in uploads)


@pytest.mark.parametrize("name", ["gitlab-ci.yml", "github-actions.yml"])
def test_templates_are_documented(name: str) -> None:
    assert f"docs/ci/{name}" in (REPO / "docs" / "ci.md").read_text()
