"""A part a foreign build is given (glibc, firmware) is fetched once per cache:
a new entry hard-links it from a finished entry that holds the same packages at
the same versions, never from a staged one, and fetches it when none does. The
archive is stood in for (no download here), as is apt-cache for the one look at a
suite that answers for several packages, remembered until the suite's lists change
(and, the same way, a source package's versions that a source apt looks up)."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from qmpcompat.provision import supplement
from qmpcompat.provision.apt import PrivateApt, PrivateSourceApt
from qmpcompat.provision.build import MANIFEST
from qmpcompat.provision.supplement import Supplier
from qmpcompat.reaper import owner

PART = "firmware-trixie-1_10.0.13_ds-0"


def _part(entry: Path, finished: bool = True) -> Path:
    part = entry / PART / "usr/share/qemu"
    part.mkdir(parents=True)
    (part / "kvmvapic.bin").write_bytes(b"rom")
    (part / "linked.bin").symlink_to("kvmvapic.bin")
    if finished:
        (entry / MANIFEST).write_text("{}")
    return part


class Downloads:
    def __init__(self) -> None:
        self.asked: list[str] = []

    def download(self, suite: str, package: str, version: str, dest: Path) -> list[Path]:
        self.asked.append(package)
        raise RuntimeError("the stand-in archive serves nothing")


def _fetch(root: Path, monkeypatch: pytest.MonkeyPatch,
           said: list[str] | None = None) -> tuple[Path, Downloads]:
    staging = root / ".dl-new"
    staging.mkdir()
    supplier = Supplier(staging, root.parent, None if said is None else said.append)
    downloads = Downloads()
    monkeypatch.setattr(supplier.debian, "apt", downloads)
    supplier._fetch("trixie", [("qemu-system-data", "1:10.0.13+ds-0")], staging / PART)
    return staging / PART / "usr/share/qemu", downloads


def test_a_part_held_by_a_finished_entry_is_linked(tmp_path: Path,
                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    root = tmp_path / "foreign"
    theirs = _part(root / "quicksand-1")
    said: list[str] = []
    mine, downloads = _fetch(root, monkeypatch, said)
    assert downloads.asked == []
    assert said == [f"  nothing to fetch: {PART} linked from {root / 'quicksand-1'}"]
    assert os.path.samefile(mine / "kvmvapic.bin", theirs / "kvmvapic.bin")
    assert os.readlink(mine / "linked.bin") == "kvmvapic.bin"
    assert not list(root.glob(".dl-new/.dl-*"))  # its own staging is gone


def test_a_staged_or_unfinished_entry_is_not_linked(tmp_path: Path,
                                                    monkeypatch: pytest.MonkeyPatch) -> None:
    root = tmp_path / "foreign"
    _part(root / ".dl-other")
    _part(root / "half-made", finished=False)
    with pytest.raises(RuntimeError, match="serves nothing"):
        _fetch(root, monkeypatch)


def test_links_fall_back_to_copies(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    def refused(src: str, dst: str) -> None:
        raise PermissionError(1, "links refused")

    monkeypatch.setattr(supplement.os, "link", refused)
    root = tmp_path / "foreign"
    theirs = _part(root / "quicksand-1")
    mine, _downloads = _fetch(root, monkeypatch)
    assert (mine / "kvmvapic.bin").read_bytes() == b"rom"
    assert not os.path.samefile(mine / "kvmvapic.bin", theirs / "kvmvapic.bin")


POLICY = """qemu-system-data:
  Installed: (none)
  Candidate: 1:10.0.13+ds-0+deb13u1
  Version table:
     1:10.0.13+ds-0+deb13u1 990
        990 http://deb.debian.org/debian trixie/main amd64 Packages
seabios:
  Installed: (none)
  Candidate: (none)
  Version table:
N: Unable to locate package nosuch
"""


def test_one_look_at_a_suite_answers_every_package(tmp_path: Path,
                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    apt = PrivateApt(tmp_path, "amd64")
    looks: list[list[str]] = []

    def run(tool: str, args: list[str], suites: object, archives: object = None) -> str:
        looks.append(args)
        return POLICY

    monkeypatch.setattr(apt, "run", run)
    assert apt.candidates("trixie", ["qemu-system-data", "seabios", "nosuch"]) == {
        "qemu-system-data": "1:10.0.13+ds-0+deb13u1", "seabios": None, "nosuch": None}
    assert len(looks) == 1 and looks[0][-3:] == ["qemu-system-data", "seabios", "nosuch"]


def test_what_a_suite_serves_is_remembered_until_its_lists_change(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    looks: list[list[str]] = []

    def run(self: PrivateApt, tool: str, args: list[str], suites: object, archives: object = None) -> str:
        looks.append(args)
        return POLICY

    monkeypatch.setattr(PrivateApt, "run", run)
    written: list[str] = []  # the temp files renamed into place: the reaper's, if a writer is killed
    rename = os.replace
    monkeypatch.setattr(os, "replace", lambda a, b: (written.append(Path(a).name), rename(a, b))[1])
    lists = tmp_path / "lists"
    lists.mkdir()
    (lists / "deb.debian.org_debian_dists_trixie_main_binary-amd64_Packages").write_text("one")
    ask = ["qemu-system-data", "seabios"]
    first = PrivateApt(tmp_path, "amd64").candidates("trixie", ask)
    again = PrivateApt(tmp_path, "amd64")  # another process, say: it reads what was remembered
    assert again.candidates("trixie", ask) == first and again.candidates("trixie", ["seabios"]) == {
        "seabios": None}
    (lists / "deb.debian.org_debian_dists_trixie-backports_main_binary-amd64_Packages").write_text("x")
    assert again.candidates("trixie", ask) == first and len(looks) == 1  # another suite's lists
    (lists / "deb.debian.org_debian_dists_trixie_main_binary-amd64_Packages").write_text("two")
    assert again.candidates("trixie", ask) == first and len(looks) == 2  # its own lists changed
    assert again.candidates("trixie", ["nosuch"]) == {"nosuch": None} and len(looks) == 3
    assert written and all(n.startswith(f".qmpw-{owner()}-") for n in written), written


SHOWSRC = "Package: qemu\nVersion: 1:10.0.13+ds-0+deb13u1\n\nPackage: qemu\nVersion: 1:7.2+dfsg-7+deb12u18\n"


def test_source_versions_are_remembered_until_the_lists_change(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    looks: list[list[str]] = []

    def run_src(self: PrivateSourceApt, tool: str, args: list[str], suites: object,
                cwd: object = None) -> str:
        looks.append(args)
        return SHOWSRC

    monkeypatch.setattr(PrivateSourceApt, "run_src", run_src)
    lists = tmp_path / "lists"
    lists.mkdir()
    sources = lists / "deb.debian.org_debian_dists_trixie_main_source_Sources"
    sources.write_text("one")
    versions = ["1:10.0.13+ds-0+deb13u1", "1:7.2+dfsg-7+deb12u18"]
    assert PrivateSourceApt(tmp_path, "amd64").source_versions("qemu", ["trixie"]) == versions
    again = PrivateSourceApt(tmp_path, "amd64")  # another process, say
    assert again.source_versions("qemu", ["trixie"]) == versions and len(looks) == 1
    assert again.source_versions("qemu", ["trixie", "sid"]) == versions and len(looks) == 2
    assert again.source_versions("seabios", ["trixie"]) == versions and len(looks) == 3
    sources.write_text("two")
    assert again.source_versions("qemu", ["trixie"]) == versions and len(looks) == 4
    assert looks[0] == ["showsrc", "--only-source", "--", "qemu"]
