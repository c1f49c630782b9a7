"""The pieces every reproducer plan is made of, whatever the defect records: a
stand-in build for the harness's option code, the case dir the harness's guest
code writes its files into (embedded in the script), the guest's start as one
event, and the safety gate on everything the plan makes QEMU do (its command
lines, every command with its arguments as sent, every address it connects an
fd to), with the case dir and port as placeholders (``Policy.template``)."""

from __future__ import annotations

import shutil
from collections.abc import Callable
from pathlib import Path

from qmpcompat import guest
from qmpcompat.errors import ReproducerError
from qmpcompat.harness.process import private_dir
from qmpcompat.provision import QemuBuild
from qmpcompat.safety import Policy, command_problems, option_problems
from qmpcompat.types import JSONObject, Version

SETTLE_SECONDS = 1.0  # the script's wait for the guest to start, instead of the harness's check


def stand_in(version: Version) -> QemuBuild:
    """A build of ``version`` for the harness's option code (which reads only its version)."""
    return QemuBuild("qemu-system-x86_64", version, f"QEMU emulator version {version.label}")


def templated(argv: list[str], tmp: Path) -> list[str]:
    """A command line made in the case dir ``tmp``, the case dir written ``{tmpdir}``."""
    return [arg.replace(str(tmp), "{tmpdir}") for arg in argv]


def settle(name: str, paused: bool) -> JSONObject:
    """Let side ``name``'s guest start (then stop it, for a paused guest)."""
    return {"do": "settle", "side": name, "seconds": SETTLE_SECONDS, "stop": paused}


def in_case_dir(defect_id: str, make: Callable[[Path], list[JSONObject]]
                ) -> tuple[list[JSONObject], dict[str, bytes | tuple[int, int]]]:
    """The events ``make`` returns, given a new private case dir, and the files it
    left there: their bytes, or for a guest's pattern how to make it again
    (``guest.recipe``: a seed and a size); ReproducerError when the safety gate
    refuses one (``gate``)."""
    tmp = private_dir("qmpv-")
    try:
        events = make(tmp)
        files: dict[str, bytes | tuple[int, int]] = {
            p.name: guest.recipe(p) or p.read_bytes() for p in sorted(tmp.iterdir()) if p.is_file()}
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    if refused := [p for e in events for p in gate(e)]:
        raise ReproducerError(defect_id, "the safety gate refuses what it would make QEMU do: "
                              + "; ".join(refused))
    return events, files


def gate(event: JSONObject) -> list[str]:
    """Why the safety gate refuses an event (a start's command line, a command, the
    address an fd is connected to), or nothing."""
    policy = Policy.template()
    if event["do"] == "start":
        return option_problems(argv_of(event), policy)
    if event["do"] == "command":
        args = event.get("arguments")
        return command_problems(str(event["execute"]), args if isinstance(args, dict) else None,
                                policy, f"{event.get('step') or event['execute']}")
    if event["do"] == "getfd":
        why = policy.uri_problem(str(event["connect"]))
        return [f"{event.get('step') or 'getfd'}: {why}"] if why else []
    return []


def argv_of(event: JSONObject) -> list[str]:
    """A start event's command line."""
    value = event.get("argv")
    return [str(v) for v in value] if isinstance(value, list) else []
