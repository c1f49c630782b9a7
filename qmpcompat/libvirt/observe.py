"""Observe the real libvirt migrate the test guest between two QEMU builds, and
keep what it sent to each QEMU as a recording (``vectors/consumers/wire/``,
format ``vectors/consumer-wire.schema.json``).

One observation: two fresh session daemons (``qmpcompat.libvirt.session``);
each probes its QEMU first (``virsh domcapabilities``, outside the recording);
the source starts the domain (``virsh create``), the guest says it runs, then
``virsh migrate --live`` over loopback tcp, as a profile's ``description`` says
libvirt is driven. Afterwards the guest's pattern is read back on the
destination and compared (through ``virsh qemu-monitor-command``: pmemsave),
and the domain must be running there. The recording keeps, per side, every
command libvirt's monitor log shows from the domain's start on (their replies
where they are migration commands), the MIGRATION events, and where each
command came from in libvirt (``via``); the harness's own pass-through
commands (``qemuMonitorArbitraryCommand``) are left out.
"""

from __future__ import annotations

import contextlib
import json
import platform
import shutil
import time
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path

from qmpcompat.guest import GuestFiles, new_layout, write_files
from qmpcompat.guest.image import READY, STATUS_ADDR
from qmpcompat.harness.process import private_dir
from qmpcompat.libvirt.domain import destination_xml, domain_xml
from qmpcompat.libvirt.monitorlog import LogMessage, read_log
from qmpcompat.libvirt.session import DOMAIN, LibvirtError, Session
from qmpcompat.libvirt.tree import LibvirtTree
from qmpcompat.provision import QemuBuild
from qmpcompat.types import JSON, JSONObject
from qmpcompat.vectors.profiles import Profile
from qmpcompat.vectors.run import free_port
from qmpcompat.vectors.wire import FORMAT, wire_family

OURS = "qemuMonitorArbitraryCommand"  # virsh qemu-monitor-command: the harness's own reads
MIGRATE_TIMEOUT = 180.0


def _monitor_traffic(log: Path, since: float, side: str) -> list[LogMessage]:
    """The domain's monitor messages of one daemon's log since ``since``."""
    messages = read_log(log, since)
    monitors = list(dict.fromkeys(m.monitor for m in messages))
    if len(monitors) > 1:
        raise LibvirtError(f"the {side} log shows {len(monitors)} QEMU monitors after the probe "
                           "(expected the domain's alone)")
    return messages


def recorded_messages(sides: dict[str, list[LogMessage]]) -> tuple[list[JSONObject], int]:
    """Both sides' traffic merged in time order, as a recording keeps it, and how
    many of the harness's own commands were left out."""
    events: list[tuple[float, int, str, LogMessage]] = []
    for order, (side, messages) in enumerate(sides.items()):
        events += [(m.time, order, side, m) for m in messages]
    events.sort(key=lambda e: (e[0], e[1]))
    replies = {(side, m.monitor, m.body.get("id")): m.body for _t, _o, side, m in events
               if m.kind == "reply"}
    start = events[0][0] if events else 0.0
    out: list[JSONObject] = []
    ours = 0
    for when, _order, side, m in events:
        if m.kind == "event":
            if m.body.get("event") == "MIGRATION":
                out.append({"side": side, "t": round(when - start, 3), "event": "MIGRATION",
                            "data": m.body.get("data") or {}})
            continue
        if m.kind != "command":
            continue
        if m.via == OURS:
            ours += 1
            continue
        out.append(_command(side, round(when - start, 3), m,
                            replies.get((side, m.monitor, m.body.get("id")))))
    return _fold(out), ours


def _command(side: str, t: float, m: LogMessage, reply: JSON) -> JSONObject:
    name = str(m.body.get("execute"))
    entry: JSONObject = {"side": side, "t": t, "execute": name}
    if isinstance(m.body.get("arguments"), dict):
        entry["arguments"] = m.body["arguments"]
    if m.via:
        entry["via"] = m.via
    if m.api:
        entry["api"] = m.api
    if not isinstance(reply, dict):
        entry["no-reply"] = True
    elif "error" in reply:
        entry["error"] = reply["error"]
    elif wire_family(name):
        entry["return"] = reply.get("return")
    return entry


def _fold(entries: list[JSONObject]) -> list[JSONObject]:
    """Runs of one command outside the migration family on one side, each
    answered, fold into their first entry with ``repeated`` (libvirt's hundreds
    of ``qom-get`` reading the CPU's features)."""
    out: list[JSONObject] = []
    for e in entries:
        last = out[-1] if out else None
        if (last is not None and "execute" in e and last.get("execute") == e["execute"]
                and last["side"] == e["side"] and not wire_family(str(e["execute"]))
                and "error" not in e and "error" not in last):
            last["repeated"] = int(str(last.get("repeated", 1))) + 1
            continue
        out.append(dict(e))
    for n, e in enumerate(out, 1):
        e["n"] = n
    return out


def _guest_ready(session: Session, side: str, tries: int = 50) -> bool:
    """Whether the guest's status word says it runs (read with pmemsave)."""
    probe = session.workdir / side / "status.dump"  # the side's home: its QEMU's uid writes there
    for _ in range(tries):
        probe.unlink(missing_ok=True)
        _pmemsave(session, side, STATUS_ADDR, 4, probe)
        if probe.exists() and int.from_bytes(probe.read_bytes()[:4], "little") == READY:
            return True
        time.sleep(0.1)
    return False


