"""The safety gate's allow-list, without QEMU: what it lets through and what it
refuses, for commands, members, values, QEMU options, placeholders and quoting."""

from __future__ import annotations

import shlex
import subprocess
from pathlib import Path
from typing import Any

import pytest

from qmpcompat.errors import UnsafeInput
from qmpcompat.safety import (
    Policy,
    check_command,
    command_problems,
    fill,
    machine_problem,
    option_problems,
    qemu_opt,
    split_qemu_opts,
)

T = Policy.template()
CASE = Policy.for_case("/tmp/qmpv-abc")


def _channel(addr: dict[str, Any], **extra: Any) -> dict[str, Any]:
    return {"channels": [{"channel-type": "main", "addr": addr, **extra}]}


@pytest.mark.parametrize(("uri", "ok"), [
    ("tcp:127.0.0.1:{port}", True), ("tcp:[::1]:{port}", True), ("tcp:localhost:4444", True),
    ("tcp:127.0.0.1:4444,to=4450", True), ("tcp:10.0.0.1:4444", False),
    ("tcp:192.168.1.1:4444", False), ("rdma:8.8.8.8:1", False), ("tcp::4444", False),
    ("rdma::4444", False), ("tcp:0.0.0.0:4444", False), ("tcp", True), ("tcp:", True),
    ("tcp:127.0.0.1", True), ("unix", True), ("unix:", True),
    ("unix:{tmpdir}/s", True), ("unix:/run/x.sock", False), ("file:{tmpdir}/../x", False),
    ("file:{tmpdir}/x,offset=4096", True), ("file:/etc/passwd", False),
    ("file:{tmpdir}/x,/../../etc/passwd", False),
    ("exec:cat > {tmpdir}/stream", True), ("exec:cat {tmpdir}/stream", True),
    ("exec:rm -rf /", False), ("exec:cat > {tmpdir}/x; reboot", False),
    ("exec:cat > {tmpdir}/$(reboot)", False), ("vsock:2:1234", False), ("vsock:1:1234", True),
    ("fd:mig", True), ("gopher:127.0.0.1:70", True), ("http://example.org/x", False),
])
def test_uris(uri: str, ok: bool) -> None:
    assert (command_problems("migrate", {"uri": uri}, T) == []) == ok


def test_members_and_values() -> None:
    bad = _channel({"transport": "socket", "type": "inet", "host": "10.1.2.3", "port": "1"})
    assert "arguments/channels/0/addr/host: host '10.1.2.3' is not loopback" in \
        command_problems("migrate", bad, T)[0]
    sink = _channel({"transport": "exec", "args": ["/bin/sh", "-c", "cat > {tmpdir}/stream"]})
    assert command_problems("migrate", sink, T) == []
    curl = _channel({"transport": "exec", "args": ["/bin/sh", "-c", "curl example.org"]})
    assert command_problems("migrate", curl, T)
    assert command_problems("migrate", curl, Policy.template(allow_exec=True)) == []
    # exec argvs QEMU cannot run are inert
    for args in ([], ["/bin/sh", "-c", 1]):
        assert command_problems("migrate", _channel({"transport": "exec", "args": args}), T) == []
    assert command_problems("migrate", _channel({"transport": "exec", "args": ["/bin/true"]}), T)


def test_unknown_members_and_values_are_refused_until_allowed() -> None:
    future = _channel({"transport": "socket", "type": "unix", "path": "{tmpdir}/s",
                       "helper": "/usr/bin/x"})
    assert command_problems("migrate", future, T) == [
        "arguments/channels/0/addr/helper: member 'helper' is not on the safety allow-list"]
    assert command_problems("migrate", _channel({"transport": "http"}), T) == [
        "arguments/channels/0/addr/transport: value 'http' is not on the safety allow-list"]
    # a name no QEMU will have, anywhere, with anything under it
    assert command_problems("migrate", {"uri": "unix:{tmpdir}/s",
                                        "qmpcompat-unknown": {"path": "/etc"}}, T) == []
    # the probes vectors use take only their recorded values
    assert command_problems("migrate", {"speed": 1}, T) == []
    assert command_problems("migrate", {"speed": "/etc/passwd"}, T)
    assert command_problems("human-monitor-command", {"command-line": "info status"}, T) == [
        "arguments: command 'human-monitor-command' is not on the safety allow-list"]
    assert command_problems("query-status", None, T) == []


def test_wrong_types_are_checked_leniently() -> None:
    assert command_problems("migrate", {"channels": "unix:{tmpdir}/mig.sock"}, T) == []
    assert command_problems("migrate", {"channels": "exec:rm -rf /"}, T)
    assert command_problems("migrate", {"uri": ["/etc/passwd"]}, T)


def test_setup_commands() -> None:
    cpr_exec = {"mode": "cpr-exec", "cpr-exec-command": ["/bin/sh", "-c", "touch /tmp/x"]}
    assert command_problems("migrate-set-parameters", cpr_exec, T, "requires/parameters") == [
        "requires/parameters/cpr-exec-command: exec argv ['/bin/sh', '-c', 'touch /tmp/x'] is "
        "not a sink command (['/bin/sh', '-c', 'cat > {tmpdir}/NAME'] or 'cat {tmpdir}/NAME')"]
    assert command_problems("migrate-set-parameters", {"mode": "cpr-transfer",
                                                       "max-bandwidth": 1}, T) == []
    assert command_problems("migrate-set-parameters", {"x-new-param": 1}, T)
    caps = {"capabilities": [{"capability": "multifd", "state": True}]}
    assert command_problems("migrate-set-capabilities", caps, T) == []
    caps["capabilities"][0]["capability"] = "x-future"
    assert command_problems("migrate-set-capabilities", caps, T)
    assert command_problems("pmemsave", {"val": 0, "size": 1, "filename": "/etc/x"}, T)
    assert command_problems("dump-guest-memory", {"paging": False,
                                                  "protocol": "file:{tmpdir}/dump"}, T) == []


