"""The house rules every commit keeps, checked with the own tests (``tox`` runs
them in its ``py`` env; ``tox -e style``, ``-e lint`` and ``-e type`` run each
alone): ruff finds nothing in the checkout, ``qmpcompat lint`` no problem in the
committed vectors, mypy (``--strict``, as pyproject.toml sets it) nothing in
``qmpcompat/``. A tool that is not installed skips its test, saying so."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from helpers.suite_runner import REPO

from qmpcompat.cli import main


def _tool(name: str) -> str:
    """The tool installed beside this interpreter (the env's), else on PATH."""
    found = shutil.which(name, path=os.pathsep.join([str(Path(sys.executable).parent),
                                                     os.environ.get("PATH", "")]))
    if found is None:
        pytest.skip(f"{name} is not installed here: run the own tests with tox, whose py env has it")
    return found


def _clean(argv: list[str]) -> None:
    done = subprocess.run(argv, cwd=REPO, capture_output=True, text=True, timeout=600, check=False)
    assert done.returncode == 0, (done.stdout + done.stderr)[-6000:]


def test_ruff_finds_nothing() -> None:
    _clean([_tool("ruff"), "check", "--no-cache"])


def test_the_committed_vectors_lint_clean(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["lint"]) == 0, capsys.readouterr().out[-6000:]


def test_mypy_finds_nothing() -> None:
    _clean([_tool("mypy")])
