"""Standalone reproducers of the known defects (``qmpcompat report defect``): one
for every known defect, a script that needs nothing of qmpcompat, command lines
made by the harness's own code, and, run against the real builds, a crash,
KD-0013's cross-version failure and KD-0014's consumer exchange (libvirt 9.0.0's
QMP as recorded, replayed) reproduced on the affected builds and not on the
unaffected ones; whose bug a consumer's defect is, from the schema history."""

from __future__ import annotations

import ast
import contextlib
import io
import json
import re
import subprocess
import sys
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest
from helpers.shared import Shared

from qmpcompat.claims.history import known_releases
from qmpcompat.cli import main
from qmpcompat.errors import ReproducerError
from qmpcompat.provision import QemuBuild
from qmpcompat.reproduce import plan as plan_module
from qmpcompat.reproduce.owner import whose
from qmpcompat.reproduce.parts import in_case_dir
from qmpcompat.reproduce.plan import make_plan
from qmpcompat.reproduce.report import report, script_args
from qmpcompat.reproduce.script import render_script
from qmpcompat.safety import fill
from qmpcompat.types import JSONObject, Version
from qmpcompat.vectors import run as run_module
from qmpcompat.vectors.load import VectorSet, load
from qmpcompat.vectors.wire import Recording, recordings
from qmpcompat.vectors.wirecheck import hold

VECTORS = load()


def play(script: Path, source: QemuBuild, destination: QemuBuild | None = None
         ) -> subprocess.CompletedProcess[str]:
    """The script run as a user would, on provisioned builds (their loader, -L dirs
    and environment in the QEMU command, as ``report defect --run`` gives them)."""
    return subprocess.run([sys.executable, str(script), *script_args(source, destination)],
                          capture_output=True, text=True, timeout=180, check=False,
                          cwd=script.parent)


def test_every_known_defect_gets_a_standalone_reproducer() -> None:
    consumers = {p.id for p in VECTORS.profiles}
    assert any(d.vector in consumers for d in VECTORS.defects)  # KD-0014 at least
    for defect in VECTORS.defects:
        plan = make_plan(VECTORS, defect.id)
        script = render_script(plan)
        tree = ast.parse(script)  # valid Python
        imported = {a.name.split(".")[0] for n in ast.walk(tree) if isinstance(n, ast.Import)
                    for a in n.names}
        imported |= {n.module.split(".")[0] for n in ast.walk(tree)
                     if isinstance(n, ast.ImportFrom) and n.module}
        assert imported <= set(sys.stdlib_module_names), (defect.id, imported)
        text = report(plan)
        consumer = defect.vector in consumers
        for part in ("Subject: [", "Affected (builds run here):", "Not affected",
                     "Steps to reproduce", "Expected (", "Actual:",
                     "QEMU's last words", f"known defect {defect.id}", "qemu-system-x86_64 -M ",
                     *(["Whose bug: ", "The QMP exchange is what ", "recorded on "]
                       if consumer else ["Expected (what QEMU documents):"])):
            assert part in text, (defect.id, part)
        played = [e for e in plan.events if e["do"] != "start"]
        assert played and (not consumer or any(e.get("main") for e in played)), defect.id
    pair = make_plan(VECTORS, "KD-0013")
    unaffected = [s.label for s in pair.unaffected]
    assert unaffected[:2] == ["10.0.2->11.1.2", "10.0.2->11.1.3"]  # the same line, another package
    assert "11.1.2->11.1.2" not in unaffected and "10.0.13->10.0.2" in unaffected
    debian = report(pair, "debian")
    assert debian.startswith("Package: qemu-system-x86\nVersion: 1:10.0.13+ds-0+deb13u1\n")
    with pytest.raises(ReproducerError, match="no such known defect"):
        make_plan(VECTORS, "KD-9999")