def _pmemsave(session: Session, side: str, addr: int, size: int, path: Path) -> None:
    command = json.dumps({"execute": "pmemsave",
                          "arguments": {"val": addr, "size": size, "filename": str(path)}})
    session.virsh(side, "qemu-monitor-command", DOMAIN, command, timeout=30)


def _arrival(session: Session, files: GuestFiles) -> JSONObject:
    """What the destination holds after the migration: the domain's state, the
    guest's status word and whether the pattern arrived byte for byte."""
    state = session.virsh("destination", "domstate", DOMAIN, check=False).stdout.strip()
    out: JSONObject = {"state": state}
    dump = session.workdir / "destination" / "pattern.dump"
    _pmemsave(session, "destination", files.layout.pattern_addr, files.layout.pattern_bytes, dump)
    out["pattern"] = dump.exists() and dump.read_bytes() == files.layout.pattern
    out["guest-runs"] = _guest_ready(session, "destination", tries=5)
    return out


def observe(profile: Profile, tree: LibvirtTree, source: QemuBuild, destination: QemuBuild,
            progress: Callable[[str], None] | None = None) -> JSONObject:
    """Let the real libvirt of ``tree`` migrate ``profile``'s guest from a QEMU of
    ``source`` to one of ``destination``; the recording (a JSON object)."""
    say = progress or (lambda _t: None)
    workdir = private_dir("qmpc-")
    session = Session(tree, workdir)
    try:
        return _observe(session, profile, source, destination, say)
    finally:
        session.stop()
        shutil.rmtree(workdir, ignore_errors=True)


def _observe(session: Session, profile: Profile, source: QemuBuild, destination: QemuBuild,
             say: Callable[[str], None]) -> JSONObject:
    machine = profile.guest.machine_type(min(source.version, destination.version))
    emulators = {"source": session.emulator(source), "destination": session.emulator(destination)}
    files = write_files(session.workdir, new_layout(profile.guest))
    for path in (files.firmware, files.pattern):
        path.chmod(0o644)
    say(f"libvirt {session.tree.version}: two session daemons")
    session.start()
    for side, emulator in emulators.items():  # the capabilities probe, outside the recording
        session.virsh(side, "domcapabilities", "--emulatorbin", str(emulator), "--arch", "x86_64",
                      "--virttype", "qemu", "--machine", machine)
    xml = session.workdir / "source.xml"
    xml.write_text(domain_xml(DOMAIN, profile.guest, machine, emulators["source"], files))
    xml.chmod(0o644)
    since = time.time() - 0.002
    say(f"QEMU {source.label} -> {destination.label}: virsh create, then virsh migrate")
    session.virsh("source", "create", str(xml))
    if not _guest_ready(session, "source"):
        raise LibvirtError("the test guest did not say it runs on the source")
    dst_xml = session.workdir / "destination.xml"
    migratable = session.virsh("source", "dumpxml", "--migratable", DOMAIN).stdout
    dst_xml.write_text(destination_xml(migratable, emulators["destination"]))
    dst_xml.chmod(0o644)
    port = free_port()
    args = ["migrate", "--live", DOMAIN, session.daemons["destination"].uri, "--migrateuri",
            f"tcp://127.0.0.1:{port}", "--listen-address", "127.0.0.1", "--xml", str(dst_xml)]
    done = session.virsh("source", *args, timeout=MIGRATE_TIMEOUT, check=False)
    outcome: JSONObject = {"virsh-exit": done.returncode,
                           "virsh-error": done.stderr.strip().removeprefix("error: ")}
    if done.returncode == 0:
        outcome.update(_arrival(session, files))
    traffic = {side: _monitor_traffic(d.log, since, side) for side, d in session.daemons.items()}
    messages, ours = recorded_messages(traffic)
    recorded: list[JSON] = [*messages]
    shown = {str(session.workdir): "{tmpdir}", str(port): "{port}"}
    return {
        "format": FORMAT, "profile": profile.id, "consumer": profile.consumer,
        "consumer-version": session.tree.version, "consumer-suite": session.tree.suite,
        "recorded": datetime.now(UTC).strftime("%Y-%m-%d"),
        "host": _host(),
        "command": " ".join(_shown(a, shown) for a in ["virsh", "-c", "{source-uri}", *args]),
        "values": {"port": str(port)},
        "source": _side(source), "destination": _side(destination),
        "machine": machine,
        "domain": _shown(xml.read_text(), shown),
        "outcome": outcome,
        "left-out": ours,
        "messages": recorded,
    }


def _shown(text: str, values: dict[str, str]) -> str:
    for value, name in values.items():
        text = text.replace(value, name)
    return text.replace("qemu+unix:///session?socket={tmpdir}/destination/run/libvirt/"
                        "libvirt-sock", "{destination-uri}")


def _side(build: QemuBuild) -> JSONObject:
    return {"qemu": build.version_str, "package": build.package, "origin": build.origin}


def _host() -> str:
    release = ""
    with contextlib.suppress(OSError):
        release = Path("/etc/debian_version").read_text().strip()
    return (f"Debian {release or '?'}, Linux {platform.release()}, glibc "
            f"{platform.libc_ver()[1] or '?'}; libvirt's daemons in session mode as uid nobody")
