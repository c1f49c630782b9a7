"""Options and fixtures of the conformance suite; the logic lives in qmpcompat."""

from __future__ import annotations

from typing import TYPE_CHECKING

import pytest

from qmpcompat.vectors.check import SchemaCache
from qmpcompat.vectors.run import Runner

if TYPE_CHECKING:
    from qmpcompat.pytest_plugin import RunState

pytest_plugins = ["qmpcompat.pytest_plugin"]


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("qmpcompat", "qmpcompat: QEMU migration QMP conformance")
    group.addoption("--qemu", dest="qmpcompat_qemu", action="append", metavar="PATH",
                    help="a QEMU binary to test (repeatable; also $QMPCOMPAT_QEMU, "
                         "separated by ':'). Named binaries replace the default Debian set "
                         "unless --qmpcompat-suites is given too.")
    group.addoption("--qmpcompat-source", dest="qmpcompat_source", action="append",
                    metavar="SPEC",
                    help="build QEMU from source and test it: debian:VERSION or the path of a "
                         "QEMU source tree (repeatable; also $QMPCOMPAT_SOURCE, comma-separated; "
                         "profile minimal, cached). Replaces the default Debian set unless "
                         "--qmpcompat-suites is given too.")
    group.addoption("--qmpcompat-targets", dest="qmpcompat_targets", metavar="T[,T...]",
                    help="targets of the Debian builds: x86_64 (default), aarch64 "
                         "(qemu-system-aarch64 from qemu-system-arm); also $QMPCOMPAT_TARGETS")
    group.addoption("--qmpcompat-suites", metavar="SUITE[,SUITE...]",
                    help="Debian suites whose qemu-system-x86 builds to provision and test "
                         "(default: bookworm,bookworm-backports,trixie,trixie-backports,forky,sid)")
    group.addoption("--qmpcompat-no-provision", action="store_true",
                    help="test only the named binaries; never download Debian builds")
    group.addoption("--qmpcompat-vectors", metavar="DIR", help="vector directory (default: vectors/)")
    group.addoption("--qmpcompat-reports", metavar="DIR", default="reports",
                    help="where results.json and the other reports go (default: reports/)")
    group.addoption("--qmpcompat-strict", action="store_true",
                    help="release gate: a vector skipped because the binary lacks what it "
                         "needs counts as a failure")
    group.addoption("--qmpcompat-allow-exec", action="store_true",
                    help="let vectors run exec: commands other than the harness's sink commands")
    group.addoption("--qmpcompat-fail-on", choices=("breaking", "warning", "info"),
                    default="breaking",
                    help="the schema gate fails on changes at this level or above (default breaking)")
    group.addoption("--qmpcompat-fail-on-known", metavar="crash[,hang]",
                    help="release gate: a known defect that crashes (or hangs) QEMU fails its case "
                         "instead of being an expected failure")
    group.addoption("--qmpcompat-quiet", action="store_true",
                    help="no progress lines (for CI logs)")
    group.addoption("--qmpcompat-timeout", type=float, default=10.0, metavar="SECONDS",
                    help="how long QEMU may take to start or answer a command (default 10)")


@pytest.fixture(scope="session")
def qmpcompat_run(pytestconfig: pytest.Config) -> RunState:
    """The run's selected binaries, vector set and settings."""
    from qmpcompat.pytest_plugin import state

    return state(pytestconfig)


@pytest.fixture(scope="session")
def vector_runner(pytestconfig: pytest.Config) -> Runner:
    return Runner(timeout=pytestconfig.getoption("qmpcompat_timeout"),
                  allow_exec=pytestconfig.getoption("qmpcompat_allow_exec"))


@pytest.fixture(scope="session")
def schema_cache() -> SchemaCache:
    """Each binary's query-qmp-schema, fetched once per worker."""
    return SchemaCache()
