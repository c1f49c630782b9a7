"""What every pytest run in this repository shares: the tiers of qmpcompat's own
tests, as markers.

A test file of ``tests/`` lives in the tier of its most demanding test, and is
marked with that tier (``pytest -m unit``, ``-m "not e2e"``):

- ``tests/unit/``: no QEMU (pure Python, and small tools such as git or gpg);
- ``tests/qemu/``: real QEMU builds, driven in the test's own process;
- ``tests/e2e/``: whole runs in a subprocess (``pytest suites``, ``qmpcompat``
  commands, the CI templates), as a user runs them.

A test outside the tiers, or a unit test that asks for a QEMU build, fails
with a message that says where it goes. Tests run unit first (a broken
basic fails in seconds), then e2e, then qemu: the long whole runs start early
and the shorter in-process tests fill the end, so the xdist workers finish
together.

This file does not switch the qmpcompat plugin on (``suites/conftest.py`` does,
for ``suites/`` only): ``tests/`` runs without it, and the plugin still loads
on its own with ``-p qmpcompat``.
"""

from __future__ import annotations

from pathlib import Path

import pytest

TESTS = Path(__file__).resolve().parent / "tests"
# tier: what it holds (the marker's help), in the order the tiers run
TIERS = {
    "unit": "no QEMU: pure Python and small tools (tests/unit/)",
    "e2e": "whole runs in a subprocess: pytest suites, qmpcompat commands, CI templates (tests/e2e/)",
    "qemu": "real QEMU builds driven in the test's own process (tests/qemu/)",
}
# the fixtures of tests/conftest.py that start or select real QEMU builds
QEMU_FIXTURES = frozenset({"builds", "oldest", "newest"})


def pytest_configure(config: pytest.Config) -> None:
    for tier, what in TIERS.items():
        config.addinivalue_line("markers", f"{tier}: {what}")


def tier_of(path: Path) -> str | None:
    """The tier of a file under tests/ (None for one outside the tiers); not
    asked for files outside tests/."""
    top = path.relative_to(TESTS).parts[0]
    return top if top in TIERS else None


def misplaced(item: pytest.Item) -> str | None:
    """What is wrong with where a test of tests/ lives, if anything."""
    tier = tier_of(item.path)
    where = item.path.relative_to(TESTS.parent)
    if tier is None:
        return f"{where} is outside the tiers: move it to tests/unit/, tests/qemu/ or tests/e2e/ " \
               "(tests/README.md says which)"
    if tier == "unit" and QEMU_FIXTURES & set(item.fixturenames):
        return f"{where}: {item.name} uses a QEMU build, so its file belongs in tests/qemu/ " \
               "(or tests/e2e/), not tests/unit/"
    return None


MISPLACED = pytest.StashKey[str]()


@pytest.hookimpl(tryfirst=True)  # before -m deselects by marker
def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    rank = {tier: n for n, tier in enumerate(TIERS)}
    tiers: dict[pytest.Item, str | None] = {}
    for item in items:
        if not item.path.is_relative_to(TESTS):
            continue  # a run of suites/ (or of anything else): nothing to do
        tiers[item] = tier_of(item.path)
        if tiers[item] is not None:
            item.add_marker(str(tiers[item]))
        if (problem := misplaced(item)) is not None:
            item.stash[MISPLACED] = problem
    items.sort(key=lambda i: rank.get(tiers.get(i) or "", -1))  # stable: collection order within a tier


@pytest.hookimpl(tryfirst=True)  # before its fixtures start anything
def pytest_runtest_setup(item: pytest.Item) -> None:
    """A test in the wrong place fails, saying where it goes."""
    if MISPLACED in item.stash:
        pytest.fail(item.stash[MISPLACED], pytrace=False)
