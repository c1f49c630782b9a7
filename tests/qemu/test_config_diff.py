"""Configuration is not compatibility, between two real binaries of one version:
what one lacks because an ``if:`` of its QAPI source is off there is a
CONFIG_CONDITION (info) naming the condition, found from the source the
binaries were built from; without a source at hand the report says so."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from qmpcompat.cli import main
from qmpcompat.provision import QemuBuild, provision
from qmpcompat.provision.build import load_manifest
from qmpcompat.provision.debian import cache_dir


def _diff(tmp_path: Path, *args: str) -> dict:  # type: ignore[type-arg]
    out = tmp_path / "out"
    main(["diff", *args, "--all", "--no-since-audit", "--output", str(out)])
    return json.loads((out / "schema-diff.json").read_text())  # type: ignore[no-any-return]


@pytest.fixture(scope="module")
def both_targets() -> tuple[QemuBuild, QemuBuild]:
    """Debian's 10.0.13 for x86_64 and for aarch64: one source package, two
    configurations (the target's own commands are under TARGET_I386 / TARGET_ARM)."""
    result = provision(["trixie"], targets=("x86_64", "aarch64"))
    assert not result.errors, result.errors
    x86 = next(b for b in result.builds if b.target == "x86_64")
    arm = next(b for b in result.builds if b.target == "aarch64")
    assert x86.version == arm.version
    return x86, arm


def test_two_targets_differ_in_configuration_only(tmp_path: Path,
                                                  both_targets: tuple[QemuBuild, QemuBuild]) -> None:
    x86, arm = both_targets
    doc = _diff(tmp_path, x86.binary, arm.binary)
    (step,) = doc["comparisons"]
    findings = step["findings"]
    assert step["counts"]["breaking"] == 0 and step["counts"]["warning"] == 0, findings
    assert findings and {f["rule"] for f in findings} == {"CONFIG_CONDITION"}
    changes = {f["path"]: f["change"] for f in findings}
    assert changes["query-sev"] == "command removed (if: TARGET_I386, off in qemu-10.0.13-2)"
    assert changes["query-gic-capabilities"] == "command added (if: TARGET_ARM, off in qemu-10.0.13)"
    source = "debian:" + x86.package.removeprefix("Debian ")
    assert all(i.get("conditions-from") == source for i in doc["inputs"])
    assert f"qemu-10.0.13-2 is {arm.binary}" in doc["notes"]


def test_without_a_source_it_says_so(tmp_path: Path,
                                     both_targets: tuple[QemuBuild, QemuBuild]) -> None:
    x86, arm = both_targets
    # A source of another version cannot tell: the removals are breaking again.
    doc = _diff(tmp_path, x86.binary, arm.binary, "--conditions-from", "debian:7.2")
    (step,) = doc["comparisons"]
    assert step["counts"]["breaking"] >= 10
    assert "CONFIG_CONDITION" not in {f["rule"] for f in step["findings"]}
    assert any("no QAPI source of that version is at hand" in n for n in doc["notes"]), doc["notes"]
    assert any("is of QEMU 7.2" in n for n in doc["notes"]), doc["notes"]


def _source_builds(profile: str) -> list[QemuBuild]:
    found = []
    for prefix in sorted((cache_dir() / "source" / "builds").glob(f"debian-*-{profile}-x86_64-*")):
        if (build := load_manifest(prefix)) is not None:
            found.append(build)
    return found


@pytest.mark.skipif(not (_source_builds("minimal") and _source_builds("default")),
                    reason="needs the minimal and the default source build of one Debian "
                           "version (`qmpcompat provision --source debian:10.2.2 --profile P`)")
def test_two_profiles_of_one_source(tmp_path: Path) -> None:
    minimal = _source_builds("minimal")[0]
    default = next(b for b in _source_builds("default") if b.version == minimal.version)
    doc = _diff(tmp_path, default.binary, minimal.binary)
    (step,) = doc["comparisons"]
    assert step["counts"]["breaking"] == 0 and step["counts"]["warning"] == 0
    rules = {f["rule"] for f in step["findings"]}
    assert rules == {"CONFIG_CONDITION"}, rules
    # The minimal profile leaves out the optional libraries: their commands are off there.
    assert any("(if: CONFIG_" in f["change"] and "off in qemu-" in f["change"]
               for f in step["findings"])
    # A copy of the same binary outside the cache has no known source.
    copies = []
    for name in ("a", "b"):
        (tmp_path / name).mkdir()
        copies.append(shutil.copy2(minimal.binary, tmp_path / name / "qemu-system-x86_64"))
    doc = _diff(tmp_path, str(copies[0]), str(copies[1]))
    assert any("no QAPI source of that version is at hand" in n for n in doc["notes"])
