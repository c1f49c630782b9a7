"""Consumer profiles: the small language (conditions, templates), lint and the
gate, replay on real builds (a build with itself and across two builds), a
profile failing where a build lacks what the consumer sends, the reports'
consumer matrices and the CONSUMER_BROKEN behaviour change."""

from __future__ import annotations

import json
import xml.etree.ElementTree as ET
from dataclasses import replace
from pathlib import Path

import pytest
from helpers.suite_runner import consumer_vectors, run_suite

from qmpcompat.cli import main
from qmpcompat.harness import QemuOptions
from qmpcompat.provision import QemuBuild
from qmpcompat.report.changes import consumer_changes
from qmpcompat.report.changes_out import ci_findings
from qmpcompat.report.junit import render_junit
from qmpcompat.report.summary import render_summary
from qmpcompat.resultdoc import ConsumerJSON
from qmpcompat.schema.sources.live import SchemaCache
from qmpcompat.types import Outcome
from qmpcompat.vectors import profileguest
from qmpcompat.vectors.lint import lint
from qmpcompat.vectors.load import default_root, load
from qmpcompat.vectors.profilecheck import ProfileCase, check_profile
from qmpcompat.vectors.profileprog import expand, holds, widest
from qmpcompat.vectors.profilerun import run_profile
from qmpcompat.vectors.profiles import Profile
from qmpcompat.vectors.run import GuestSide

REPO = Path(__file__).resolve().parents[2]
CAPS = [{"capability": c, "state": False} for c in ("xbzrle", "events", "return-path",
                                                    "switchover-ack", "zero-blocks")]


def _profile(pid: str) -> Profile:
    return next(p for p in load().profiles if p.id == pid)


def _no(_side: str, _query: str) -> bool:
    return False


def test_conditions_and_templates_build_what_the_consumer_sends() -> None:
    saved = {"src": CAPS, "dst": CAPS[:3], "params": {"tls-creds": "", "max-bandwidth": 5,
                                                     "direct-io": "no", "x-other": 1}}
    both = {"all": [{"has-capability": "switchover-ack", "in": "src"},
                    {"has-capability": "switchover-ack", "in": "dst"}]}
    template = {"capabilities": {"$capabilities": {
        "in": "src", "only": ["return-path", "xbzrle", "switchover-ack", "mapped-ram"],
        "enable": ["return-path", {"name": "switchover-ack", "when": both}]}}}
    assert expand(template, saved, _no) == {"capabilities": [
        {"capability": "return-path", "state": True}, {"capability": "xbzrle", "state": False},
        {"capability": "switchover-ack", "state": False}]}  # the destination lacks it
    saved["dst"] = CAPS
    assert expand(template, saved, _no)["capabilities"][2]["state"] is True
    echo = {"$parameters": {"in": "params", "only": {"tls-creds": "string", "max-bandwidth": "integer",
                                                    "direct-io": "boolean"}}}
    assert expand(echo, saved, _no) == {"tls-creds": "", "max-bandwidth": 5}  # types kept as libvirt does
    gated = {"uri": "x", "exit-on-error": {"$when": {"schema": "q", "side": "destination"}, "value": False}}
    assert expand(gated, saved, _no) == {"uri": "x"}
    assert expand(gated, saved, lambda side, q: side == "destination")["exit-on-error"] is False
    assert holds({"not": {"status-is": ["running"], "in": "nothing-saved"}}, saved, _no)
    assert widest(echo) == {"tls-creds": None, "max-bandwidth": None, "direct-io": None}


def test_the_committed_profiles_pass_lint() -> None:
    problems = [p for p in lint(default_root()) if "consumers/" in p.file]
    assert not problems, [str(p) for p in problems]
    assert {p.id for p in load().profiles} >= {"CP-0001", "CP-0002", "CP-0003", "CP-0004"}


@pytest.mark.parametrize(("edit", "said"), [
    (("in: destination-params\n", "in: no-such-reply\n"),
     "reads 'no-such-reply', which no earlier step saves"),
    (("connect: tcp:127.0.0.1:{port}", "connect: tcp:192.0.2.1:{port}"),
     "unsafe: steps/src-fd/pass-fd: tcp host"),
    (("execute: migrate-continue", "execute: human-monitor-command"), "not on the safety allow-list"),
    (("incoming: defer", "incoming: unix:/run/qemu.sock"), "unsafe: start/destination: -incoming"),
    (("  - outcome: migrated", "  - outcome: refused"), "schema:"),
])
def test_lint_names_a_broken_profile(tmp_path: Path, edit: tuple[str, str], said: str) -> None:
    vectors = consumer_vectors(tmp_path, edit)
    found = [str(p) for p in lint(vectors) if "consumers/" in p.file]
    assert any(said in p and ("CP-0002" in p or "libvirt-11.3.0.yaml" in p) for p in found), found
    assert all(":" in p.split(" ")[0] for p in found)  # file:line first


