"""A consumer profile's steps held against every known release's schema
(``qmpcompat.claims.profilesteps``): a step the schema refuses contradicts an
expectation or a known defect that says otherwise, unless a known defect of the
profile says it; a refusal in the visitor's words where the schema lets the
step through is contradicted; only what the schemas alone decide is judged."""

from __future__ import annotations

import dataclasses
import shutil
from pathlib import Path

import pytest

from qmpcompat.claims.history import known_releases
from qmpcompat.claims.profilesteps import _Judge, certainly, resolve, step_findings
from qmpcompat.cli import main
from qmpcompat.vectors.load import default_root, load
from qmpcompat.vectors.profiles import Step
from qmpcompat.vectors.versions import VersionRange
from qmpcompat.vectors.yamlfile import dump_canonical, editable_yaml

RELEASES = sorted(known_releases(), key=lambda r: r.version)
VECTORS = load()
CP1 = next(p for p in VECTORS.profiles if p.id == "CP-0001")
KD14 = next(d for d in VECTORS.defects if d.id == "KD-0014")
DETACH = ("GenericError: Parameter 'detach' is unexpected (migrate/arg-type has no member detach) "
          "(on 78 pairs of known releases: 11.0.0->4.2.0, 11.0.0->5.0.0, 11.0.0->5.1.0, "
          "11.0.0->5.2.0 and 74 more)")


def test_the_committed_profiles_contradict_no_release() -> None:
    for profile in VECTORS.profiles:
        assert step_findings(profile, VECTORS.defects, RELEASES) == [], profile.id