def test_the_command_lines_are_the_harnesss_own(monkeypatch: pytest.MonkeyPatch) -> None:
    """Whatever the harness's option code and guest set-up produce (a changed
    guest: another option, another file in the case dir) is what the reproducer runs."""
    real_options, real_side = run_module.qemu_options, run_module.GuestSide

    def options(*args: Any, **kwargs: Any) -> Any:
        made = real_options(*args, **kwargs)
        made.extra_args = (*made.extra_args, "-device", "virtio-rng-pci")
        return made

    class Side(real_side):  # type: ignore[misc, valid-type]
        def __init__(self, spec: Any, tmp: Path, version: Any) -> None:
            super().__init__(spec, tmp, version)
            (tmp / "firmware.bin").write_bytes(b"\x90" * 16)

    monkeypatch.setattr(run_module, "qemu_options", options)
    monkeypatch.setattr(plan_module, "GuestSide", Side)
    plan = make_plan(VECTORS, "KD-0013")
    starts = [e for e in plan.events if e["do"] == "start"]
    assert all(e["argv"][-2:] == ["-device", "virtio-rng-pci"] for e in starts)
    assert plan.files["firmware.bin"] == b"\x90" * 16
    assert {"guest.bios", "guest.pattern"} <= set(plan.files)
    assert all("{tmpdir}" in " ".join(e["argv"]) for e in starts)


def test_a_crash_reproduces_on_the_affected_builds_only(builds: list[QemuBuild],
                                                        tmp_path: Path) -> None:
    """KD-0008 (11.1 aborts on migrate with a uri in cpr-transfer mode; 10.0 rejects it)."""
    by_label = {b.label: b for b in builds}
    script = tmp_path / "repro-KD-0008.py"
    assert main(["report", "defect", "KD-0008", "--script", str(script)]) == 0
    done = play(script, by_label["11.1.3"])
    assert done.returncode == 1, done.stdout + done.stderr
    assert "killed by signal 6" in done.stdout and "cpr_state_save: assertion failed" in done.stdout
    done = play(script, by_label["10.0.13"])
    assert done.returncode == 0, done.stdout + done.stderr
    assert "missing 'cpr' migration channel" in done.stdout


def test_kd_0013_reproduces_across_versions(builds: list[QemuBuild], tmp_path: Path) -> None:
    """A virtio guest from Debian's 10.0.13 cannot migrate to 11.1.x; from 10.0.2 it can."""
    by_label = {b.label: b for b in builds}
    script = tmp_path / "repro-KD-0013.py"
    script.write_text(render_script(make_plan(VECTORS, "KD-0013")))
    done = play(script, by_label["10.0.13"], by_label["11.1.3"])
    assert done.returncode == 1, done.stdout + done.stderr
    assert "vring.num 1024 exceeds allocated max 8" in done.stdout
    done = play(script, by_label["10.0.2"], by_label["11.1.3"])
    assert done.returncode == 0, done.stdout + done.stderr
    assert "destination: migration completed" in done.stdout


def test_the_report_can_carry_what_the_builds_did(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["report", "defect", "KD-0008", "--run", "--only", "11.1.3",
                 "--only", "10.0.13"]) == 0
    out = capsys.readouterr().out
    assert "Run here on QEMU 11.1.3: exit 1, shows the defect:" in out
    assert "Run here on QEMU 10.0.13: exit 0, did what QEMU documents:" in out


def _by_n(recording: Recording) -> dict[int, JSONObject]:
    return {int(str(m["n"])): m for m in recording.messages}


def _embedded(script: str) -> Any:
    """The plan a rendered script plays (its ``PLAN = json.loads(...)``)."""
    call = next(n for n in ast.walk(ast.parse(script)) if isinstance(n, ast.Call)
                and ast.unparse(n.func) == "json.loads")
    return json.loads(ast.literal_eval(call.args[0]))


