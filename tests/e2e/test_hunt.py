"""The hunt on real binaries: valid and safe trees, shrinking and reproduction,
candidate vector files in the project's format, and the command end to end
with no QEMU left behind."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, find, given, settings
from hypothesis import strategies as st
from hypothesis.configuration import set_hypothesis_home_dir, storage_directory

from qmpcompat.derive.shapes import TypeWalker
from qmpcompat.errors import QmpCompatError
from qmpcompat.hunt.cases import (
    Finding,
    bug_key,
    incoming_exit,
    is_failure,
    shapes,
    signature,
    slow_shapes,
    stderr_line,
)
from qmpcompat.hunt.explore import Explorer, distinct
from qmpcompat.hunt.findings import Answer, write_candidate
from qmpcompat.hunt.strategies import TreeStrategies
from qmpcompat.provision import QemuBuild
from qmpcompat.safety import Policy, command_problems
from qmpcompat.schema.model.query import SchemaIndex
from qmpcompat.schema.sources.live import SchemaCache
from qmpcompat.vectors.lint import DEFECTS_SCHEMA, VECTOR_SCHEMA, schema_problems
from qmpcompat.vectors.load import default_root
from qmpcompat.vectors.model import parse_defect, parse_vector
from qmpcompat.vectors.persistent import Confirm, PersistentRunner
from qmpcompat.vectors.run import Observation
from qmpcompat.vectors.transcript import steps_problems
from qmpcompat.vectors.yamlfile import load_yaml

SCHEMAS = SchemaCache()


def step(command: str, arguments: dict[str, Any]) -> dict[str, Any]:
    return {"execute": command, "arguments": arguments}
VISITOR_ERRORS = ("is missing", "is unexpected", "Invalid parameter type", "does not accept value")


@pytest.fixture(autouse=True)
def _hypothesis_home(tmp_path: Path) -> Iterator[None]:
    """Hypothesis keeps its files in the test's temp dir, not in the checkout."""
    before = storage_directory(intent_to_write=False).home_directory
    set_hypothesis_home_dir(tmp_path / "hypothesis")
    yield
    set_hypothesis_home_dir(before)


def test_generated_trees_are_safe(builds: list[QemuBuild]) -> None:
    for build in builds:
        strategies = TreeStrategies(TypeWalker(SchemaIndex(SCHEMAS.entries(build))))

        @settings(max_examples=150, database=None, deadline=None,
                  suppress_health_check=list(HealthCheck))
        @given(st.sampled_from(["migrate", "migrate-incoming"]).flatmap(
            lambda c: strategies.arguments(c).map(lambda t: (c, t))))
        def safe(case: tuple[str, dict[str, Any]]) -> None:
            assert not command_problems(*case, Policy.template()), case

        safe()


def test_generated_trees_pass_the_schema_check_of_a_real_binary(newest: QemuBuild) -> None:
    """QEMU's input visitor never rejects a generated tree's shape (it may still
    refuse values, e.g. an integer out of its C type's range)."""
    explorer = Explorer(newest, SCHEMAS.entries(newest), ["migrate", "migrate-incoming"])
    strategy = explorer.strategies.arguments("migrate-incoming")
    seen: list[Observation] = []

    @settings(max_examples=25, database=None, deadline=None, derandomize=True,
              suppress_health_check=list(HealthCheck))
    @given(strategy)
    def run(tree: dict[str, Any]) -> None:
        obs = explorer.run_case([step("migrate-incoming", tree)])
        seen.append(obs)
        assert not any(e in (obs.desc or "") for e in VISITOR_ERRORS), (tree, obs.summary())

    run()
    assert len(seen) >= 20 and {o.result for o in seen} & {"accept", "reject"}


