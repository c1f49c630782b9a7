"""The real libvirt on the wire, without libvirt: its committed recordings hold
against the profiles with no difference, each kind of difference is named when
a recording or a profile is made to differ, lint holds the steps' observed
claims against the recordings, and libvirt's monitor log reads back into a
recording."""

from __future__ import annotations

import copy
import json
import os
from dataclasses import replace
from pathlib import Path

import pytest
from helpers.suite_runner import consumer_vectors

from qmpcompat.cli import main
from qmpcompat.errors import VectorError
from qmpcompat.libvirt.monitorlog import parse_lines
from qmpcompat.libvirt.observe import recorded_messages
from qmpcompat.types import JSONObject
from qmpcompat.vectors.lint import lint
from qmpcompat.vectors.load import default_root, load
from qmpcompat.vectors.profiles import Profile
from qmpcompat.vectors.wire import Recording, load_recording, recordings
from qmpcompat.vectors.wirecheck import hold


def _profile(pid: str) -> Profile:
    return next(p for p in load().profiles if p.id == pid)


def _recording(name: str = "7.2.22-to-7.2.22", pid: str = "CP-0001") -> Recording:
    return recordings(default_root(), pid)[name]


def test_the_committed_recordings_show_no_difference_from_their_profiles() -> None:
    seen = {}
    for profile in load().profiles:
        for name, rec in recordings(default_root(), profile.id).items():
            check = hold(profile, rec)
            assert not check.differences, (rec.file, [str(d) for d in check.differences])
            seen[(profile.id, name)] = check
    cp1 = {name for pid, name in seen if pid == "CP-0001"}
    assert {"7.2.22-to-7.2.22", "11.1.3-to-11.1.3"} <= cp1 and len(cp1) >= 3
    refused = seen[("CP-0001", "11.1.3-to-11.1.3")]  # KD-0014, as libvirt itself met it
    assert "src-closefd" in refused.matched and "src-cancel" in refused.skipped


def _edited(rec: Recording, edit: dict[str, object], n: int) -> Recording:
    doc = copy.deepcopy(rec.doc)
    messages = doc["messages"]
    assert isinstance(messages, list)
    for m in messages:
        if m["n"] == n:
            m.update(edit)
            for key in [k for k, v in edit.items() if v is None]:
                m.pop(key)
    return Recording(rec.name, rec.file, doc)


def _n(rec: Recording, step: str) -> int:
    return hold(_profile("CP-0001"), rec).matched[step]


@pytest.mark.parametrize(("step", "edit", "said"), [
    ("src-migrate", {"arguments": {"resume": False, "uri": "fd:migrate"}},
     "arguments src-migrate #{n}: detach: the profile sends True, libvirt did not send it"),
    ("dst-incoming", {"arguments": {"uri": "tcp:127.0.0.1:1"}},
     "arguments dst-incoming #{n}: uri: the profile sends 'tcp:127.0.0.1:{port}', libvirt sent "
     "'tcp:127.0.0.1:1'"),
    ("dst-set-params", {"execute": "query-status"}, "missing dst-set-params: libvirt did not send "
     "migrate-set-parameters on the destination here"),
    ("src-query-params", {"t": 0.0}, "order src-query-params #{n}: libvirt sent it at 0.000s, "
     "before step dst-incoming"),
    ("dst-cont", {"execute": "migrate_cancel"}, "unexpected #{n-1}: libvirt sent migrate_cancel on "
     "the destination"),
    ("dst-wait", {"data": {"status": "active"}}, "wait dst-wait: the destination's migration "
     "never reached completed, failed, cancelled"),
])
def test_every_kind_of_difference_is_named(step: str, edit: dict[str, object], said: str) -> None:
    rec = _recording()
    n = _n(rec, step) - ("{n-1}" in said)  # the message before the step's (query-block)
    found = [str(d) for d in hold(_profile("CP-0001"), _edited(rec, edit, n)).differences]
    said = said.replace("{n}", str(n)).replace("{n-1}", str(n))
    assert any(d.startswith(said.split("{port}")[0]) for d in found), found


def test_a_condition_the_real_libvirt_did_not_take_is_a_difference() -> None:
    """The profile's condition for the destination's TLS reset made false: the
    step is not taken, and what libvirt sent there is unexpected."""
    profile = _profile("CP-0001")
    steps = tuple(replace(s, when={"has-member": "no-such", "in": "destination-params"})
                  if s.id == "dst-set-params" else s for s in profile.steps)
    check = hold(replace(profile, steps=steps), _recording())
    assert "dst-set-params" in check.skipped
    assert [d.kind for d in check.differences] == ["unexpected"]