def test_a_refusal_no_defect_records_is_named(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """Without KD-0014, libvirt 9.0.0's migrate (detach) from 11.0 on contradicts
    its expectation of a migration (the lint names the profile's file and line)."""
    root = tmp_path / "vectors"
    shutil.copytree(default_root(), root, ignore=shutil.ignore_patterns("schema"))
    data = editable_yaml(root / "known-defects.yaml")
    data["defects"] = [d for d in data["defects"] if d["id"] != "KD-0014"]
    (root / "known-defects.yaml").write_text(dump_canonical(data))
    assert main(["lint", "--vectors", str(root)]) == 1
    lines = [ln for ln in capsys.readouterr().out.splitlines() if " CP-0001: " in ln]
    assert lines == [f"vectors/consumers/libvirt-9.0.0.yaml:{CP1.line}: CP-0001: history: QEMU "
                     "11.0.0->4.2.0: the expectation for sources *, destinations * claims migrated, "
                     "but the source's schema refuses step src-migrate (migrate): " + DETACH], lines


def test_a_defect_the_schema_contradicts_is_named() -> None:
    """KD-0014 widened to 10.1: their migrate still takes detach; and KD-0014 said
    to end in a migration failure, or refused at a later step, is contradicted."""
    wide = dataclasses.replace(KD14, versions=VersionRange.parse(">=10.1"))
    [(owner, pair, msg)] = step_findings(CP1, [wide], RELEASES)
    assert (owner, pair) == (wide, "10.1.0->4.2.0")
    assert msg == ("records reject at step src-migrate GenericError: Parameter 'detach' is "
                   "unexpected, but the source's schema lets step src-migrate's arguments through "
                   "(every member is known, every mandatory one present, every type and value "
                   "valid), so no input error can arise (on 52 pairs of known releases: "
                   "10.1.0->4.2.0, 10.1.0->5.0.0, 10.1.0->5.1.0, 10.1.0->5.2.0 and 48 more)")
    failed = dataclasses.replace(KD14, observed=dataclasses.replace(
        KD14.observed, result="accept", migration="failed", step=None, error_class=None, desc=None))
    found = step_findings(CP1, [failed], RELEASES)
    assert [m.split(", but ")[1] for _, _, m in found] == [
        "the source's schema refuses step src-migrate (migrate): " + DETACH] * 2  # it and the claim
    later = dataclasses.replace(KD14, observed=dataclasses.replace(KD14.observed, step="src-stats"))
    [(_, _, msg)] = [f for f in step_findings(CP1, [later], RELEASES) if f[0] is not None]
    assert "but step src-migrate (migrate) comes first and is refused: GenericError" in msg
    other = dataclasses.replace(KD14, observed=dataclasses.replace(
        KD14.observed, desc="Parameter 'resume' is unexpected"))
    [(_, _, msg)] = [f for f in step_findings(CP1, [other], RELEASES) if f[0] is not None]
    assert msg.endswith("but the source's schema answers " + DETACH), msg


def test_a_member_the_schema_decides_is_judged_as_sent() -> None:
    """libvirt 11.3.0 sends exit-on-error to a destination whose schema has it:
    its migrate-incoming is judged on every release, with or without it; were it
    sent whatever the schema, the releases before 9.1 would refuse it."""
    profile = next(p for p in VECTORS.profiles if p.id == "CP-0002")
    step = next(s for s in profile.steps if s.id == "dst-incoming")
    judge, old = _Judge(profile), RELEASES[0]
    answers = [judge.answer(step, r, r) for r in RELEASES]
    assert all(a is not None and a.accepted for a in answers)
    args = dict(step.arguments or {})
    member = args["exit-on-error"]
    assert isinstance(member, dict)
    always = dataclasses.replace(step, arguments={**args, "exit-on-error": member["value"]})
    bold = dataclasses.replace(profile, steps=tuple(always if s is step else s for s in profile.steps))
    [(owner, pair, msg)] = step_findings(bold, VECTORS.defects, RELEASES)
    assert owner is None and pair == f"{old.label}->{old.label}", (pair, msg)
    assert "but the destination's schema refuses step dst-incoming (migrate-incoming): " \
           "GenericError: Parameter 'exit-on-error' is unexpected" in msg, msg
    before = [r for r in RELEASES if r.version < (9, 1)]  # exit-on-error came in 9.1
    assert f"(on {len(RELEASES) * len(before)} pairs of known releases:" in msg, msg


def test_only_what_the_schemas_alone_decide_is_judged() -> None:
    """A condition on a saved reply or an earlier step is not the schemas' to
    decide; a template's expansion depends on QEMU's replies."""
    has = {("source", "migrate/arg-type/channels")}

    def schema(side: str, query: str) -> bool:
        return (side, query) in has

    yes = {"schema": "migrate/arg-type/channels", "side": "source"}
    no = {"schema": "migrate/arg-type/channels", "side": "destination"}
    reply = {"has-member": "tls-creds", "in": "params"}
    cases = [(yes, True), (no, False), (reply, None), ({"accepted": "x"}, None),
             ({"not": yes}, False), ({"not": reply}, None),
             ({"all": [yes, reply]}, None), ({"all": [no, reply]}, False), ({"all": [yes]}, True),
             ({"any": [no, reply]}, None), ({"any": [yes, reply]}, True), ({"any": [no]}, False)]
    assert [certainly(cond, schema) for cond, _ in cases] == [want for _, want in cases]
    plain = {"uri": "fd:migrate", "detach": True, "x": [{"y": 1}]}
    assert resolve(plain, schema) == plain
    assert resolve({"uri": "u", "a": {"$when": yes, "value": False}, "b": {"$when": no, "value": 1},
                    "c": [{"$when": no, "value": 2}, 3]}, schema) == {"uri": "u", "a": False, "c": [3]}
    assert resolve({"a": [{"$when": reply, "value": 1}]}, schema) is None
    assert resolve({"capabilities": {"$capabilities": {"in": "caps"}}}, schema) is None
    assert resolve({"p": {"$parameters": {"in": "params", "only": {}}}}, schema) is None
    step = next(s for s in CP1.steps if s.id == "src-migrate")
    guarded = dataclasses.replace(CP1, steps=tuple(
        dataclasses.replace(s, when={"status-is": ["active"], "in": "x"}) if s is step else s
        for s in CP1.steps))
    assert step_findings(guarded, [], RELEASES) == []  # no longer certainly sent
    ignored = dataclasses.replace(CP1, steps=tuple(
        dataclasses.replace(s, stop_on_error=False) if s is step else s for s in CP1.steps))
    assert step_findings(ignored, [], RELEASES) == []  # the consumer goes on
    assert isinstance(step, Step)