@pytest.mark.parametrize(("machine", "ok"), [
    ("none", True), ("pc", True), ("q35", True), ("pc-q35-7.2", True), ("pc-i440fx-10.0", True),
    ("pc,accel=tcg", True), ("pc,kernel=/etc/hostname", False), ("pc,firmware=/etc/shadow", False),
    ("pc,,kernel=/etc/x", False), ("none,memory-backend=m", False), ("virt", False),
])
def test_machines(machine: str, ok: bool) -> None:
    assert (machine_problem(machine) is None) == ok


def test_options() -> None:
    ok = ["-M", "none", "-nodefaults", "-display", "none", "-qmp", "unix:/tmp/qmpv-abc/q.qmp",
          "-m", "64M", "-incoming", "defer", "-S"]
    assert option_problems(ok, CASE) == []
    assert option_problems(["-qmp", "unix:/tmp/other/q.qmp"], CASE)
    assert option_problems(["-qmp", "unix:/tmp/qmpv-abc/q.qmp,server=on"], CASE)
    assert option_problems(["-bios", "/etc/hostname"], CASE) == [
        "-bios /etc/hostname: firmware '/etc/hostname' is not under /tmp/qmpv-abc/"]
    assert option_problems(["-kernel", "/tmp/qmpv-abc/guest.kernel"], CASE) == [
        "option '-kernel' is not on the safety allow-list"]
    assert option_problems(["-bios", "/tmp/qmpv-abc/guest.bios", "-device", "virtio-rng-pci",
                            "-chardev", "null,id=qmpc-serial0", "-device",
                            "loader,file=/tmp/qmpv-abc/p,addr=0x800000,force-raw=on"], CASE) == []
    for loader, why in [
            ("loader,file=/etc/shadow,addr=0,force-raw=on", "loader file '/etc/shadow' is not under"),
            ("loader,file=/tmp/qmpv-abc/p,,x,addr=0,force-raw=on", None),  # a comma in the name
            ("loader,file=/tmp/qmpv-abc/p,addr=0x10,cpu-num=0,force-raw=on", "a loader takes"),
            ("loader,file=/tmp/qmpv-abc/p,addr=0x10", "a loader takes"),
            ("loader,file=/tmp/qmpv-abc/p,addr=-1,force-raw=on", "a loader takes"),
            ("loader,file=/tmp/qmpv-abc/p,addr=1,force-raw=off", "a loader takes"),
            ("loader,data=1,data-len=4,addr=1,force-raw=on", "a loader takes"),
            ("driver=loader,file=/tmp/qmpv-abc/p,addr=1,force-raw=on", "is not allowed")]:
        got = option_problems(["-device", loader], CASE)
        assert (got == []) if why is None else (len(got) == 1 and why in got[0]), (loader, got)
    assert option_problems(["-device", "virtio-rng-pci,rng=r0"], CASE) == [
        "-device virtio-rng-pci,rng=r0: value 'virtio-rng-pci,rng=r0' is not allowed"]
    assert option_problems(["-chardev", "file,id=c,path=/etc/passwd"], CASE)
    assert option_problems(["-incoming", "tcp:0.0.0.0:1"], CASE)


def test_runtime_paths_and_errors() -> None:
    assert command_problems("migrate", {"uri": "unix:/tmp/qmpv-abc/s"}, CASE) == []
    assert command_problems("migrate", {"uri": "unix:/tmp/qmpv-abcd/s"}, CASE)
    assert command_problems("migrate", {"uri": "unix:/tmp/qmpv-abc/../s"}, CASE)
    with pytest.raises(UnsafeInput, match="refused by the safety gate"):
        check_command("migrate", {"uri": "tcp:10.0.0.1:1"}, CASE)


HOSTILE = ["/tmp/a b", "/tmp/a;touch x;", "/tmp/a,b", "/tmp/it's", '/tmp/q"uote', "/tmp/$(id)",
           "/tmp/{port}"]


@pytest.mark.parametrize("case_dir", HOSTILE)
def test_fill_quotes_the_case_dir_in_shell_text(case_dir: str, tmp_path: Path) -> None:
    values = {"tmpdir": case_dir, "port": "1234"}
    tree = {"uri": "exec:cat > {tmpdir}/stream", "channels": [{"addr": {
        "args": ["/bin/sh", "-c", "cat {tmpdir}/stream"], "path": "{tmpdir}/s"}}]}
    filled = fill(tree, values)
    assert filled["channels"][0]["addr"]["path"] == f"{case_dir}/s"  # no shell: as is
    policy = Policy.for_case(case_dir)
    assert command_problems("migrate", filled, policy) == []
    # the shell reads back the one path meant
    assert shlex.split(filled["uri"][5:]) == ["cat", ">", f"{case_dir}/stream"]
    out = subprocess.run(["/bin/sh", "-c", "printf '%s\\n' " + filled["uri"][len("exec:cat > "):]],
                         capture_output=True, text=True, check=True, cwd=tmp_path).stdout
    assert out == f"{case_dir}/stream\n" and not list(tmp_path.iterdir())


def test_qemu_option_quoting() -> None:
    for text in HOSTILE:
        assert split_qemu_opts(qemu_opt(text)) == [text]
    assert split_qemu_opts("pc,,kernel=x,accel=tcg") == ["pc,kernel=x", "accel=tcg"]