def test_an_unsafe_profile_starts_nothing(newest: QemuBuild) -> None:
    profile = _profile("CP-0002")
    step = next(s for s in profile.steps if s.fd_name)
    bad = replace(profile, steps=tuple(replace(s, fd_connect="tcp:192.0.2.1:{port}") if s is step else s
                                       for s in profile.steps))
    obs = run_profile(bad, newest, newest, SchemaCache())
    assert obs.result == "error" and "safety gate" in obs.detail and not obs.replies


@pytest.mark.parametrize("pid", ["CP-0002", "CP-0004"])  # libvirt waits by events, Proxmox polls
def test_a_migration_the_destination_cannot_load_fails(newest: QemuBuild, pid: str,
                                                       monkeypatch: pytest.MonkeyPatch) -> None:
    """A destination with other RAM than the source refuses the stream: the cell is a
    failed migration at once, not a hang (libvirt's cancel path waits for a final
    status its main path's wait already consumed)."""
    own = profileguest.side_options

    def other_ram(side: GuestSide, source: bool, incoming: str, timeout: float) -> QemuOptions:
        opts = own(side, source, incoming, timeout)
        return opts if source else replace(opts, memory="96M")

    monkeypatch.setattr(profileguest, "side_options", other_ram)
    obs = run_profile(_profile(pid), newest, newest, SchemaCache())
    assert (obs.result, obs.migration) == ("accept", "failed"), obs.summary()
    assert "load of migration failed" in (obs.migration_error or ""), obs.summary()
    assert obs.seconds < 10, obs.summary()


def test_try_plays_a_profile_to_a_build_only_does_not_name(oldest: QemuBuild, newest: QemuBuild,
                                                             capsys: pytest.CaptureFixture[str]) -> None:
    """``try CP --only A --to B`` plays A -> B: --to may name a build --only leaves out,
    as for consumers observe; a vector in the same call runs on A only."""
    assert main(["try", "CP-0002", "M-0001", "--only", oldest.label, "--to", newest.label]) == 0
    out = capsys.readouterr().out
    assert f"CP-0002 {oldest.label}->{newest.label} accept" in out, out
    assert [line.split()[1] for line in out.splitlines() if line.startswith("M-0001")] == [oldest.label]
    assert main(["try", "CP-0002", "--only", oldest.label, "--to", "9.9.9"]) == 2


def test_a_profile_migrates_a_real_guest_on_one_build(newest: QemuBuild) -> None:
    result = check_profile(ProfileCase(_profile("CP-0002"), newest, newest), [], SchemaCache())
    assert result.verdict.outcome == Outcome.PASSED, result.verdict.message
    obs = result.observation
    assert obs is not None and obs.guest is not None
    assert obs.guest["source_sha256"] == obs.guest["destination_sha256"]
    sent = {r["step"]: r for r in obs.replies or []}
    assert sent["src-migrate"]["arguments"] == {"resume": False, "uri": "fd:migrate"}
    assert sent["src-wait-switchover"]["return"]["status"] == "pre-switchover"
    assert sent["dst-incoming"]["arguments"]["exit-on-error"] is False  # 11.1 has it
    assert result.record["basis"] is not None and result.record["basis"]["kind"] == "observed"


def test_a_profile_migrates_across_two_builds(oldest: QemuBuild, newest: QemuBuild) -> None:
    for src, dst in ((oldest, newest), (newest, oldest)):
        result = check_profile(ProfileCase(_profile("CP-0004"), src, dst), [], SchemaCache())
        assert result.verdict.outcome == Outcome.PASSED, result.verdict.message
        assert result.record["machine"].endswith(f"{oldest.version[0]}.{oldest.version[1]}")


