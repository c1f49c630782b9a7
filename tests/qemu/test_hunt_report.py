"""The hunt's bug report on real builds: each build's line tells the whole
transcript (a rejected step before an accepted command says so), and a crash's
backtrace comes from gdb attached to the real QEMU, with what it takes to name
QEMU's own frames when the build is stripped."""

from __future__ import annotations

import shutil
import struct
from pathlib import Path
from typing import Any

import pytest

from qmpcompat.hunt.backtrace import NO_SYMBOLS, backtrace, symbols
from qmpcompat.hunt.cases import Finding
from qmpcompat.hunt.findings import Answer
from qmpcompat.hunt.report import bug_report, whole_answer
from qmpcompat.provision import QemuBuild
from qmpcompat.vectors.run import Observation
from qmpcompat.vectors.transcript import run_fresh


def step(command: str, arguments: dict[str, Any]) -> dict[str, Any]:
    return {"execute": command, "arguments": arguments}


CPR_URI = [step("migrate-set-parameters", {"mode": "cpr-transfer"}),
           step("migrate", {"uri": "unix:{tmpdir}/h.sock"})]
EMPTY_ARGV = [step("migrate", {"channels": [{"channel-type": "main", "addr": {
    "transport": "exec", "args": []}}]})]


def test_a_rejected_step_before_an_accepted_command_is_told(oldest: QemuBuild) -> None:
    """7.2 has no migration mode: the first step is rejected, migrate is accepted."""
    obs = run_fresh(CPR_URI, oldest, False)
    assert obs.result == "accept", obs.summary()
    line = whole_answer(CPR_URI, obs.to_json())
    assert line.startswith("`migrate-set-parameters` rejected (Parameter 'mode' is unexpected)")
    assert "; `migrate` accept, migration failed" in line, line
    # what a finding keeps (JSON) reads back as the same observation, replies and all
    assert obs.replies and Observation.from_json(obs.to_json()) == obs


def _finding(build: QemuBuild, steps: list[dict[str, Any]], observed: dict[str, Any],
             ) -> Finding:
    return Finding(steps=steps, qemu=build.label, qemu_version=build.version_str,
                   binary=build.binary, observed=observed, reproduced=observed, original=steps,
                   seed=0, worker=0, batch=-1, found_after_cases=7)


def test_the_report_tells_each_build_the_whole_transcript(builds: list[QemuBuild]) -> None:
    oldest, newest = builds[0], builds[-1]
    if newest.version < (11, 1):
        pytest.skip("KD-0008 is an 11.1 defect")
    answers = [Answer(b.label, b.version_str, run_fresh(CPR_URI, b, False).to_json())
               for b in (oldest, newest)]
    text = bug_report(_finding(newest, CPR_URI, answers[1].observed), answers, builds, None)
    old_row = next(r for r in text.splitlines() if r.startswith(f"| {oldest.version_str} "))
    assert "not affected: `migrate-set-parameters` rejected (Parameter 'mode' is unexpected); " \
           "`migrate` accept" in old_row, old_row
    new_row = next(r for r in text.splitlines() if r.startswith(f"| {newest.version_str} "))
    assert "**affected**: `migrate-set-parameters` accepted; `migrate` the QEMU under test" \
        in new_row, new_row
    assert "(worker 0, systematic pass, after 7 cases)" in text


def _elf(path: Path, sections: list[bytes]) -> Path:
    """A minimal ELF64 file with these section names (and the names' table)."""
    names = b"\0" + b"".join(n + b"\0" for n in [*sections, b".shstrtab"])
    shoff = 64 + len(names)
    count = len(sections) + 2
    header = b"\x7fELF" + bytes([2, 1, 1]) + bytes(9)
    header += struct.pack("<HHIQQQIHHHHHH", 2, 62, 1, 0, 0, shoff, 0, 64, 0, 0, 64, count,
                          count - 1)
    table = bytes(64)  # the null section
    at = 1
    for name in [*sections, b".shstrtab"]:
        offset, size = (64, len(names)) if name == b".shstrtab" else (0, 0)
        table += struct.pack("<IIQQQQIIQQ", at, 1, 0, 0, offset, size, 0, 0, 1, 0)
        at += len(name) + 1
    path.write_bytes(header + names + table)
    return path


def test_symbols_tells_a_stripped_build(newest: QemuBuild, tmp_path: Path) -> None:
    assert not symbols(newest.binary)  # Debian's builds are stripped
    assert symbols(_elf(tmp_path / "debug", [b".text", b".debug_info"]))
    assert symbols(_elf(tmp_path / "symtab", [b".text", b".symtab"]))
    assert not symbols(_elf(tmp_path / "stripped", [b".text", b".dynsym"]))
    assert not symbols(tmp_path / "missing")


@pytest.mark.skipif(shutil.which("gdb") is None, reason="gdb is not on this host "
                    "(tools/host-packages installs it as root)")
def test_a_crash_gets_a_backtrace_and_says_what_names_its_frames(newest: QemuBuild) -> None:
    """KD-0001 on a real build: gdb sees the SIGSEGV in the main thread's
    migrate command; the build is stripped, so the report says what is needed."""
    trace = backtrace(newest, EMPTY_ARGV, False)
    assert trace is not None
    assert "received signal SIGSEGV" in trace.text and "Thread 1" in trace.text, trace.text
    assert not trace.symbols
    observed = run_fresh(EMPTY_ARGV, newest, False).to_json()
    text = bug_report(_finding(newest, EMPTY_ARGV, observed),
                      [Answer(newest.label, newest.version_str, observed)], [newest], trace)
    assert f"## Backtrace (gdb, attached to the crashing QEMU {newest.label})" in text
    assert NO_SYMBOLS in text and "qemu-system-x86-dbgsym" in text