class _FileIsFatal(Explorer):
    """A real run, reported as a crash whenever QEMU accepts a tree with a channel
    on the file transport: a failure whose minimal tree is known, to test shrinking."""

    def strategy(self, command: str, stateful: bool) -> Any:
        return self.model.single(command).filter(  # channels with a file channel only
            lambda s: "uri" not in s[0]["arguments"] and '"file"' in json.dumps(s))

    def run_case(self, steps: list[dict[str, Any]], fresh: bool = False,
                 confirm: Confirm | None = None) -> Observation:
        obs = super().run_case(steps, fresh, confirm)
        if obs.result in ("crash", "hang"):  # QEMU's own crashes are not this test's
            return Observation("reject", "GenericError", "a real crash, set aside")
        if obs.result == "accept" and '"transport": "file"' in json.dumps(steps):
            return Observation("crash", detail="QEMU killed by signal 11 after migrate\n"
                                               "  stderr: a file channel is fatal here")
        return obs


def test_a_failure_is_shrunk_reproduced_and_deduplicated(newest: QemuBuild) -> None:
    with PersistentRunner() as runner:
        explorer = _FileIsFatal(newest, SCHEMAS.entries(newest), ["migrate"], runner)
        findings = explorer.hunt(budget=None, seed=11, max_cases=60, systematic=False)
    assert findings, explorer.stats
    first = next((f for f in findings if "fatal here" in f.observed["detail"]), None)
    assert first is not None, explorer.stats
    assert first.arguments == {"channels": [{"channel-type": "main", "addr": {
        "transport": "file", "filename": "{tmpdir}/h.file", "offset": 0}}]}, first.arguments
    assert first.reproduced["result"] == "crash" and not first.flaky
    assert first.bug_key == "crash | signal 11 | a file channel is fatal here | migrate"
    assert first.signature == first.bug_key + " | migrate(channels)"
    on_file = [f for f in distinct(findings, explorer) if "fatal here" in f.observed["detail"]]
    assert on_file == [first]  # any later one on file is explained by the first
    assert explorer.stats.cases > 10


class _Recording(Explorer):
    """Remembers every tree it runs."""

    def __init__(self, *args: Any) -> None:
        super().__init__(*args)
        self.trees: list[str] = []

    def run_case(self, steps: list[dict[str, Any]], fresh: bool = False,
                 confirm: Confirm | None = None) -> Observation:
        self.trees.append(json.dumps(steps, sort_keys=True))
        self.stats.cases += 1
        return Observation("reject", "GenericError", "not run")  # what is drawn is the point


def test_the_same_seed_explores_the_same_trees(newest: QemuBuild) -> None:
    """Bounded by cases, not seconds: the same seed runs exactly the same cases
    however busy the machine is."""
    runs = []
    for seed in (3, 3, 4):
        explorer = _Recording(newest, SCHEMAS.entries(newest), ["migrate", "migrate-incoming"])
        explorer.hunt(budget=None, seed=seed, max_cases=150, systematic=False)
        runs.append(explorer.trees)
        assert explorer.stats.cases == 150
    assert runs[0] == runs[1]
    assert runs[0][:10] != runs[2][:10]
    transcripts = [t for t in runs[0] if t.count('"execute"') > 1]
    assert transcripts, "150 cases reach the rounds that draw transcripts"


def test_a_hunt_needs_a_bound(newest: QemuBuild) -> None:
    with pytest.raises(QmpCompatError, match="time budget or a number of cases"):
        Explorer(newest, SCHEMAS.entries(newest), ["migrate"]).hunt(budget=None, seed=0)


def _finding(newest: QemuBuild) -> Finding:
    crash = {"result": "crash", "detail": "QEMU killed by signal 11 after migrate"}
    return Finding(steps=[{"execute": "migrate", "arguments": {"channels": [{
        "channel-type": "cpr", "addr": {"transport": "socket", "type": "unix",
                                        "path": "{tmpdir}/h.sock"}}]}}],
        qemu=newest.label, qemu_version=newest.version_str, binary=newest.binary,
        observed=crash, reproduced=crash, original=[], seed=1, worker=0, batch=0)


