"""The history lint: every claim held against the committed schema of every known
QEMU release (offline). A planted contradiction is named with its vector, the
release and the fact; a claim beyond the schema on a release nobody ran must say
what it is inferred from; the committed vector set has neither."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from qmpcompat.claims.history import check_history, history_problems, known_releases
from qmpcompat.cli import main
from qmpcompat.schema.sources.releases import release
from qmpcompat.vectors.load import default_root, load
from qmpcompat.vectors.yamlfile import dump_canonical, editable_yaml

RELEASES = known_releases()


def _copy(tmp_path: Path) -> Path:
    root = tmp_path / "vectors"
    shutil.copytree(default_root(), root, ignore=shutil.ignore_patterns("schema"))
    return root


def _plant(root: Path, vector: dict[str, object]) -> None:
    (root / "migrate" / "planted.yaml").write_text(dump_canonical({"command": "migrate",
                                                                    "vectors": [vector]}))


CHANNEL = {"channel-type": "main",
           "addr": {"transport": "socket", "type": "unix", "path": "{tmpdir}/mig.sock"}}


def test_history_reaches_back_to_before_channels() -> None:
    labels = [r.label for r in RELEASES]
    assert labels[0] <= "6.2.0" and {"8.2.0", "9.0.0", "10.0.0", "11.1.3"} <= set(labels)
    assert labels == sorted(labels, key=lambda v: tuple(map(int, v.split("."))))


def test_the_committed_vectors_contradict_no_release() -> None:
    assert history_problems(load().vectors, RELEASES) == []


def test_a_planted_contradiction_names_vector_release_and_fact(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """channels alone accepted from 8.2 on: 8.2.0's schema still makes uri mandatory."""
    root = _copy(tmp_path)
    _plant(root, {"id": "M-0999", "description": "channels alone, planted", "flags": ["channels"],
                  "arguments": {"channels": [CHANNEL]},
                  "expect": [{"versions": "<8.2", "result": "reject", "error-class": "GenericError",
                              "desc": "Parameter 'uri' is missing", "observed-on": ["7.2.22"]},
                             {"versions": ">=8.2", "result": "accept", "migration": "completed",
                              "observed-on": ["10.0.2"],
                              "inferred-from": "planted: the releases from 8.2 on"}]})
    assert main(["lint", "--vectors", str(root)]) == 1
    out = capsys.readouterr().out
    lines = [ln for ln in out.splitlines() if "M-0999" in ln]
    assert len(lines) == 1, out  # 9.0 on, uri is optional: only 8.2.0 contradicts
    assert lines[0].startswith("vectors/migrate/planted.yaml:")
    assert "M-0999: history: QEMU 8.2.0: claims accept, migration completed for >=8.2" in lines[0]
    assert "GenericError: Parameter 'uri' is missing (migrate/arg-type/uri is mandatory)" in lines[0]
    assert "libvirt" in lines[0]  # where 8.2.0's schema was recorded


def test_every_kind_of_contradiction(tmp_path: Path) -> None:
    root = _copy(tmp_path)
    data = editable_yaml(root / "migrate" / "members.yaml")
    m0070 = next(v for v in data["vectors"] if v["id"] == "M-0070")
    m0070["expect"][0]["versions"] = "<10.0"  # 'uri' is missing, claimed for 8.2.2 and 9.x as well
    del m0070["expect"][1]  # the >=8.2.2,<9.0 one
    m0070["expect"][1]["versions"] = ">=10.0"
    (root / "migrate" / "members.yaml").write_text(dump_canonical(data))
    vectors = load(root).vectors
    found = {(f.vector.id, f.release.label): f.message for f in check_history(vectors, RELEASES)}
    assert set(found) == {("M-0070", "8.2.2"), ("M-0070", "9.0.0"), ("M-0070", "9.1.0"),
                          ("M-0070", "9.2.0")}
    assert ("answers first: GenericError: Parameter 'channels[0].channel-type' is missing "
            "(migrate/arg-type/channels/channel-type is mandatory)") in found[("M-0070", "9.0.0")]


