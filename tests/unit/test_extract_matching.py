"""The members of a source tarball that qmpcompat keeps (``qapi/*.json``,
QEMU's deprecation documents, libvirt's replies files) are read out with GNU
tar: only what the patterns name, a ``*`` never crossing a ``/``, a pattern
that names nothing no error, an archive that does not read one."""

from __future__ import annotations

import io
import tarfile
from pathlib import Path

import pytest

from qmpcompat.errors import SchemaError
from qmpcompat.schema.sources.debsrc import extract_matching


def _tarball(path: Path, members: dict[str, bytes], link: str = "") -> Path:
    with tarfile.open(path, "w:xz") as tar:
        for name, data in members.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
        if link:
            info = tarfile.TarInfo(link)
            info.type, info.linkname = tarfile.SYMTYPE, "/etc/passwd"
            tar.addfile(info)
    return path


def test_only_what_the_patterns_name(tmp_path: Path) -> None:
    orig = _tarball(tmp_path / "qemu.orig.tar.xz", {
        "qemu-1/qapi/migration.json": b"{}", "qemu-1/qapi/sub/deep.json": b"{}",
        "qemu-1/tests/qapi/other.json": b"{}", "qemu-1/docs/about/deprecated.rst": b"text",
        "qemu-1/qapi/README": b"no"}, link="qemu-1/qapi/link.json")
    found = extract_matching(orig, tmp_path / "out", ["*/qapi/*.json", "*/docs/about/deprecated.rst",
                                                      "*/docs/about/removed-features.rst"])
    assert [p.relative_to(tmp_path / "out").as_posix() for p in found] == [
        "qemu-1/docs/about/deprecated.rst", "qemu-1/qapi/migration.json"]


def test_an_archive_that_does_not_read_is_named(tmp_path: Path) -> None:
    bad = tmp_path / "libvirt.orig.tar.xz"
    bad.write_bytes(b"not a tarball")
    with pytest.raises(SchemaError) as info:
        extract_matching(bad, tmp_path / "out", ["*/x"])
    assert str(info.value) == f"{bad}: tar cannot read it: This does not look like a tar archive"
