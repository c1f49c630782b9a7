"""The conformance suite run as a user runs it: pytest on suites/, against real
builds, serial and with xdist, with bad binaries and bad vectors mixed in."""

from __future__ import annotations

import xml.etree.ElementTree as ET
from pathlib import Path

import pytest
from helpers.shared import Shared
from helpers.suite_runner import (
    REPO,
    basic_vectors,
    copy_notes,
    outcomes,
    run_suite,
    shared_run,
    shared_vectors,
)

from qmpcompat.cli import main
from qmpcompat.vectors.load import load
from qmpcompat.vectors.yamlfile import dump_canonical, editable_yaml


def test_serial_and_parallel_agree_and_report(tmp_path: Path, shared: Shared) -> None:
    vectors = shared_vectors(shared)
    ran = shared_run(shared)  # serial, on the builds of SUITES
    assert ran.rc == 0, ran.output
    serial = ran.results
    rc, out, parallel = run_suite(tmp_path / "xdist", "-n", "2", vectors=vectors)
    assert rc == 0, out
    assert outcomes(serial) == outcomes(parallel)
    labels = {b["version"] for b in serial["environment"]["binaries"]}
    assert set(outcomes(serial)) == {(v.id, q) for v in load(vectors).vectors for q in labels}
    assert set(outcomes(serial).values()) <= {"passed", "xfailed", "skipped"}
    assert len(labels) == 2 and any(v.startswith("7.") for v in labels)
    assert "qmpcompat: 2 QEMU binaries" in out and "debian:sid" in out
    junit = ET.parse(tmp_path / "xdist" / "reports" / "junit.xml")
    cases = junit.findall(".//testcase")
    assert cases and all(
        {p.get("name") for p in c.iter("property")} >= {"qemu_version", "binary"} for c in cases)


def test_bad_binary_fails_alone(tmp_path: Path) -> None:
    # Under xdist (one worker is enough): the controller's problem travels to the
    # worker, which fails it (tests/e2e/test_bad_inputs.py runs bad binaries serially).
    rc, out, results = run_suite(tmp_path, "--qemu", "/bin/true", "-n", "1",
                                 vectors=basic_vectors(tmp_path))
    assert rc == 1
    assert "FAILED suites/test_binaries.py::test_qemu_usable[/bin/true]" in out
    assert "/bin/true: is not QEMU" in out
    assert {r["outcome"] for r in results["results"]} <= {"passed", "xfailed", "skipped"}
    assert results["environment"]["problems"][0]["name"] == "/bin/true"
    assert len(results["totals"]) == 2  # both good binaries still ran every vector


def test_wrong_expectation_broken_file_and_known_defects(tmp_path: Path) -> None:
    root = basic_vectors(tmp_path)
    mig = root / "migrate-incoming" / "basic.yaml"
    # A wrong expectation: the real 11.1 text is "need either 'uri' or 'channels' argument".
    mig.write_text(mig.read_text().replace("need either 'uri' or 'channels' argument",
                                           "need exactly one of 'uri' and 'channels'"))
    (root / "migrate" / "broken.yaml").write_text("command: migrate\nvectors: [\n")
    # MI-0003 on 7.2 really rejects channels: record that as a known defect (xfail);
    # M-0001 really completes: a "known defect" there has been fixed (fail).
    (root / "known-defects.yaml").write_text(
        "defects:\n"
        "  - id: KD-0001\n    vector: MI-0003\n    versions: '<8.2'\n"
        "    summary: channels is not understood\n"
        "    observed: {result: reject, error-class: GenericError, desc: \"Parameter 'uri' is missing\"}\n"
        "    evidence: seen on the Debian bookworm build\n"
        "  - id: KD-0002\n    vector: M-0001\n    versions: '>=11'\n"
        "    summary: a made-up defect that does not happen\n"
        "    observed: {result: reject, error-class: GenericError, desc: nope}\n"
        "    evidence: none, this entry is stale on purpose\n")
    rc, out, results = run_suite(tmp_path, vectors=root)
    assert rc == 1
    got = outcomes(results)
    assert got[("MI-0002", "11.1.3")] == "failed"
    assert got[("MI-0002", "7.2.22")] == "passed"
    assert got[("MI-0003", "7.2.22")] == "xfailed"
    assert got[("M-0001", "11.1.3")] == "failed" and got[("M-0001", "7.2.22")] == "passed"
    assert "expected: reject GenericError: need exactly one of 'uri' and 'channels'" in out
    assert "observed: reject GenericError: need either 'uri' or 'channels' argument" in out
    assert "KD-0002 no longer shows" in out
    assert "broken.yaml:3: YAML error" in out


@pytest.mark.parametrize("strict", [False, True])
def test_missing_capability_skips_or_fails_in_strict_mode(tmp_path: Path, strict: bool) -> None:
    root = basic_vectors(tmp_path)
    (root / "migrate" / "needs.yaml").write_text(dump_canonical({"command": "migrate", "vectors": [{
        "id": "M-0990", "description": "needs a made-up argument", "flags": ["uri"],
        "requires": {"schema": ["migrate/arg-type/no-such-member"]},
        "arguments": {"uri": "unix:{tmpdir}/x"},
        "expect": [{"result": "accept", "inferred-from": "made up for this test"}]}]}))
    # M-0990 alone, on one stable build (strict mode refuses a Debian suite whose
    # index is past its Valid-Until): the capability is missing from every build.
    rc, _out, results = run_suite(tmp_path, *(["--qmpcompat-strict"] if strict else []),
                                 "-k", "M-0990", vectors=root, suites="bookworm")
    rec = [r for r in results["results"] if r["vector"] == "M-0990"]
    assert {r["outcome"] for r in rec} == {"failed" if strict else "skipped"}
    assert "lacks migrate/arg-type/no-such-member" in rec[0]["message"]
    assert rc == (1 if strict else 0)