@pytest.mark.parametrize(("arguments", "claim", "release_label", "fact"), [
    ({"uri": "unix:{tmpdir}/s", "channels": [CHANNEL]},
     {"result": "reject", "error-class": "GenericError", "desc": "Parameter 'channels' is unexpected"},
     "8.2.0", "lets these arguments through"),
    ({"uri": "unix:{tmpdir}/s", "blk": True},
     {"result": "accept", "migration": "completed"}, "9.1.0", "migrate/arg-type has no member blk"),
    ({"channels": [{**CHANNEL, "channel-type": "cpr"}]},
     {"result": "reject", "error-class": "GenericError", "desc": "Parameter 'uri' is missing"},
     "9.0.0", "migrate/arg-type/channels/channel-type/^cpr is false"),
])
def test_contradictions_of_each_kind(tmp_path: Path, arguments: dict[str, object],
                                     claim: dict[str, object], release_label: str, fact: str) -> None:
    root = _copy(tmp_path)
    _plant(root, {"id": "M-0999", "description": "planted", "flags": ["uri"], "arguments": arguments,
                  "expect": [{**claim, "inferred-from": "planted for this test"}]})
    found = {f.release.label: f for f in check_history(load(root).vectors, RELEASES)
             if f.vector.id == "M-0999"}
    assert release_label in found and found[release_label].kind == "contradiction"
    assert fact in found[release_label].message


def test_a_claim_beyond_the_schema_must_say_it_is_inferred(tmp_path: Path) -> None:
    root = _copy(tmp_path)
    _plant(root, {"id": "M-0999", "description": "planted", "flags": ["uri"],
                  "arguments": {"uri": "unix:{tmpdir}/s"}, "peer": {},
                  "expect": [{"result": "accept", "migration": "completed",
                              "observed-on": ["7.2.22", "10.0.2", "10.0.13", "11.1.2", "11.1.3"]}]})
    found = [f for f in check_history(load(root).vectors, RELEASES) if f.vector.id == "M-0999"]
    unrun = {r.label for r in RELEASES} - {"7.2.22", "10.0.2", "10.0.13", "11.1.2", "11.1.3"}
    assert {f.release.label for f in found} == unrun and {f.kind for f in found} == {"unmarked"}
    assert "8.2.0 is not in its observed-on (7.2.22, 10.0.2, 10.0.13, 11.1.2, 11.1.3)" in \
        next(f.message for f in found if f.release.label == "8.2.0")


def test_a_release_without_what_the_vector_needs_is_not_held_to_it(tmp_path: Path) -> None:
    root = _copy(tmp_path)
    _plant(root, {"id": "M-0999", "description": "planted", "flags": ["channels"],
                  "requires": {"schema": ["migrate/arg-type/*uri"]},
                  "arguments": {"channels": [CHANNEL]}, "peer": {},
                  "expect": [{"result": "accept", "migration": "completed",
                              "observed-on": ["10.0.2"], "inferred-from": "planted for this test"}]})
    assert [f for f in check_history(load(root).vectors, RELEASES) if f.vector.id == "M-0999"] == []


def test_an_observation_on_a_release_the_vector_skips_is_refused(tmp_path: Path) -> None:
    """7.2.22's schema has no ``*uri`` branch: the suite skips the vector there, so
    an observation on it cannot have come from the suite."""
    root = _copy(tmp_path)
    _plant(root, {"id": "M-0999", "description": "planted", "flags": ["channels"],
                  "requires": {"schema": ["migrate/arg-type/*uri"]},
                  "arguments": {"channels": [CHANNEL]}, "peer": {},
                  "expect": [{"result": "accept", "migration": "completed",
                              "observed-on": ["7.2.22", "10.0.2"], "inferred-from": "planted"}]})
    found = [str(p) for p in history_problems(load(root).vectors, RELEASES) if p.vector_id == "M-0999"]
    assert found == ["vectors/migrate/planted.yaml:3: M-0999: history: QEMU 7.2.22: observed-on "
                     "names 7.2.22, but the vector is skipped there (its schema lacks what "
                     "requires.schema asks): the suite cannot observe this claim on it; drop the "
                     "version, or the expectation"], found


def test_snapshots_keep_qemus_member_order() -> None:
    """The input visitor checks an object's members in QEMU's order, so the
    committed snapshots keep it: uri before channels, channel-type before addr."""
    index = release("8.2").index
    migrate = index.lookup(index.lookup("migrate")["arg-type"])
    assert [m["name"] for m in migrate["members"]][:2] == ["uri", "channels"]
    assert [m["name"] for m in index.lookup("MigrationChannel")["members"]] == ["channel-type", "addr"]


def test_a_release_the_vector_applies_to_needs_an_expectation(tmp_path: Path) -> None:
    root = _copy(tmp_path)
    _plant(root, {"id": "M-0999", "description": "planted", "flags": ["uri"],
                  "arguments": {"uri": "unix:{tmpdir}/s"}, "peer": {},
                  "expect": [{"versions": ">=10.0", "result": "accept", "migration": "completed",
                              "observed-on": ["10.0.2"], "inferred-from": "planted for this test"}]})
    found = [f for f in check_history(load(root).vectors, RELEASES) if f.vector.id == "M-0999"]
    assert {f.kind for f in found} == {"uncovered"}
    assert {f.release.label for f in found} == {r.label for r in RELEASES if r.version < (10, 0, 0)}
