"""The recorded release history: libvirt's replies, the committed slices, the loader API."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from qmpcompat.cli import main
from qmpcompat.errors import SchemaError, SourceUnavailable
from qmpcompat.provision.source_tree import refresh_sources, source_apt
from qmpcompat.schema.sources.libvirt import catalogue, parse_replies, reduce_replies
from qmpcompat.schema.sources.patch import check_next, derive, kind_of
from qmpcompat.schema.sources.releases import (
    build_baselines,
    known_schemas,
    patch_releases,
    recorded_releases,
    release,
    source_releases,
)
from qmpcompat.schema.sources.resolve import load_input
from qmpcompat.schema.sources.snapshot import RELEASE_DIR, baseline_path, check_canonical, dumps, snapshot

REPLIES = """{
  "execute": "qmp_capabilities",
  "id": "libvirt-1"
}

{
  "return": {},
  "id": "libvirt-1"
}

{
  "execute": "query-version",
  "id": "libvirt-2"
}

{
  "return": {"qemu": {"micro": 50, "minor": 2, "major": 7}, "package": "v7.2.0-333-g222059a0fc"},
  "id": "libvirt-2"
}

{
  "execute": "query-qmp-schema",
  "id": "libvirt-3"
}

{
  "return": [{"name": "migrate", "meta-type": "command", "arg-type": "0", "ret-type": "1"}],
  "id": "libvirt-3"
}
"""


def test_replies_pair_each_reply_with_the_command_before_it() -> None:
    pairs = parse_replies(REPLIES)
    assert [c for c, _ in pairs] == ["qmp_capabilities", "query-version", "query-qmp-schema"]
    reduced = reduce_replies(REPLIES, "caps_8.0.0.x86_64.replies")
    # the release is what QEMU said, not the file name: this one is a development snapshot
    assert reduced["qemu"] == "7.2.50" and reduced["schema"][0]["name"] == "migrate"


def test_broken_replies_name_the_file_and_line() -> None:
    with pytest.raises(SchemaError, match=r"caps_x.replies:7: not a libvirt replies file"):
        parse_replies(REPLIES[:60] + "{oops", "caps_x.replies")
    with pytest.raises(SchemaError, match="no query-version or query-qmp-schema reply"):
        reduce_replies(REPLIES.split('{\n  "execute": "query-version"')[0], "caps_y.replies")


def test_committed_releases_cover_every_recorded_release() -> None:
    versions = [k.version for k in recorded_releases()]
    assert versions[0] == "4.2.0" and "6.2.0" in versions and versions[-1] == "10.0.0"
    assert versions == sorted(versions, key=lambda v: tuple(int(x) for x in v.split(".")))
    assert len(versions) == 17
    for known in recorded_releases():
        assert known.source["kind"] == "recorded" and known.source["file"].endswith(".replies")
        assert known.source["libvirt"][:2] in ("9.", "11")
        assert check_canonical(known.path) == []


def test_known_schemas_merge_builds_and_recordings_in_version_order() -> None:
    known = known_schemas()
    keys = [k.key for k in known]
    assert keys == sorted(keys) and len(set(keys)) == len(keys)
    assert {"recorded", "source", "binary"} <= {k.origin for k in known}
    # 8.2.2's derived (patch) schema gives way to the baseline of the build run since
    assert release("8.2.2").origin == "binary"
    assert {k.version for k in build_baselines()} <= {k.version for k in known}
    assert release("7.2").version == "7.2.22" and release("7.2.0").origin == "recorded"
    with pytest.raises(SchemaError, match=r"no committed schema of QEMU '10.3' \(known: 4.2.0"):
        release("10.3")
    assert release("10.2").origin == "source"


def test_a_release_read_from_qapi_source_says_so() -> None:
    """10.2.2: no binary, no libvirt recording; the slice is read from the Debian
    source package and says how each if: condition of the slice was evaluated."""
    [src] = source_releases()
    assert src.version == "10.2.2" and src.source["input"] == "debian:10.2.2"
    assert "not a binary's introspection" in src.source["note"] and "QAPI source" in src.describe()
    assert "MultiFDCompression value qatzip: CONFIG_QATZIP (false)" in src.source["if"]
    assert "MultiFDCompression value zstd: CONFIG_ZSTD (true)" in src.source["if"]
    assert check_canonical(src.path) == []
    assert src.holds("migrate/arg-type/detach/$deprecated")


def _json(version: str) -> dict[str, Any]:
    return {k.version: json.loads(k.path.read_text()) for k in known_schemas()}[version]


def test_a_release_derived_from_a_backport_says_so() -> None:
    """8.2.2: the recorded 8.2.0 slice plus the stable back-port of upstream
    57fd4b4e10 (migrate's uri optional), derived, not observed; the committed
    file is exactly that derivation."""
    der = next(k for k in patch_releases() if k.version == "8.2.2")
    [change] = der.source["changes"]
    assert der.source["base"] == "8.2.0" and change["commit"].startswith("57fd4b4e10")
    assert change["made-optional"] == "migrate/arg-type/uri"
    assert "Stable-8.2.2 04/60" in change["mail"]
    assert "not observed" in der.source["note"] and "not observed" in der.describe()
    assert der.holds("migrate/arg-type/*uri") and not release("8.2.0").holds("migrate/arg-type/*uri")
    assert release("8.2").version == "8.2.2" and release("8.2.0").origin == "recorded"
    base = json.loads(baseline_path("8.2.0", RELEASE_DIR).read_text())
    assert dumps(derive(base, "8.2.2", der.source)) == der.path.read_text()
    assert check_canonical(der.path) == []
    with pytest.raises(SchemaError, match="already"):
        derive(json.loads(der.path.read_text()), "8.2.3", der.source)
    with pytest.raises(SchemaError, match="has no 'migrate/arg-type/nosuch'"):
        derive(base, "8.2.3", {"kind": "patch", "changes": [
            {"made-optional": "migrate/arg-type/nosuch", "commit": "57fd4b4e10"}]})


@pytest.mark.parametrize(("version", "base", "later"), [
    ("10.1.0", "10.0.0", ["10.2.2"]), ("11.0.0", "10.2.2", ["11.1.2", "11.1.3"])])
def test_10_1_and_11_0_are_derived_from_their_qapi_changes(version: str, base: str,
                                                           later: list[str]) -> None:
    """No schema of 10.1 or 11.0 can be had here: each is its neighbour's slice plus
    the QAPI changes of its release, each naming its commit (or patch mail); with
    the next release's changes it is exactly that release's committed slice."""
    der = release(version)
    assert der.origin == "patch" and der.source["base"] == base and der.version == version
    assert dumps(derive(_json(base), version, der.source)) == der.path.read_text()
    assert all(kind_of(c) for c in der.source["changes"])  # each names a commit or patch
    assert all("since" not in c for c in der.source["changes"])
    assert der.source["next"]["releases"] == later
    known = {k.version: _json(k.version) for k in known_schemas()}
    assert check_next(known[version], known) == []
    assert "derived from" in der.describe() and "not observed" in der.describe()


def test_a_derivation_that_misses_a_change_fails_its_check() -> None:
    """10.1.0 without the keep-alive members of 1bd4237cb1 (a change the list of
    10.1's migration changes lacked, found by this check against 10.2.2)."""
    der = release("10.1.0")
    source = {**der.source, "changes": [c for c in der.source["changes"]
                                        if "keep-alive" not in c.get("add", "")]}
    known = {k.version: _json(k.version) for k in known_schemas()}
    [problem] = check_next(derive(_json("10.0.0"), "10.1.0", source), known)
    assert "is not 10.2.2's committed schema" in problem and "MigrationChannel/addr/+rdma" in problem
    with pytest.raises(SchemaError, match="names neither its commit"):
        kind_of({"remove": "migrate/arg-type/detach"})
    assert main(["snapshot", "--check"]) == 0


def test_the_derived_8_2_2_is_what_an_8_2_2_build_answers() -> None:
    """The derivation held: the baseline of the Ubuntu 24.04 LTS 8.2.2 build (its
    own query-qmp-schema) is the derived slice, all but where it came from."""
    [der] = [k for k in patch_releases() if k.version == "8.2.2"]
    derived = json.loads(der.path.read_text())
    observed = json.loads(baseline_path("8.2.2").read_text())
    assert observed["source"]["kind"] == "binary" and "0ubuntu" in observed["source"]["package"]
    assert {k: v for k, v in derived.items() if k != "source"} == \
        {k: v for k, v in observed.items() if k != "source"}


@pytest.mark.parametrize(("query", "first_true"), [
    ("migrate/arg-type/channels", "8.2.0"),
    ("migrate/arg-type/*uri", "9.0.0"),
    ("migrate-incoming/arg-type/*uri", "8.2.0"),
    ("migrate-set-parameters/arg-type/mode", "8.2.0"),
])
def test_facts_of_each_release(query: str, first_true: str) -> None:
    """Whether a query holds switches once, at the release that introduced it."""
    known = recorded_releases()
    held = [k.version for k in known if k.holds(query)]
    assert held and held[0] == first_true
    assert held == [k.version for k in known if k.key >= release(first_true).key]


def test_blk_is_gone_from_91() -> None:
    assert release("9.0").holds("migrate/arg-type/blk")
    assert not release("9.1").holds("migrate/arg-type/blk")


# --- fetched from the archive (cached after the first run) ---------------------


def test_libvirt_input_regenerates_the_committed_slice() -> None:
    schema = load_input("libvirt:8.2")
    assert schema.version == "8.2.0" and schema.kind == "recorded"
    assert schema.meta["source"]["file"] == "tests/qemucapabilitiesdata/caps_8.2.0_x86_64.replies"
    assert dumps(snapshot(schema)) == baseline_path("8.2.0", RELEASE_DIR).read_text()


def test_qapi_source_input_regenerates_the_committed_slice() -> None:
    [src] = source_releases()
    assert dumps(snapshot(load_input("debian:10.2.2"))) == src.path.read_text()


def test_catalogue_says_what_is_served() -> None:
    known = catalogue()
    assert [r.qemu for r in known.releases()] == [k.version for k in recorded_releases()]
    assert all(not r.development for r in known.releases())
    assert any(p.served for p in known.packages)
    other = load_input("libvirt:8.2.0:aarch64")
    assert other.meta["source"]["file"].endswith("caps_8.2.0_aarch64.replies")


def test_unknown_release_lists_what_is_available(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SourceUnavailable) as info:
        load_input("libvirt:10.1")
    text = str(info.value)
    assert text.startswith("libvirt:10.1: no libvirt recording of QEMU '10.1'")
    assert "recorded for x86_64: 4.2.0 (libvirt 9.0.0)" in text and "10.0.0 (libvirt 11.3.0)" in text
    assert main(["query", "libvirt:banana", "migrate"]) == 2
    err = capsys.readouterr().err
    assert "no libvirt recording of QEMU 'banana'" in err and "other architectures:" in err
    assert main(["query", "libvirt:9.0.0:nonarch", "migrate"]) == 2


def test_snapshot_releases_command(tmp_path: Path) -> None:
    assert main(["snapshot", "--releases", "--dir", str(tmp_path)]) == 0
    written = sorted(p.name for p in tmp_path.glob("*.json"))
    assert written == sorted(p.name for p in RELEASE_DIR.glob("*.json"))
    for path in tmp_path.glob("*.json"):
        assert path.read_text() == (RELEASE_DIR / path.name).read_text()
    assert json.loads((tmp_path / "qemu-4.2.0.json").read_text())["source"]["libvirt"].startswith("9.0")


def test_a_stale_source_index_is_used_with_a_warning(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                     capsys: pytest.CaptureFixture[str]) -> None:
    """apt's own words for an expired and an unreachable suite (the Sources update
    is replaced; everything after it reads what it leaves)."""
    monkeypatch.setenv("QMPCOMPAT_CACHE", str(tmp_path))
    apt = source_apt()
    said: list[set[str]] = []

    def update(suites: Any) -> str:
        said.append(set(apt.accept_stale))
        expired = "" if "sid" in apt.accept_stale else (
            "E: Release file for http://deb.debian.org/debian/dists/sid/InRelease is expired"
            " (invalid since 20d 2h). Updates for this repository will not be applied.\n")
        return expired + "E: Failed to fetch http://deb.debian.org/debian/dists/forky/InRelease" \
                          "  Could not connect\n"

    monkeypatch.setattr(apt, "source_update_output", update)
    refresh_sources(apt, ("forky", "sid", "trixie"), force=True)
    assert said == [set(), {"sid"}]
    err = capsys.readouterr().err
    assert "source index of 'sid' is past its Valid-Until date" in err
    assert "source index of 'forky' cannot be used (unreachable)" in err
    assert source_apt().accept_stale == {"sid"}  # later runs read the stale list the same way
    listing = next(o for o in source_apt()._src_options(("sid",)) if "sourcelist=" in o)
    assert "check-valid-until=no" in Path(listing.split("=", 1)[1]).read_text()
    # While the mirror stays stale (its Release file says so), the next refresh runs apt once.
    (apt.root / "lists").mkdir(parents=True, exist_ok=True)
    (apt.root / "lists" / "deb.debian.org_debian_dists_sid_InRelease").write_text(
        "Suite: sid\nDate: Sat, 01 Nov 2025 08:00:00 UTC\nValid-Until: Sat, 08 Nov 2025 08:00:00 UTC\n")
    said.clear()
    apt.accept_stale = source_apt().accept_stale  # as a later run reads it
    refresh_sources(apt, ("forky", "sid", "trixie"), force=True)
    assert said == [{"sid"}]
    assert "source index of 'sid' is past its Valid-Until date" in capsys.readouterr().err
    with pytest.raises(SourceUnavailable, match="no suite's source index can be used"):
        refresh_sources(apt, ("forky",), force=True)


def test_a_suite_the_binary_look_up_found_stale_is_fetched_once(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    """The InRelease file that signs a suite's binary indexes signs its source
    indexes too: a suite the last binary look-up found stale has the date check
    off from the first source update."""
    monkeypatch.setenv("QMPCOMPAT_CACHE", str(tmp_path))
    (tmp_path / "suites.json").write_text(json.dumps({"indexes": {
        "sid": {"suite": "sid", "stale": True}, "trixie": {"suite": "trixie"}}}))
    apt = source_apt()
    (apt.root / "lists").mkdir(parents=True)
    (apt.root / "lists" / "deb.debian.org_debian_dists_sid_InRelease").write_text(
        "Suite: sid\nDate: Sat, 01 Nov 2025 08:00:00 UTC\nValid-Until: Sat, 08 Nov 2025 08:00:00 UTC\n")
    said: list[set[str]] = []

    def update(suites: Any) -> str:
        said.append(set(apt.accept_stale))
        return "" if "sid" in apt.accept_stale else (
            "E: Release file for http://deb.debian.org/debian/dists/sid/InRelease is expired\n")

    monkeypatch.setattr(apt, "source_update_output", update)
    refresh_sources(apt, ("sid", "trixie"), force=True)
    assert said == [{"sid"}]
    assert "source index of 'sid' is past its Valid-Until date" in capsys.readouterr().err
