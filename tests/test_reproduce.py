"""Standalone reproducers of the known defects (``qmpcompat report defect``): one
for every known defect, a script that needs nothing of qmpcompat, command lines
made by the harness's own code, and, run against the real builds, a crash and
KD-0013's cross-version failure reproduced on the affected builds and not on
the unaffected ones."""

from __future__ import annotations

import ast
import shlex
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from qmpcompat.cli import main
from qmpcompat.errors import ReproducerError
from qmpcompat.provision import QemuBuild
from qmpcompat.reproduce import plan as plan_module
from qmpcompat.reproduce.plan import make_plan
from qmpcompat.reproduce.report import report
from qmpcompat.reproduce.script import render_script
from qmpcompat.vectors import run as run_module
from qmpcompat.vectors.load import load

VECTORS = load()


def play(script: Path, source: QemuBuild, destination: QemuBuild | None = None
         ) -> subprocess.CompletedProcess[str]:
    """The script run as a user would, on provisioned builds (their loader and -L dirs
    as the QEMU command, their environment)."""
    env = source.environ()
    args = [sys.executable, str(script), "--qemu", shlex.join(source.command())]
    if destination is not None:
        env.update(destination.env)
        args += ["--dst-qemu", shlex.join(destination.command())]
    return subprocess.run(args, capture_output=True, text=True, env=env, timeout=180,
                          check=False, cwd=script.parent)


def test_every_known_defect_gets_a_standalone_reproducer() -> None:
    for defect in VECTORS.defects:
        if defect.vector.startswith("CP-"):
            continue  # a consumer profile's defect: its reproducer replays the profile (to come)
        plan = make_plan(VECTORS, defect.id)
        script = render_script(plan)
        tree = ast.parse(script)  # valid Python
        imported = {a.name.split(".")[0] for n in ast.walk(tree) if isinstance(n, ast.Import)
                    for a in n.names}
        imported |= {n.module.split(".")[0] for n in ast.walk(tree)
                     if isinstance(n, ast.ImportFrom) and n.module}
        assert imported <= set(sys.stdlib_module_names), (defect.id, imported)
        text = report(plan)
        for part in ("Subject: [BUG]", "Affected (builds run here):", "Not affected",
                     "Steps to reproduce", "Expected (what QEMU documents):", "Actual:",
                     "QEMU's last words", f"known defect {defect.id}", "qemu-system-x86_64 -M "):
            assert part in text, (defect.id, part)
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