def test_a_client_progress_query_is_listed_apart() -> None:
    """virsh's own job-progress query (virDomainGetJobInfo) is not a difference;
    the same command sent by the migration would be."""
    rec = _recording()
    doc = copy.deepcopy(rec.doc)
    poll: JSONObject = {"side": "source", "t": 0.9, "execute": "query-migrate", "n": 9999,
                        "api": "virDomainGetJobInfo", "return": {"status": "active"}}
    doc["messages"] = [*doc["messages"], poll]  # type: ignore[list-item, misc]
    check = hold(_profile("CP-0001"), Recording(rec.name, rec.file, doc))
    assert check.client == [9999] and not check.differences
    poll["api"] = "virDomainMigratePerform3Params"
    assert [d.kind for d in hold(_profile("CP-0001"), Recording(rec.name, rec.file, doc)).differences] \
        == ["unexpected"]


def _copy_with_wire(tmp_path: Path, edit: tuple[str, str] | None = None) -> Path:
    return consumer_vectors(tmp_path, edit, "libvirt-9.0.0.yaml", "CP-0001")


@pytest.mark.parametrize(("edit", "said"), [
    (None, None),
    (("    observed: [7.2.22-to-7.2.22,", "    observed: [7.2.22-to-7.2.23,"),
     "observed in 7.2.22-to-7.2.23, but there is no recording"),
    (("      detach: true\n", "      detach: false\n"),
     "step src-migrate: observed in 7.2.22-to-7.2.22, but that recording shows arguments"),
    (("qemuConnectMonitor\n    observed: [7.2.22-to-7.2.22, ", "qemuConnectMonitor\n    observed: ["),
     "step src-query-caps is seen as the profile says it in 7.2.22-to-7.2.22: list them"),
])
def test_lint_holds_the_observed_claims(tmp_path: Path, edit: tuple[str, str] | None,
                                        said: str | None) -> None:
    vectors = _copy_with_wire(tmp_path, edit)
    found = [str(p) for p in lint(vectors) if "consumers/" in p.file]
    if said is None:
        assert not found
    else:
        assert any(said in p for p in found), found


@pytest.mark.parametrize(("edit", "said"), [
    (("    observed-on: [7.2.22->7.2.22, ", "    observed-on: [9.0.0->9.0.0, 7.2.22->7.2.22, "),
     "history: QEMU 9.0.0: observed-on names 9.0.0->9.0.0, but no build of 9.0.0 was run"),
    (("    inferred-from: 'pairs with a side no build here runs", "    why: 'pairs with a side no build"),
     "pairs neither observed nor said to be inferred"),
])
def test_lint_holds_a_profiles_claims_to_the_history(tmp_path: Path, edit: tuple[str, str],
                                                     said: str,
                                                     capsys: pytest.CaptureFixture[str]) -> None:
    vectors = _copy_with_wire(tmp_path)
    path = vectors / "consumers" / "libvirt-9.0.0.yaml"
    text = path.read_text()
    assert edit[0] in text
    path.write_text(text.replace(edit[0], edit[1], 1))
    assert main(["lint", "--vectors", str(vectors)]) == 1
    found = [line for line in capsys.readouterr().out.splitlines() if "CP-0001" in line]
    assert any(said in line for line in found), found


def test_a_recording_that_breaks_its_schema_is_named(tmp_path: Path) -> None:
    vectors = _copy_with_wire(tmp_path)
    path = vectors / "consumers/wire/CP-0001/7.2.22-to-7.2.22.json"
    doc = json.loads(path.read_text())
    del doc["messages"][0]["side"]
    path.write_text(json.dumps(doc))
    with pytest.raises(VectorError, match=r"7\.2\.22-to-7\.2\.22\.json.*schema: messages/0"):
        load_recording(vectors, path)


@pytest.mark.parametrize("kind", ["link", "fifo"])
def test_a_recording_that_is_not_a_regular_file_is_refused(tmp_path: Path, kind: str) -> None:
    """Read as every data file is: a link is not followed, a FIFO not waited on."""
    vectors = _copy_with_wire(tmp_path)
    path = vectors / "consumers/wire/CP-0001/7.2.22-to-7.2.22.json"
    path.unlink()
    if kind == "link":
        (tmp_path / "secret").write_text("{}")
        path.symlink_to(tmp_path / "secret")
    else:
        os.mkfifo(path)
    with pytest.raises(VectorError, match=r"symbolic link|FIFO"):
        recordings(vectors, "CP-0001")