def test_candidate_files_are_in_the_project_format(newest: QemuBuild, tmp_path: Path) -> None:
    finding = _finding(newest)
    answers = [Answer("7.2.22", "7.2.22", {"result": "reject", "error_class": "GenericError",
                                           "desc": "Parameter 'uri' is missing"}),
               Answer(newest.label, newest.version_str, finding.reproduced)]
    path, used = write_candidate(finding, answers, tmp_path, 9001, 9001)
    assert used == 1
    root = default_root()
    data = load_yaml(path)
    vector_schema = json.loads((root / VECTOR_SCHEMA).read_text())
    assert not schema_problems(data, vector_schema, path.name)
    vec = parse_vector(data["vectors"][0], path.name, data["command"])
    assert vec.id == "M-9001" and "found-by" in vec.flags and vec.arguments == finding.arguments
    assert vec.expectation_for((7, 2, 22)).desc == "Parameter 'uri' is missing"
    assert vec.expectation_for((7, 2, 22)).observed_on == ("7.2.22",)
    review = vec.expectation_for(newest.version)  # the failing build: say what is right
    assert review is not None and review.why.startswith("REVIEW")
    defects = load_yaml(tmp_path / "M-9001.known-defects.yaml")
    # the defects' schema takes the observed/inferred rule from the vector file's
    assert not schema_problems(defects, json.loads((root / DEFECTS_SCHEMA).read_text()), "kd",
                               (vector_schema,))
    assert defects["defects"][0]["observed-on"] == [newest.version_str]
    defect = parse_defect(defects["defects"][0], "kd")
    assert defect.id == "KD-9001" and defect.vector == "M-9001"
    assert newest.version in defect.versions and (7, 2, 22) not in defect.versions
    assert defect.observed.result == "crash" and "signal 11" in defect.evidence
    assert "found-by" in load_yaml(root / "flags.yaml")["flags"]
    assert path.read_text().startswith("# Candidate vector found by qmpcompat hunt")


def test_an_incoming_exit_as_told_is_no_finding(oldest: QemuBuild, newest: QemuBuild) -> None:
    """migrate-incoming from something that is not a migration stream (7.2: fd 0,
    QEMU's /dev/null; newer: a directory as the file): QEMU exits with status 1, as
    exit-on-error (default true) says; told not to, it stays."""
    for build in (oldest, newest):
        explorer = Explorer(build, SCHEMAS.entries(build), ["migrate-incoming"])
        told = {"channels": [{"channel-type": "main", "addr": {
            "transport": "file", "filename": "{tmpdir}/", "offset": 0}}]} \
            if build is newest else {"uri": "fd:0"}
        obs = explorer.run_case([step("migrate-incoming", told)])
        assert obs.result == "crash" and "exited with status 1" in obs.detail, obs.summary()
        assert incoming_exit([step("migrate-incoming", told)], obs)
        assert not is_failure([step("migrate-incoming", told)], obs)
        assert is_failure([step("migrate-incoming", {**told, "exit-on-error": False})], obs)
        assert is_failure([step("migrate", told)], obs)
    stays = Explorer(newest, SCHEMAS.entries(newest), []).run_case(
        [step("migrate-incoming", {**told, "exit-on-error": False})])
    assert stays.result == "accept", stays.summary()


def _qemu_processes_under(path: Path) -> list[str]:
    found = []
    for proc in Path("/proc").iterdir():
        try:
            cmdline = (proc / "cmdline").read_bytes().replace(b"\0", b" ").decode()
        except OSError:
            continue
        if "qemu-system" in cmdline and str(path) in cmdline:
            found.append(f"{proc.name}: {cmdline}")
    return found


BUDGET = 4  # seconds: some 400 cases on 11.1.3 on an idle 2-core machine