def test_a_profile_fails_where_the_build_lacks_what_the_consumer_sends(newest: QemuBuild) -> None:
    """libvirt 9.0.0 sends detach, which QEMU 11 no longer has: without the known
    defect that records it, the cell fails and says where and why."""
    result = check_profile(ProfileCase(_profile("CP-0001"), newest, newest), [], SchemaCache())
    assert result.verdict.outcome == Outcome.FAILED
    assert "src-migrate" in result.verdict.message and "expected accept" in result.verdict.message
    assert result.observation is not None and result.observation.desc == "Parameter 'detach' is unexpected"
    assert result.record["location"].startswith("vectors/consumers/libvirt-9.0.0.yaml:")
    cancel = [r for r in result.observation.replies or [] if r.get("cancel") and not r.get("skipped")]
    assert [r["step"] for r in cancel][:1] == ["src-closefd"]  # the consumer's own clean-up ran
    known = check_profile(ProfileCase(_profile("CP-0001"), newest, newest),
                          load().defects_for("CP-0001"), SchemaCache())
    assert known.verdict.outcome == Outcome.XFAILED and known.verdict.defect == "KD-0014"


def _record(pid: str, src: str, dst: str, obs: dict[str, object], outcome: str = "passed",
            location: str = "vectors/consumers/x.yaml:40") -> ConsumerJSON:
    return {"profile": pid, "consumer": "libvirt", "consumer_version": "9.0.0", "machine": "pc",
            "source": src, "source_version": src, "destination": dst, "destination_version": dst,
            "outcome": outcome, "observed": obs, "location": location}  # type: ignore[typeddict-item]


MIGRATED = {"result": "accept", "migration": "completed", "peer_migration": "completed"}
REFUSED = {"result": "reject", "step": "src-migrate", "error_class": "GenericError",
           "desc": "Parameter 'detach' is unexpected"}


def test_report_changes_names_the_consumer_a_change_breaks() -> None:
    records = [_record("CP-0001", "10.0.13", "10.0.13", MIGRATED),
               _record("CP-0001", "11.1.3", "11.1.3", REFUSED, "failed"),
               _record("CP-0001", "10.0.13", "11.1.3", MIGRATED)]
    changes = consumer_changes("10.0.13", records, "11.1.3", records)
    assert [(c.rule, c.level, c.case) for c in changes] == [("CONSUMER_BROKEN", "breaking", "CP-0001")]
    finding = ci_findings([type("S", (), {"changes": changes})()])[0]  # type: ignore[list-item]
    assert (finding.path, finding.line) == ("vectors/consumers/x.yaml", 40)
    assert "refused at src-migrate" in finding.message


def test_every_report_shows_the_consumer_matrix(tmp_path: Path) -> None:
    """A real suite run of one profile on the oldest and newest build: results.json,
    summary.md, index.html and JUnit all carry the consumer matrix."""
    vectors = consumer_vectors(tmp_path)
    rc, text, doc = run_suite(tmp_path, vectors=vectors, suites="bookworm,sid",
                              paths=("suites/test_consumers.py",))
    assert rc == 0, text
    cells = {(c["source"], c["destination"]): c["mark"] for c in doc["consumer_matrix"]["cells"]}
    assert len(doc["consumers"]) == 4 and set(cells.values()) == {"migrated"}
    summary = (tmp_path / "reports" / "summary.md").read_text()
    assert "### Consumers x builds" in summary
    assert "| CP-0002 libvirt 11.3.0-3+deb13u3 | migrated |" in summary
    assert "consumers()" in (tmp_path / "reports" / "index.html").read_text()
    junit = ET.fromstring(render_junit(doc))  # type: ignore[arg-type]
    suite = next(s for s in junit if s.get("name") == "consumers")
    assert len(suite) == 4 and suite[0].get("name", "").startswith("test_consumer[CP-0002-")
    ran = [p.get("value") for c in suite for p in c.iter("property") if p.get("name") == "qemu_run"]
    assert ran == ["fresh"] * 4  # the rendered JUnit says how the cells ran, as the live one does
    run = ET.parse(tmp_path / "reports" / "junit.xml").iter("testcase")
    props = [{p.get("name"): p.get("value") for p in c.iter("property")}
             for c in run if "test_consumer[" in (c.get("name") or "")]
    assert len(props) == 4 and all(p["qemu_run"] == "fresh" and p["profile"] == "CP-0002" for p in props)
    assert json.dumps(doc).count('"step": "src-migrate"') >= 4  # every step's answer is kept
    assert "consumer profile" not in render_summary({**doc, "consumers": []})  # type: ignore[typeddict-item]
