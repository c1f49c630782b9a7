"""libvirt's own log of its QEMU monitors, read back as the QMP traffic it carried.

With ``log_filters = "1:qemu.qemu_monitor_json 1:qemu.qemu_monitor"`` a libvirt
daemon writes a line for every message on a QEMU monitor:
``QEMU_MONITOR_SEND_MSG: mon=0x... msg={...}`` for a command it sends,
``QEMU_MONITOR_RECV_REPLY: mon=0x... reply={...}`` for QEMU's answer and
``QEMU_MONITOR_RECV_EVENT: mon=0x... event={...}`` for an event, each with the
daemon's timestamp and thread. Before a command, the sending thread logs the
``qemuMonitor*`` function that sends it (``debug : qemuMonitorMigrateToFd:...``;
one that sends two commands, getfd then migrate, is taken innermost first):
kept as ``via``, it names the libvirt function a command comes from. With
``1:libvirt.domain`` too, the thread's public API call (``virDomainMigratePerform3Params``,
``virDomainGetJobInfo`` ...) is kept as ``api``: which phase, or which client call,
the command served.

``read_log`` gives the messages of one log in order; a command is paired with
its reply by its ``id``.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

from qmpcompat.types import JSONObject

_LINE = re.compile(r"^(?P<ts>\d{4}-\d\d-\d\d \d\d:\d\d:\d\d\.\d{3}[+-]\d{4}): (?P<thread>\d+): "
                   r"(?P<level>\w+) : (?P<func>\w+):\d+ : (?P<rest>.*)$")
_KINDS = {"QEMU_MONITOR_SEND_MSG": ("command", "msg="), "QEMU_MONITOR_RECV_REPLY": ("reply", "reply="),
          "QEMU_MONITOR_RECV_EVENT": ("event", "event=")}
# qemuMonitor* functions that only carry a message, not the ones that decide to send it
_PLUMBING = re.compile(r"^qemuMonitor(Send|IO\w*|JSON\w*|Emit\w*|Dispose|Close|Open\w*|"
                       r"Register\w*|Unregister\w*|Update\w*|Watch\w*)$")
# a public API entry point, logged by libvirt.domain on the thread that serves the call
_API = re.compile(r"^virDomain[A-Z]\w*$")
_DECODER = json.JSONDecoder()


@dataclass(frozen=True)
class LogMessage:
    """One message on one monitor: ``kind`` is command, reply or event; ``time``
    is seconds since the epoch (millisecond resolution, as libvirt logs it)."""

    time: float
    monitor: str
    kind: str
    body: JSONObject
    via: str = ""  # the qemuMonitor* function that sent a command
    api: str = ""  # the libvirt API call (virDomain*) the sending thread was serving


def _time(stamp: str) -> float:
    return datetime.strptime(stamp, "%Y-%m-%d %H:%M:%S.%f%z").timestamp()


def _message(rest: str) -> tuple[str, str, JSONObject] | None:
    """(kind, monitor, body) of a monitor-traffic line's text, or None."""
    tag, _, tail = rest.partition(": ")
    if tag not in _KINDS:
        return None
    kind, key = _KINDS[tag]
    mon = re.match(r"mon=(0x[0-9a-f]+|\(nil\)) ", tail)
    start = tail.find(key)
    if mon is None or start < 0:
        return None
    try:
        body, _end = _DECODER.raw_decode(tail[start + len(key):])
    except ValueError:
        return None
    return (kind, mon.group(1), body) if isinstance(body, dict) else None


def parse_lines(lines: list[str], since: float = 0.0) -> list[LogMessage]:
    """The monitor messages of a log's lines logged at or after ``since``."""
    out: list[LogMessage] = []
    senders: dict[str, list[str]] = {}  # thread -> the qemuMonitor* functions it entered
    apis: dict[str, str] = {}  # thread -> the libvirt API call it serves
    for line in lines:
        m = _LINE.match(line)
        if not m:
            continue
        func, rest = m.group("func"), m.group("rest")
        if _API.match(func):
            apis[m.group("thread")] = func
            continue
        if func.startswith("qemuMonitor") and not _PLUMBING.match(func):
            stack = senders.setdefault(m.group("thread"), [])
            if not stack or stack[-1] != func:
                stack.append(func)
            continue
        found = _message(rest)
        if found is None:
            continue
        when = _time(m.group("ts"))
        if when < since:
            continue
        kind, mon_id, body = found
        stack = senders.get(m.group("thread")) or [""]
        via = stack.pop() if kind == "command" else ""
        api = apis.get(m.group("thread"), "") if kind == "command" else ""
        out.append(LogMessage(when, mon_id, kind, body, via, api))
    return out


def read_log(path: Path, since: float = 0.0) -> list[LogMessage]:
    """The monitor messages of the log file at ``path`` (see ``parse_lines``)."""
    return parse_lines(path.read_text(errors="replace").splitlines(), since)
