"""The sharded CI templates in docs/ci/ work: their jobs' scripts run here, in
a copy of the checkout, as the CI would run them: the provision job, two
shards (the templates have three; two of a small selection keep this cheap),
and the report job that merges them. This machine's build cache stands in for
the CI cache (linked where the template keeps its cache); artifacts stay where
the jobs wrote them; the step that installs host packages is left out (this
machine has them), and the venv every job makes is made once a session
(helpers.checkout)."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
import yaml
from helpers.checkout import VENV, ci_checkout, run_script
from helpers.shared import Shared
from helpers.suite_runner import REPO

from qmpcompat.provision.debian import cache_dir

TEMPLATES = REPO / "docs" / "ci"
SHARDS = 2
# What the test changes of the templates' variables: two builds; a vector, a pair
# vector in one form and a consumer profile (pytest reads a -k with spaces from PYTEST_ADDOPTS).
VARIABLES = {"QMPCOMPAT_SUITES": "trixie,sid",
             "PYTEST_ADDOPTS": "-k 'MI-0002 or XV-0001-uri-uri or CP-0001'"}


@pytest.fixture
def checkout(shared: Shared, tmp_path: Path) -> Path:
    """The copy of the checkout one template's jobs share (their venv made once a session)."""
    path = ci_checkout(shared, tmp_path)
    (path / ".qmpcompat-cache").symlink_to(cache_dir())  # the CI cache, restored
    return path


def _run(script: str, cwd: Path, env: dict[str, str]) -> str:
    assert VENV in script  # each job makes its venv first
    return run_script(script, cwd, env)


def _check_merged(checkout: Path) -> None:
    """The shards' results are the two shards of one plan; merged, every case once."""
    shards = [json.loads((checkout / f"reports/shard-{k}/results.json").read_text())
              for k in range(1, SHARDS + 1)]
    assert [(s["shard"]["index"], s["shard"]["total"]) for s in shards] == [(1, 2), (2, 2)]
    assert len({s["shard"]["plan"] for s in shards}) == 1
    merged = json.loads((checkout / "reports/results.json").read_text())
    assert merged["shards"][0]["reported"] == [1, 2] and not merged["shards"][0]["missing"]
    for member in ("results", "pairs", "consumers"):
        parts = [json.dumps(r, sort_keys=True) for s in shards for r in s.get(member, [])]
        assert len(parts) == len(merged[member]) and parts, member
    assert (checkout / "reports/summary.md").read_text().startswith("## qmpcompat: PASS")


def _expand(text: str, env: dict[str, str]) -> str:
    """A GitLab variable's value with the variables it names in it."""
    return re.sub(r"\$\{?(\w+)\}?", lambda m: env.get(m.group(1), m.group(0)), text)


def test_gitlab_sharded_template(checkout: Path) -> None:
    pipeline = yaml.safe_load((TEMPLATES / "gitlab-ci-sharded.yml").read_text())
    ci = {"CI_PROJECT_DIR": str(checkout)}
    variables = {**{k: _expand(v, ci) for k, v in pipeline["variables"].items()}, **VARIABLES}
    setup = [s for s in pipeline["default"]["before_script"] if "apt-get" not in s]
    assert pipeline["conformance"]["parallel"] >= SHARDS
    assert pipeline["report"]["when"] == "always" and pipeline["report"]["needs"] == ["conformance"]

    def job(name: str, env: dict[str, str]) -> str:
        return _run("\n".join([*setup, *pipeline[name]["script"]]), checkout, {**variables, **env})

    said = job("provision", ci)
    assert re.search(r"the cache holds qmpcompat-cache-[0-9a-f]{20}", said)
    for index in range(1, SHARDS + 1):
        node = {**ci, "CI_NODE_INDEX": str(index), "CI_NODE_TOTAL": str(SHARDS)}
        shard_vars = {k: _expand(v, node) for k, v in pipeline["conformance"]["variables"].items()}
        assert shard_vars["QMPCOMPAT_SHARD"] == f"{index}/{SHARDS}"
        job("conformance", {**node, **shard_vars})
    job("report", ci)
    _check_merged(checkout)
    assert (checkout / pipeline["report"]["artifacts"]["reports"]["junit"]).is_file()


def _steps(job: dict[str, object], *names: str) -> list[str]:
    steps = job["steps"]
    assert isinstance(steps, list)
    return [s["run"] for s in steps if s.get("name") in names]


def test_github_sharded_template(checkout: Path, tmp_path: Path) -> None:
    workflow = yaml.safe_load((TEMPLATES / "github-actions-sharded.yml").read_text())
    jobs = workflow["jobs"]
    gh = {"GITHUB_WORKSPACE": str(checkout), "GITHUB_OUTPUT": str(tmp_path / "output"),
          "GITHUB_STEP_SUMMARY": str(tmp_path / "summary.md"), **workflow["env"], **VARIABLES}
    for script in _steps(jobs["provision"], "provision"):
        _run(script, checkout, gh)
    key = (tmp_path / "output").read_text().strip()
    assert re.fullmatch(r"key=qmpcompat-cache-[0-9a-f]{20}", key)
    assert jobs["conformance"]["strategy"]["fail-fast"] is False
    for index in range(1, SHARDS + 1):
        def fill(text: str, n: int = index) -> str:
            return (text.replace("${{ matrix.shard }}", str(n))
                    .replace("${{ strategy.job-total }}", str(SHARDS)))

        env = {k: fill(v) for k, v in jobs["conformance"]["env"].items()}
        assert env["QMPCOMPAT_SHARD"] == f"{index}/{SHARDS}"
        for script in _steps(jobs["conformance"], "shard"):
            _run(fill(script), checkout, {**gh, **env})
    for script in _steps(jobs["report"], "merge"):
        _run(script, checkout, gh)
    _check_merged(checkout)
    assert (tmp_path / "summary.md").read_text().startswith("## qmpcompat: PASS")


@pytest.mark.parametrize("name", ["gitlab-ci-sharded.yml", "github-actions-sharded.yml"])
def test_sharded_templates_are_documented(name: str) -> None:
    assert f"docs/ci/{name}" in (REPO / "docs" / "sharding.md").read_text()