def test_a_consumer_defect_replays_the_consumers_recorded_exchange() -> None:
    """KD-0014's exchange is what libvirt 9.0.0 sent, message for message: every
    command up to the refused migrate from its recording of an affected pair (the
    one whose machine type every build runs), the rest from one where QEMU took it."""
    plan = make_plan(VECTORS, "KD-0014")
    assert plan.exchange is not None and plan.profile is not None
    assert (plan.source.label, plan.destination) == ("11.1.3", Version(7, 2, 22))
    assert plan.exchange.file == "vectors/consumers/wire/CP-0001/11.1.3-to-7.2.22.json"
    assert plan.exchange.recorded == "2026-12-06" and plan.exchange.fds == ("migrate",)
    found = recordings(VECTORS.root, "CP-0001")
    affected, then = found["11.1.3-to-7.2.22"], found["7.2.22-to-7.2.22"]
    assert plan.exchange.then.startswith("vectors/consumers/wire/CP-0001/7.2.22-to-7.2.22.json")
    steps = [e for e in _embedded(render_script(plan))["events"] if e.get("step")]
    main = next(i for i, e in enumerate(steps) if e.get("main"))
    assert steps[main]["step"] == "src-migrate"
    for recording, part in ((affected, steps[:main + 1]), (then, steps[main + 1:])):
        check, sent = hold(plan.profile, recording), _by_n(recording)
        numbers = [check.matched[str(e["step"])] for e in part]
        assert numbers == sorted(numbers)  # in the order libvirt sent them
        for event, n in zip(part, numbers, strict=True):
            msg = sent[n]
            if event["do"] == "command":  # the same members, in the same order
                assert json.dumps([event["execute"], fill(event["arguments"], recording.values)]) \
                    == json.dumps([msg["execute"], msg.get("arguments", {})]), event["step"]
            elif event["do"] == "getfd":
                assert msg["execute"] == "getfd" and msg["arguments"] == {"fdname": event["fdname"]}
            else:
                assert msg["event"] == "MIGRATION", event["step"]
    taken = _by_n(then)[hold(plan.profile, then).matched["src-migrate"]]
    refused = _by_n(affected)[hold(plan.profile, affected).matched["src-migrate"]]
    assert "error" not in taken and "return" in taken  # where it goes on, QEMU took it
    assert refused["error"] == {"class": "GenericError", "desc": "Parameter 'detach' is unexpected"}


def test_whose_bug_a_consumer_defect_is() -> None:
    """KD-0014 is libvirt's (QEMU removed detach after deprecating it), the Debian
    form goes to its package; QEMU's schema or code refusing other things is QEMU's."""
    plan = make_plan(VECTORS, "KD-0014")
    assert plan.owner.consumer and plan.owner.project == "libvirt 9.0.0-4+deb12u2"
    assert "detach (deprecated from 10.1.0)" in plan.owner.why
    assert "no longer has from 11.0.0" in plan.owner.why
    assert report(plan, "debian").startswith("Source: libvirt\nVersion: 9.0.0-4+deb12u2\n")
    assert report(plan).startswith("Subject: [FYI] migration: ")
    releases, defect = known_releases(), plan.defect
    args = {"detach": True, "resume": False, "uri": "fd:migrate"}
    at = Version(11, 1, 3)
    assert whose(defect, "libvirt", "migrate", args, at, releases).consumer
    crash = replace(defect, observed=replace(defect.observed, result="crash"))
    assert not whose(crash, "libvirt", "migrate", args, at, releases).consumer
    taken = {"resume": False, "uri": "fd:migrate"}  # the schema lets it through: QEMU's code
    assert not whose(defect, "libvirt", "migrate", taken, at, releases).consumer
    never = {"detach": True, "uri": "fd:migrate", "no-such": 1}  # no release ever took it
    assert not whose(defect, "libvirt", "migrate", never, at, releases).consumer
    undeprecated = [r for r in releases if r.label not in ("10.1.0", "10.2.2")]
    assert not whose(defect, "libvirt", "migrate", args, at, undeprecated).consumer


def test_a_consumer_defect_plays_only_what_was_recorded(tmp_path: Path) -> None:
    """No recording of an affected pair, a step the recording shows otherwise, or a
    refusal it does not show: no reproducer, and the message says why."""
    defect = next(d for d in VECTORS.defects if d.id == "KD-0014")
    profile = next(p for p in VECTORS.profiles if p.id == "CP-0001")
    bare = VectorSet(tmp_path, defects=[defect], profiles=[profile])
    with pytest.raises(ReproducerError, match=r"no recording of libvirt 9\.0\.0") as err:
        make_plan(bare, "KD-0014")
    assert "consumers observe CP-0001" in err.value.hint
    steps = tuple(replace(s, arguments={"uri": "fd:migrate"}) if s.id == "src-migrate" else s
                  for s in profile.steps)
    changed = replace(VECTORS, profiles=[replace(profile, steps=steps)])
    with pytest.raises(ReproducerError, match="does not show step src-migrate as CP-0001"):
        make_plan(changed, "KD-0014")
    other = replace(defect, observed=replace(defect.observed, desc="Parameter 'x' is unexpected"))
    with pytest.raises(ReproducerError, match="does not show the refusal it records"):
        make_plan(replace(VECTORS, defects=[other]), "KD-0014")