def test_hunt_command_runs_its_budget_and_leaves_no_qemu(newest: QemuBuild,
                                                          tmp_path: Path) -> None:
    tmp = tmp_path / "t"
    tmp.mkdir()
    out = tmp_path / "out"
    env = {**os.environ, "TMPDIR": str(tmp)}
    cmd = [sys.executable, "-m", "qmpcompat", "hunt", "--only", newest.label, "--budget", f"{BUDGET}s",
           "--seed", "5", "--out", str(out), "--workers", "2", "--floor-every", "5"]
    proc = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=240,
                          cwd=tmp_path)
    assert proc.returncode in (0, 1), proc.stderr
    summary = json.loads((out / "hunt.json").read_text())
    (row,) = summary["builds"]
    assert row["qemu"] == newest.label and row["cases"] > 20
    assert BUDGET <= row["seconds"] < 200
    assert len(row["workers"]) == 2 and all(w["cases"] for w in row["workers"])
    assert row["floor_ms"] > 0 and row["per_case_ms"] > 0
    new = [r for r in summary["reports"] if not r["recorded"]]
    assert proc.returncode == (1 if new else 0), proc.stdout
    assert len(summary["reports"]) == summary["findings"]
    for report in summary["reports"]:  # a bug report and the evidence for each
        assert (out / report["report"]).read_text().startswith("# ")
        assert (out / f"{report['id']}.json").exists() and report["affected"]
    assert summary["known_defects"]["found"] or summary["known_defects"]["missed"]
    assert not _qemu_processes_under(tmp), "QEMU left behind"
    assert not list(tmp.iterdir()), "temp dirs left behind"
    assert not (tmp_path / ".hypothesis").exists()


def test_edges_and_state_reach_the_recorded_crashes(builds: list[QemuBuild]) -> None:
    """The generator can draw, safely, what the recorded crashes need: an exec channel
    with an empty argv (KD-0001/2), a lone cpr channel (KD-0003/5), and cpr-transfer
    mode set before a migrate with a uri (KD-0008)."""
    newest = builds[-1]
    model = Explorer(newest, SCHEMAS.entries(newest), ["migrate"]).model
    settings_ = settings(max_examples=3000, database=None, deadline=None, derandomize=True,
                         suppress_health_check=list(HealthCheck))
    empty_argv = find(model.single("migrate"), lambda s: '"args": []' in json.dumps(s),
                      settings=settings_)
    lone_cpr = find(model.single("migrate-incoming"), lambda s: json.dumps(s).count(
        '"channel-type": "cpr"') == 1 and '"main"' not in json.dumps(s), settings=settings_)
    cpr_uri = find(model.transcripts("migrate"), lambda s: len(s) >= 2
                   and s[0]["arguments"].get("mode") == "cpr-transfer"
                   and "uri" in s[1]["arguments"], settings=settings_)
    for found in (empty_argv, lone_cpr, cpr_uri):
        assert not steps_problems(found, Policy.template()), found


def test_generated_transcripts_are_safe(builds: list[QemuBuild]) -> None:
    for build in (builds[0], builds[-1]):
        model = Explorer(build, SCHEMAS.entries(build), ["migrate"]).model

        @settings(max_examples=150, database=None, deadline=None,
                  suppress_health_check=list(HealthCheck))
        @given(st.sampled_from(["migrate", "migrate-incoming"]).flatmap(model.transcripts))
        def safe(steps: list[dict[str, Any]]) -> None:
            assert len(steps) > 1 and not steps_problems(steps, Policy.template()), steps

        safe()


def test_signature_masks_what_differs_between_runs() -> None:
    detail = ("the QEMU under test, running step 2, migrate: QEMU killed by signal 6 after "
              "migrate\n  stderr: **\n          ERROR:../migration/cpr.c:267:cpr_state_save: "
              "assertion failed: (channel) at 0x7f00 pid 4242")
    steps = [step("migrate-set-parameters", {"mode": "cpr-transfer"}),
             step("migrate", {"uri": "unix:{tmpdir}/x"})]
    assert signature(steps, {"result": "crash", "detail": detail}) == (
        "crash | signal 6 | ERROR:../migration/cpr.c:N:cpr_state_save: assertion failed: (channel) at ADDR "
        "pid N | migrate | migrate-set-parameters(mode) > migrate(uri)")
    glib = "GLib: g_spawn_async_with_pipes_and_fds: assertion 'argv[0] != NULL' failed"
    old, new = (f"QEMU killed by signal 11 after migrate\n  stderr: {prefix}{glib}"
                for prefix in ("", "/usr/bin/qemu-system-x86_64: "))
    one = [step("migrate", {"channels": []})]
    assert stderr_line(old) == stderr_line(new) == glib.replace("[0]", "[N]")
    assert signature(one, {"result": "crash", "detail": old}) == signature(
        one, {"result": "crash", "detail": new})


