"""Build features, probed on real builds: a build that lacks one skips exactly the
vectors that need it (and fails them under --qmpcompat-strict)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from helpers.suite_runner import basic_vectors, outcomes, run_suite

from qmpcompat.harness.features import SETTING_PROBES, TRANSPORT_PROBES, lacking, probe
from qmpcompat.provision import QemuBuild
from qmpcompat.provision.build import load_manifest
from qmpcompat.provision.debian import cache_dir

REPO = Path(__file__).resolve().parents[2]


def _needing(vid: str, description: str, requires: str) -> str:
    """A vector file with one vector that needs what ``requires`` says, and is
    otherwise a plain wrong-type uri (rejected alike by every build that runs it)."""
    return f"""command: migrate-incoming
vectors:
  - id: {vid}
    description: {description}
    flags: [uri, wrong-type]
    requires:
      {requires}
    arguments:
      uri: 4444
    expect:
      - result: reject
        error-class: GenericError
        desc: 'Invalid parameter type for ''uri'', expected: string'
        observed-on: [10.0.13]
"""


NEEDS_Q35_10 = _needing("MI-9101", "uri as a number, on a pc-q35-10.0 machine",
                        "machine: pc-q35-10.0")
# Needs the cpr-transfer migration mode, which 7.2 does not take and 10.0 does
# (it sets no mode itself, so it runs on any build that has the feature).
NEEDS_CPR_TRANSFER = _needing("MI-9102", "uri as a number, on a build that takes the "
                              "cpr-transfer mode", "features: [cpr-transfer]")


def test_debian_builds_have_what_they_were_built_with(builds: list[QemuBuild]) -> None:
    for build in builds:
        found = probe(build)
        # Debian builds QEMU with RDMA and AF_VSOCK (observed on every build here).
        assert {"rdma", "vsock", "machine:none", "machine:pc", "machine:q35"} <= set(found), (
            build.label, found)
        # Versioned machine types come with the release: 7.2 has no pc-q35-10.0.
        assert ("machine:pc-q35-10.0" in found) == (build.version >= (10, 0, 0)), build.label
        # Every build takes multifd; the cpr modes came with 8.2 (cpr-reboot),
        # 10.0 (cpr-transfer) and 10.2 (cpr-exec): observed on 7.2.22, 10.0.x, 11.1.x.
        assert "multifd" in found, build.label
        assert ("cpr-reboot" in found) == (build.version >= (8, 2, 0)), (build.label, found)
        assert ("cpr-transfer" in found) == (build.version >= (10, 0, 0)), (build.label, found)
        assert ("cpr-exec" in found) == (build.version >= (10, 2, 0)), (build.label, found)


def test_schema_names_every_probed_transport() -> None:
    schema = json.loads((REPO / "vectors/vector-file.schema.json").read_text())
    req = schema["$defs"]["vector"]["properties"]["requires"]["properties"]["features"]
    assert set(req["items"]["enum"]) == set(TRANSPORT_PROBES) | set(SETTING_PROBES)


def test_a_build_lacking_a_feature_skips_exactly_what_needs_it(tmp_path: Path) -> None:
    root = basic_vectors(tmp_path)
    (root / "migrate-incoming" / "machine.yaml").write_text(NEEDS_Q35_10)
    (root / "migrate-incoming" / "cpr.yaml").write_text(NEEDS_CPR_TRANSFER)
    # under xdist (one worker is enough): the features probed by the controller
    # travel to the worker, which skips on them
    rc, out, results = run_suite(tmp_path / "run", "-n", "1", vectors=root,
                                 suites="bookworm,trixie")
    got = outcomes(results)
    labels = {b["version"]: b.get("run_label") or b["version"]
              for b in results["environment"]["binaries"]}
    seven = next(v for v in labels if v.startswith("7."))
    ten = next(v for v in labels if v.startswith("10."))
    assert got[("MI-9101", labels[seven])] == "skipped"
    assert got[("MI-9101", labels[ten])] == "passed"
    skip = next(r for r in results["results"] if r["vector"] == "MI-9101" and r["qemu"] == seven)
    assert skip["message"] == "build lacks feature machine:pc-q35-10.0"
    assert got[("MI-9102", labels[seven])] == "skipped"
    assert got[("MI-9102", labels[ten])] == "passed"
    skip = next(r for r in results["results"] if r["vector"] == "MI-9102" and r["qemu"] == seven)
    assert skip["message"] == "build lacks feature cpr-transfer"
    # Every other case runs as before on both builds.
    assert {o for (v, _q), o in got.items() if v not in ("MI-9101", "MI-9102")} == {"passed"}, \
        out[-3000:]
    assert rc == 0, out[-3000:]
    # The report shows each build's features.
    for binary in results["environment"]["binaries"]:
        assert "machine:none" in binary["features"] and binary["features_probed"]
        assert ("cpr-transfer" in binary["features"]) == (binary["version"] == ten)
    summary = (tmp_path / "run" / "reports" / "summary.md").read_text()
    assert "cpr-transfer" in summary and "multifd" in summary
    # Strict: the skips are failures.
    rc, out, results = run_suite(tmp_path / "strict", "--qmpcompat-strict", "-k",
                                 "MI-9101 or MI-9102", vectors=root, suites="bookworm")
    assert rc == 1 and outcomes(results)[("MI-9101", seven)] == "failed"
    assert outcomes(results)[("MI-9102", seven)] == "failed"


def _source_builds(profile: str) -> list[QemuBuild]:
    found = []
    for prefix in sorted((cache_dir() / "source" / "builds").glob(f"*-{profile}-*")):
        build = load_manifest(prefix)
        if build:
            found.append(build)
    return found


@pytest.mark.skipif(not _source_builds("minimal"),
                    reason="no minimal source build cached (`qmpcompat provision --source "
                           "debian:10.2.2` or `tox -e source` builds one)")
def test_minimal_source_build_lacks_rdma() -> None:
    for build in _source_builds("minimal"):
        found = probe(build)
        assert "rdma" not in found and "machine:none" in found, found
        assert "machine:pc" not in found  # --without-default-devices: no boards
        # multifd and the cpr modes are not configure options: 10.2 takes them all
        assert {"multifd", "cpr-reboot", "cpr-transfer", "cpr-exec"} <= set(found), found
        probed = QemuBuild(**{**build.__dict__, "features": found, "features_probed": True})
        assert lacking(probed, ("rdma", "machine:none")) == ["rdma"]


@pytest.mark.skipif(not _source_builds("default"),
                    reason="no default-profile source build cached (`qmpcompat provision --source "
                           "debian:10.2.2 --profile default`)")
def test_default_source_build_has_boards_and_rdma() -> None:
    for build in _source_builds("default"):
        found = set(probe(build))
        # The default profile installs rdma-core's headers and builds every x86 board.
        assert {"rdma", "vsock", "multifd", "cpr-reboot", "machine:pc", "machine:q35"} <= found
        assert f"machine:pc-q35-{build.version[0]}.{build.version[1]}" in found