def _kd_0014_run(shared: Shared) -> str:
    """``report defect KD-0014 --run`` on four builds, once a session: its report
    carries what its script did on 11.1.3->7.2.22 and 10.0.13->7.2.22."""

    def make(path: Path) -> None:
        out = io.StringIO()
        with contextlib.redirect_stdout(out):
            rc = main(["report", "defect", "KD-0014", "--run", "--only", "11.1.2", "--only", "11.1.3",
                       "--only", "7.2.22", "--only", "10.0.13"])
        (path / "report.txt").write_text(f"{rc}\n{out.getvalue()}")

    return (shared.once("report-KD-0014-run", make) / "report.txt").read_text()


def _ran(report_text: str, label: str) -> tuple[int, str]:
    """The exit status and the output of the report's run on ``label``."""
    found = re.search(rf"^Run here on QEMU {re.escape(label)}: exit (\d+), [^\n]*\n((?:  [^\n]*\n)*)",
                      report_text, re.MULTILINE)
    assert found, report_text
    return int(found[1]), found[2]


def test_kd_0014_reproduces_with_libvirts_exchange(builds: list[QemuBuild], tmp_path: Path,
                                                   shared: Shared) -> None:
    """QEMU 11.1.3 refuses libvirt 9.0.0's migrate; 10.0.13 takes it and, with what
    libvirt sends next, migrates the guest (the fd passed with SCM_RIGHTS); the
    destination's steps on a QEMU they were not sent to fail the set-up: exit 2.
    (The first two, the report's ``--run`` plays: its script is this one but for
    its guest's random pattern.)"""
    by_label = {b.label: b for b in builds}
    script = tmp_path / "repro-KD-0014.py"
    assert main(["report", "defect", "KD-0014", "--script", str(script)]) == 0
    report_text = _kd_0014_run(shared)
    rc, out = _ran(report_text, "11.1.3->7.2.22")
    assert rc == 1, out
    assert "source <- {\"error\": {\"class\": \"GenericError\", \"desc\": \"Parameter 'detach' " \
           "is unexpected\"}}" in out
    rc, out = _ran(report_text, "10.0.13->7.2.22")
    assert rc == 0, out
    assert "source: migration pre-switchover" in out
    assert "destination: migration completed" in out
    for source in ("11.1.3", "7.2.22"):  # dst-set-caps names compress, which 11.1.3 refuses
        done = play(script, by_label[source], by_label["11.1.3"])
        # each side with its own module dir: 7.2.22 loads TCG from its own, 11.1.3 has it built in
        assert "could not load module" not in done.stdout, done.stdout
        assert done.returncode == 2, done.stdout + done.stderr
        assert "dst-set-caps (migrate-set-capabilities) was refused" in done.stdout


def test_the_consumer_report_carries_what_the_builds_did(shared: Shared) -> None:
    """--run plays the script on the pair it is made for first (not 11.1.2's, also affected)."""
    rc, out = _kd_0014_run(shared).split("\n", 1)
    assert rc == "0"
    assert "Run here on QEMU 11.1.3->7.2.22: exit 1, shows the defect:" in out
    assert ("Run here on QEMU 10.0.13->7.2.22: exit 0, took libvirt 9.0.0-4+deb12u2's migrate "
            "(src-migrate), migration completed:") in out


def test_the_gate_holds_everything_a_reproducer_makes_qemu_do() -> None:
    """A command built from a recorded reply, an fd's address or a command line the
    gate refuses: no plan (the consumer's and the vectors' plans all pass it)."""
    start = next(e for e in make_plan(VECTORS, "KD-0014").events if e["do"] == "start")
    for event, said in (
            ({"do": "command", "side": "destination", "step": "dst-reset-params",
              "execute": "migrate-set-parameters",
              "arguments": {"cpr-exec-command": ["/bin/sh", "-c", "touch /x"]}},
             "dst-reset-params/cpr-exec-command"),
            ({"do": "getfd", "side": "source", "step": "src-fd", "fdname": "migrate",
              "connect": "tcp:192.0.2.1:{port}"}, "src-fd: "),
            ({**start, "argv": [*json.loads(json.dumps(start["argv"])), "-drive", "file=/etc/passwd"]},
             "-drive")):
        with pytest.raises(ReproducerError, match="safety gate refuses") as err:
            in_case_dir("KD-0014", lambda _tmp, e=event: [e])
        assert said in str(err.value)
    assert in_case_dir("KD-0014", lambda _tmp: [start]) == ([start], {})