STABLE = "bookworm,trixie"  # 7.2.22 and 10.0.13
PICK = "M-0001 or M-0002"


def test_strict_mode_refuses_a_pass_on_an_inferred_claim(tmp_path: Path) -> None:
    """M-0001 (completes everywhere) marked observed on 7.2.22 only, M-0002 (uri and
    channels together) observed nowhere. On 10.0.13 both rest on inferences (the
    schema lets both arguments through; 'need either ...' is command code); on
    7.2.22 M-0002's 'channels is unexpected' is decided by the binary's schema.
    Strict mode fails exactly the passes on inferred claims; once `qmpcompat
    observe` records what the run saw, strict mode passes. (Stable suites only:
    strict mode refuses a Debian suite whose index is past its Valid-Until.)"""
    root = basic_vectors(tmp_path)
    path = root / "migrate" / "basic.yaml"
    data = editable_yaml(path)
    for vec in data["vectors"]:
        for exp in vec["expect"]:
            if vec["id"] == "M-0001":
                exp["observed-on"] = ["7.2.22"]
                exp["inferred-from"] = "made up for this test: 7.2.22 only"
            elif vec["id"] == "M-0002":
                exp.pop("observed-on", None)
                exp["inferred-from"] = "made up for this test: nothing observed"
    path.write_text(dump_canonical(data))
    copy_notes(root)  # the notes the edited claims named go
    for strict in (False, True):
        # the two edited vectors only: between them they rest on every kind of claim
        rc, out, results = run_suite(tmp_path / str(strict),
                                     *(["--qmpcompat-strict"] if strict else []), "-k", PICK,
                                     vectors=root, suites=STABLE)
        rec = {(r["vector"], r["qemu"]): r for r in results["results"]}
        kinds = {k: (r["basis"] or {}).get("kind") for k, r in rec.items()}
        assert kinds[("M-0001", "7.2.22")] == "observed"
        assert kinds[("M-0001", "10.0.13")] == "inferred"
        assert kinds[("M-0002", "7.2.22")] == "schema"
        assert kinds[("M-0002", "10.0.13")] == "inferred"
        claims = results["claims"]
        assert claims["10.0.13"]["inferred"] == 2 and claims["7.2.22"]["schema"] == 1
        refused = {k for k, r in rec.items() if r["outcome"] == "failed"}
        if strict:
            assert refused == {("M-0001", "10.0.13"), ("M-0002", "10.0.13")}, out
            assert "strict mode refuses an inferred claim" in rec[("M-0001", "10.0.13")]["message"]
            assert rc == 1
        else:
            assert not refused and rc == 0, out
        summary = (tmp_path / str(strict) / "reports" / "summary.md").read_text()
        assert "### What the expectations rest on" in summary
    # Record what the non-strict run saw: its passes on inferred claims become observed.
    assert main(["observe", str(tmp_path / "False" / "reports" / "results.json"),
                 "--vectors", str(root)]) == 0
    m0001 = next(v for v in load(root).vectors if v.id == "M-0001")
    assert m0001.expect[0].observed_on == ("7.2.22", "10.0.13")
    rc, out, results = run_suite(tmp_path / "again", "--qmpcompat-strict", "-k", PICK,
                                 vectors=root, suites=STABLE)
    assert rc == 0, out
    assert results["claims"]["10.0.13"]["inferred"] == 0


def test_waiting_cases_run_ahead_and_say_so(tmp_path: Path) -> None:
    """A waiting vector (M-0216: cancel-after 1 s) on two builds under two
    workers: each case runs once, ahead of its turn, and passes; its record,
    results.json's ``run`` and the JUnit XML say it ran ahead."""
    vectors = basic_vectors(tmp_path)
    text = (REPO / "vectors/migrate/capabilities.yaml").read_text()
    head, rest = text.split("  - id: M-0215\n", 1)
    (vectors / "migrate" / "capabilities.yaml").write_text(head + "  - id: M-0216\n" +
                                                             rest.split("  - id: M-0216\n", 1)[1])
    copy_notes(vectors)
    rc, out, doc = run_suite(tmp_path / "run", "-n", "2", "-k", "M-0216 or MI-0002",
                             vectors=vectors, paths=("suites/test_vectors.py",))
    assert rc == 0, out
    waiting = [r for r in doc["results"] if r["vector"] == "M-0216"]
    assert len(waiting) == 2 and all(r["outcome"] == "passed" for r in waiting), waiting
    assert all(r["observed"]["ahead"] is True and r["observed"]["migration"] == "cancelled"
               for r in waiting)
    assert not any("ahead" in r["observed"] for r in doc["results"] if r["vector"] == "MI-0002")
    assert doc["run"]["ahead"] == 2
    junit = ET.parse(tmp_path / "run" / "reports" / "junit.xml")
    ahead = [c.get("name") for c in junit.findall(".//testcase")
             if any(p.get("name") == "ahead" for p in c.iter("property"))]
    assert sorted(ahead) == sorted(f"test_vector[M-0216-qemu-{r['qemu']}]" for r in waiting)
