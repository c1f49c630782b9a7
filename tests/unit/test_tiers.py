"""The top-level conftest.py: every test of tests/ is marked with its tier, runs
in tier order, and fails with a message that says where it goes when it sits
outside the tiers or is a unit test that asks for a QEMU build; and it leaves
the qmpcompat plugin dormant for tests/. Collecting the tests touches no build."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from qmpcompat.pytest_plugin import SUITE_MARK
from qmpcompat.pytest_plugin.state import STATE

REPO = Path(__file__).resolve().parents[2]


def _tree(root: Path) -> Path:
    """A repository of its own with the real top-level conftest.py and a test in
    each place: each tier, outside the tiers, and a unit test asking for a build."""
    shutil.copy(REPO / "conftest.py", root / "conftest.py")
    (root / "pytest.ini").write_text("[pytest]\n")  # the rootdir, as pyproject.toml is here
    (root / "tests").mkdir()
    (root / "tests" / "conftest.py").write_text(
        "import pytest\n\n@pytest.fixture\ndef newest():\n    raise AssertionError('started a build')\n")
    files = {"e2e/test_whole.py": "test_whole", "qemu/test_real.py": "test_real",
             "unit/test_pure.py": "test_pure", "test_flat.py": "test_flat"}
    for name, test in files.items():
        (root / "tests" / name).parent.mkdir(exist_ok=True)
        (root / "tests" / name).write_text(f"def {test}():\n    pass\n")
    (root / "tests" / "unit" / "test_asks.py").write_text("def test_asks(newest):\n    pass\n")
    return root


def _pytest(root: Path, *args: str) -> tuple[int, str, list[str]]:
    """Run pytest on the tree's tests/; its exit status, output and the tests it ran, in order."""
    proc = subprocess.run([sys.executable, "-m", "pytest", "-p", "no:cacheprovider", "-p", "no:xdist",
                           "-p", "no:hypothesispytest",
                           "-v", *args, "tests"], cwd=root, capture_output=True, text=True,
                          timeout=120, check=False)
    ran = [line.split(" ")[0] for line in proc.stdout.splitlines()
           if line.startswith("tests/") and "::" in line.split(" ")[0]]
    return proc.returncode, proc.stdout + proc.stderr, ran


def test_tiers_mark_order_and_place_the_tests(tmp_path: Path) -> None:
    root = _tree(tmp_path)
    rc, out, ran = _pytest(root)
    assert rc == 1, out
    assert ran == ["tests/test_flat.py::test_flat", "tests/unit/test_asks.py::test_asks",
                   "tests/unit/test_pure.py::test_pure", "tests/e2e/test_whole.py::test_whole",
                   "tests/qemu/test_real.py::test_real"], out
    assert "tests/test_flat.py is outside the tiers: move it to tests/unit/" in out
    assert "tests/unit/test_asks.py: test_asks uses a QEMU build, so its file belongs in tests/qemu/" in out
    assert "started a build" not in out  # refused before its fixtures ran
    assert "3 passed, 2 errors" in out
    rc, out, ran = _pytest(root, "-m", "unit")
    assert ran == ["tests/unit/test_asks.py::test_asks", "tests/unit/test_pure.py::test_pure"], out


def test_every_test_carries_its_tier(request: pytest.FixtureRequest) -> None:
    """In this very run: each test of tests/ is marked with the tier it lives in,
    and only with that one; the markers are registered with their meaning."""
    tiers = {"unit", "qemu", "e2e"}
    for item in request.session.items:
        place = item.path.relative_to(REPO / "tests").parts[0]
        assert {m.name for m in item.iter_markers()} & tiers == {place}, item.nodeid
    registered = {line.split(":")[0] for line in request.config.getini("markers")}
    assert tiers <= registered


def test_the_plugin_stays_dormant_for_tests(request: pytest.FixtureRequest) -> None:
    """tests/ runs without the plugin: nothing switches it on."""
    (top,) = [p for p in request.config.pluginmanager.get_plugins()
              if getattr(p, "__file__", None) == str(REPO / "conftest.py")]
    assert getattr(top, SUITE_MARK, False) is not True
    assert request.config.stash.get(STATE, None) is None


def test_collecting_the_tests_provisions_nothing(tmp_path: Path) -> None:
    """Collecting every test of tests/ (-m unit: no head start) on an empty cache
    leaves it empty: no module provisions, fetches or starts a build when it is
    imported, so on a cold cache the xdist workers' collection never waits for
    the head start's provisioning."""
    env = {k: v for k, v in os.environ.items() if k != "QMPCOMPAT_CACHE"}
    env["XDG_CACHE_HOME"] = str(tmp_path)
    done = subprocess.run([sys.executable, "-m", "pytest", "-p", "no:cacheprovider", "--collect-only",
                           "-q", "-m", "unit", str(REPO / "tests")], cwd=REPO, env=env,
                          capture_output=True, text=True, timeout=600, check=False)
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-2000:]
    assert not list(tmp_path.rglob("*")), sorted(map(str, tmp_path.rglob("*")))[:10]