def test_a_transcript_crash_is_found_on_a_reused_qemu_and_replayed(
        newest: QemuBuild, tmp_path: Path) -> None:
    """cpr-transfer mode, then migrate with a uri: 11.1 aborts (KD-0008). In persistent
    mode after rejected cases, and with --replay on a fresh QEMU."""
    if newest.version < (11, 1):
        pytest.skip("KD-0008 is an 11.1 defect")
    steps = [step("migrate-set-parameters", {"mode": "cpr-transfer"}),
             step("migrate", {"uri": "unix:{tmpdir}/x.sock"})]
    with PersistentRunner() as runner:
        for _ in range(3):
            assert runner.run_transcript([step("migrate", {"uri": "bogus:"})], newest,
                                         False).result == "reject"
        obs = runner.run_transcript(steps, newest, False)
        assert runner.stats.reused == 3 and runner.stats.rerun == 1
    assert obs.result == "crash" and "signal 6" in obs.detail, obs.summary()
    assert obs.replies == [{"execute": "migrate-set-parameters", "return": {}}]
    (tmp_path / "t.json").write_text(json.dumps(steps))
    proc = subprocess.run([sys.executable, "-m", "qmpcompat", "hunt", "--replay",
                           str(tmp_path / "t.json"), "--only", newest.label],
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 1 and "cpr_state_save" in proc.stdout, proc.stdout + proc.stderr


def test_a_slow_case_blames_its_accepted_migration_steps() -> None:
    """A vsock connect timing out in a transcript blames that step's transport, so
    any later case sending it is skipped, whatever comes before it; a rejected
    step is not blamed unless nothing was accepted."""
    vsock = {"execute": "migrate", "arguments": {"channels": [{"channel-type": "main", "addr": {
        "transport": "socket", "type": "vsock", "cid": "1", "port": "1"}}]}}
    incoming = {"execute": "migrate-incoming", "arguments": {}}
    obs = Observation("reject", replies=[{"execute": "migrate-incoming", "error": {}},
                                         {"execute": "migrate", "return": {}}])
    assert slow_shapes([incoming, vsock], obs) == {"migrate socket/vsock"}
    later = [{"execute": "migrate-set-parameters", "arguments": {"max-bandwidth": 1}}, vsock]
    assert shapes(later) & slow_shapes([incoming, vsock], obs)
    assert not shapes([incoming]) & slow_shapes([incoming, vsock], obs)
    single = {"execute": "migrate", "arguments": {"uri": "vsock:1:1"}}
    assert slow_shapes([single], Observation("accept")) == {"migrate uri:vsock"}
    assert slow_shapes([incoming, vsock], Observation("reject", replies=[
        {"execute": "migrate-incoming", "error": {}}, {"execute": "migrate", "error": {}}])) \
        == {"migrate socket/vsock", "migrate-incoming "}


def test_the_bug_names_the_command_qemu_failed_on() -> None:
    """A crash on the second step of a transcript whose main step (the first) was
    rejected is the second step's bug, the same as that step alone; without
    replies (a vector whose set-up the runner did) it is the main step's."""
    cpr = step("migrate", {"channels": [{"channel-type": "cpr", "addr": {
        "transport": "socket", "type": "inet", "host": "127.0.0.1", "port": "1"}}]})
    crash = "the QEMU under test: QEMU killed by signal 11 after migrate"
    first = {"execute": "migrate-incoming", "error": {"class": "GenericError", "desc": "x"}}
    two = bug_key([step("migrate-incoming", {}), cpr],
                  {"result": "crash", "detail": crash, "replies": [first]})
    assert two == bug_key([cpr], {"result": "crash", "detail": crash}) == \
        "crash | signal 11 | - | migrate"
    setup = [step("migrate-set-parameters", {"mode": "cpr-transfer"}), cpr]
    assert bug_key(setup, {"result": "crash", "detail": crash}).endswith("| migrate")