def _line(ms: int, thread: int, func: str, text: str) -> str:
    """A line of libvirt's log (its format: time, thread, level, function:line, text)."""
    level = "info" if text.startswith("QEMU_MONITOR") else "debug"
    return f"2026-12-06 09:51:27.{ms:03d}+0000: {thread}: {level} : {func}:1 : {text}"


def _send(ms: int, thread: int, cmd: str, cid: int, args: str = "") -> list[str]:
    body = f'{{"execute":"{cmd}",{args + "," if args else ""}"id":"libvirt-{cid}"}}'
    return [_line(ms, thread, "qemuMonitorSend", f"QEMU_MONITOR_SEND_MSG: mon=0x7f7c msg={body}"),
            " fd=-1"]  # libvirt's message ends with its own newline


def _reply(ms: int, body: str) -> str:
    return _line(ms, 4077, "qemuMonitorJSONIOProcessLine",
                 f"QEMU_MONITOR_RECV_REPLY: mon=0x7f7c reply={body}")


LOG = [
    _line(100, 30354, "virDomainMigratePerform3Params", "dom=0x1, (VM: name=g)"),
    _line(194, 30354, "qemuMonitorOpenInternal", "QEMU_MONITOR_NEW: mon=0x7f7c fd=26"),
    _line(200, 30354, "qemuMonitorMigrateToFd", "fd=33 flags=0x0"),
    _line(201, 30354, "qemuMonitorSendFileHandle", "fdname=migrate fd=33"),
    *_send(202, 30354, "getfd", 7, '"arguments":{"fdname":"migrate"}'),
    _reply(203, '{"return": {}, "id": "libvirt-7"}'),
    *_send(204, 30354, "migrate", 8, '"arguments":{"detach":true,"resume":false,"uri":"fd:migrate"}'),
    _reply(205, '{"id": "libvirt-8", "error": {"class": "GenericError", '
                '"desc": "Parameter \'detach\' is unexpected"}}'),
    _line(206, 4077, "qemuMonitorJSONIOProcessLine", 'QEMU_MONITOR_RECV_EVENT: mon=0x7f7c event='
          '{"timestamp": {"seconds": 1, "microseconds": 2}, "event": "MIGRATION", "data": '
          '{"status": "failed"}}'),
    _line(207, 30399, "qemuMonitorArbitraryCommand", "mon:0x7f7c cmd=x"),
    *_send(208, 30399, "pmemsave", 9, '"arguments":{"val":1,"size":4,"filename":"/x"}'),
    *_send(300, 30354, "qom-get", 10, '"arguments":{"path":"/m","property":"a"}'),
    _reply(301, '{"return": 1, "id": "libvirt-10"}'),
    *_send(302, 30354, "qom-get", 11, '"arguments":{"path":"/m","property":"b"}'),
    _reply(303, '{"return": 2, "id": "libvirt-11"}'),
]


def test_libvirts_monitor_log_reads_back_into_a_recording() -> None:
    messages = parse_lines(LOG)
    assert [(m.kind, m.via) for m in messages if m.kind == "command"][:2] == [
        ("command", "qemuMonitorSendFileHandle"), ("command", "qemuMonitorMigrateToFd")]
    assert {m.api for m in messages if m.kind == "command" and m.via != "qemuMonitorArbitraryCommand"} \
        == {"virDomainMigratePerform3Params"}
    recorded, ours = recorded_messages({"source": messages, "destination": []})
    assert ours == 1  # the harness's pmemsave left out
    assert [(m.get("execute") or m.get("event"), m.get("n")) for m in recorded] == [
        ("getfd", 1), ("migrate", 2), ("MIGRATION", 3), ("qom-get", 4)]
    assert recorded[1]["error"] == {"class": "GenericError", "desc": "Parameter 'detach' is unexpected"}
    assert recorded[1]["arguments"] == {"detach": True, "resume": False, "uri": "fd:migrate"}
    assert recorded[3]["repeated"] == 2 and "return" not in recorded[3]  # not a migration command
    assert recorded[0]["return"] == {} and recorded[0]["t"] == 0.0 and recorded[2]["t"] == 0.004
    assert parse_lines(LOG, since=messages[3].time)[0].body.get("id") == "libvirt-8"
