"""The private apt against a local signed mirror: hermetic, and one suite at a time.

The mirror (``file://``, no network) serves four suites: ``good`` (signed,
valid), ``stale`` (signed, past its Valid-Until), ``unsigned`` (no signature)
and ``gone`` (not there). Real apt reads them; nothing is mocked.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from qmpcompat.errors import UnknownSuiteError
from qmpcompat.provision.apt import PrivateApt, host_arch, private_config
from qmpcompat.provision.debian import DebianProvisioner
from qmpcompat.provision.indexes import IndexUnusable, failures, update

pytestmark = pytest.mark.skipif(not shutil.which("gpg") or not shutil.which("apt-get"),
                                reason="needs gpg and apt-get")

DAY = 24 * 3600
STANZA = ("Package: qemu-system-x86\nVersion: 1:9.9.9+ds-1\nArchitecture: {arch}\n"
          "Filename: pool/q/qemu-system-x86_9.9.9_{arch}.deb\nSize: 1\n"
          "SHA256: " + "0" * 64 + "\nDescription: test\n\n")


def _date(t: float) -> str:
    return time.strftime("%a, %d %b %Y %H:%M:%S UTC", time.gmtime(t))


def _suite(root: Path, suite: str, date: float, until: float, gnupg: Path | None) -> None:
    arch = host_arch()
    pkgs = root / "dists" / suite / "main" / f"binary-{arch}" / "Packages"
    pkgs.parent.mkdir(parents=True)
    pkgs.write_text(STANZA.format(arch=arch))
    data = pkgs.read_bytes()
    release = (f"Suite: {suite}\nCodename: {suite}\nDate: {_date(date)}\nValid-Until: {_date(until)}\n"
               f"Architectures: {arch}\nComponents: main\nSHA256:\n"
               f" {hashlib.sha256(data).hexdigest()} {len(data)} main/binary-{arch}/Packages\n")
    (root / "dists" / suite / "Release").write_text(release)
    if gnupg:
        subprocess.run(["gpg", "--homedir", str(gnupg), "--batch", "--yes", "--clearsign", "-o",
                        str(root / "dists" / suite / "InRelease"),
                        str(root / "dists" / suite / "Release")], check=True, capture_output=True)


@pytest.fixture(scope="module")
def mirror(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Path, Path]]:
    """(mirror root, keyring) of a local mirror with the four suites; the
    gpg-agent that signing started is stopped afterwards."""
    base = tmp_path_factory.mktemp("mirror")
    gnupg = base / "gnupg"
    gnupg.mkdir(mode=0o700)
    subprocess.run(["gpg", "--homedir", str(gnupg), "--batch", "--passphrase", "",
                    "--quick-gen-key", "qmpcompat test mirror <mirror@localhost>", "rsa2048",
                    "sign", "never"], check=True, capture_output=True)
    keyring = base / "mirror.gpg"
    keyring.write_bytes(subprocess.run(["gpg", "--homedir", str(gnupg), "--export"],
                                       check=True, capture_output=True).stdout)
    root = base / "debian"
    now = time.time()
    _suite(root, "good", now - DAY, now + 7 * DAY, gnupg)
    _suite(root, "stale", now - 10 * DAY, now - 3 * DAY, gnupg)
    _suite(root, "unsigned", now - DAY, now + 7 * DAY, None)
    yield root, keyring
    subprocess.run(["gpgconf", "--homedir", str(gnupg), "--kill", "gpg-agent"],
                   capture_output=True, check=False)


@pytest.fixture
def local(mirror: tuple[Path, Path], monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Path:
    root, keyring = mirror
    monkeypatch.setenv("QMPCOMPAT_DEBIAN_MIRROR", f"file://{root}")
    monkeypatch.setenv("QMPCOMPAT_DEBIAN_KEYRING", str(keyring))
    # A hostile caller's apt configuration: none of it may reach the private apt.
    hostile = tmp_path / "hostile.conf"
    hostile.write_text('Acquire::Check-Valid-Until "false";\n'
                       'Acquire::AllowInsecureRepositories "true";\n'
                       'APT::Get::AllowUnauthenticated "true";\n'
                       'Acquire::http::Proxy "http://127.0.0.1:3128";\n')
    monkeypatch.setenv("APT_CONFIG", str(hostile))
    return tmp_path


def test_one_suite_at_a_time(local: Path) -> None:
    indexes = update(PrivateApt(local / "apt"), ["good", "stale", "unsigned", "gone"])
    assert indexes["good"].error == "" and not indexes["good"].stale
    assert indexes["good"].date and indexes["good"].valid_until > indexes["good"].date
    # Expired: used anyway (stale), with its date; refused when strict.
    assert indexes["stale"].stale and not indexes["stale"].error
    assert indexes["stale"].valid_until < time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
    assert indexes["stale"].problem(strict=False) is None
    refused = indexes["stale"].problem(strict=True)
    assert isinstance(refused, IndexUnusable) and "--qmpcompat-strict" in str(refused)
    assert indexes["stale"].valid_until in indexes["stale"].warning()
    # Unsigned and missing: unusable, each with its reason and a fix.
    assert indexes["unsigned"].kind == "unsigned", indexes["unsigned"]
    assert indexes["gone"].kind == "missing", indexes["gone"]
    assert all(indexes[s].hint for s in ("unsigned", "gone"))


def test_while_a_mirror_stays_stale_an_update_runs_apt_once(local: Path,
                                                             monkeypatch: pytest.MonkeyPatch) -> None:
    """A suite stale at the last update has the date check off from the first run
    and is judged by its own Valid-Until: stale still (and refused when strict),
    while one named stale last time whose index is valid now is not."""
    runs: list[set[str]] = []

    def counted(apt: PrivateApt) -> None:
        real = apt.update_output

        def run(suites: list[str]) -> str:
            runs.append(set(apt.accept_stale))
            return real(suites)

        monkeypatch.setattr(apt, "update_output", run)

    apt = PrivateApt(local / "apt")
    counted(apt)
    first = update(apt, ["good", "stale"])
    assert first["stale"].stale and runs == [set(), {"stale"}]
    runs.clear()
    again = update(apt, ["good", "stale"], known_stale=["good", "stale"])
    assert runs == [{"good", "stale"}]
    assert again["stale"].stale and not again["stale"].error and not again["good"].stale
    assert again["stale"].valid_until == first["stale"].valid_until
    assert isinstance(again["stale"].problem(strict=True), IndexUnusable)
    # the provisioner passes what its last look-up found stale
    prov = DebianProvisioner(local / "cache")
    prov.resolve(["good", "stale"])
    counted(prov.apt)
    runs.clear()
    found = prov.resolve(["good", "stale"], refresh=True)
    assert found.indexes["stale"].stale, (runs, found.indexes["stale"])
    assert runs == [{"stale"}]


def test_provisioner_degrades_per_suite(local: Path) -> None:
    lines: list[str] = []
    prov = DebianProvisioner(local / "cache", progress=lines.append)
    result = prov.resolve(["good", "stale", "unsigned", "gone"])
    assert result.suites == {"good": "1:9.9.9+ds-1", "stale": "1:9.9.9+ds-1"}
    assert isinstance(result.errors["unsigned"], IndexUnusable)
    assert "is not signed" in str(result.errors["unsigned"]) or "NO_PUBKEY" in str(
        result.errors["unsigned"]) or "signature" in str(result.errors["unsigned"]).lower()
    assert isinstance(result.errors["gone"], UnknownSuiteError)
    assert any("'stale' expired on" in line for line in lines), lines
    assert set(result.indexes) == {"good", "stale", "unsigned", "gone"}
    # Strict: the same cached look-up, the stale suite refused.
    strict = prov.resolve(["good", "stale"], strict=True)
    assert list(strict.suites) == ["good"]
    assert "Valid-Until" in str(strict.errors["stale"])


def test_host_configuration_is_not_read(local: Path) -> None:
    apt = PrivateApt(local / "apt")
    env = apt.environ()
    assert env["APT_CONFIG"] == str(private_config(apt.root))
    dump = subprocess.run(["apt-config", "dump", *apt._options(["good"])], env=env,
                          capture_output=True, text=True, check=True).stdout
    assert f'Dir::Etc::parts "{apt.root}/etc/apt.conf.d' in dump
    for forced in ('Acquire::Check-Valid-Until "true"', 'Acquire::AllowInsecureRepositories "false"',
                   'APT::Get::AllowUnauthenticated "false"'):
        assert forced in dump
    # The host's (here: the caller's APT_CONFIG) proxy is the one setting kept.
    assert 'Acquire::http::Proxy "http://127.0.0.1:3128";' in dump
    host = subprocess.run(["apt-config", "dump"], env={**os.environ, "APT_CONFIG": "/dev/null"},
                          capture_output=True, text=True, check=True).stdout
    for line in host.splitlines():
        key = line.split(" ", 1)[0]
        if key.startswith(("DPkg::Post-Invoke", "APT::Update::Post-Invoke")):
            assert key not in dump, f"host setting {key} reached the private apt"


@pytest.mark.parametrize("prefix", ["E:", "Error:"])  # apt 2.x and apt 3.x
def test_failures_read_both_apt_generations(prefix: str) -> None:
    out = (f"{prefix} Release file for http://m/debian/dists/forky/InRelease is expired "
           "(invalid since 2d 1h). Updates for this repository will not be applied.\n"
           f"{prefix} The repository 'http://m/debian sid InRelease' is not signed.\n"
           "Err:3 http://m/debian nosuch Release\n  404  Not Found [IP: 127.0.0.1 80]\n"
           f"{prefix} The repository 'http://m/debian nosuch Release' does not have a Release file.\n")
    got = failures(out, ["bookworm", "forky", "sid", "nosuch"])
    assert {s: k for s, (k, _line) in got.items()} == {
        "forky": "expired", "sid": "unsigned", "nosuch": "missing"}
