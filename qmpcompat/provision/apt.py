"""A private apt: its own configuration, sources, lists, cache and an empty dpkg status.

Nothing here needs root or touches the host's apt state. The host's apt
configuration (``/etc/apt/apt.conf``, ``/etc/apt/apt.conf.d/``) is not read:
the only settings kept from it are its proxies (``Acquire::http::Proxy``,
``Acquire::https::Proxy``, ``Acquire::ftp::Proxy`` and their per-host forms),
and the ``http_proxy``-style environment variables apt itself honours.
Signatures are always checked against the Debian archive keyring; a Release
file past its ``Valid-Until`` is refused unless the caller accepts stale
indexes (see ``qmpcompat.provision.indexes``).
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import shutil
import subprocess
import threading
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from qmpcompat.errors import AptError, ProvisionError
from qmpcompat.reaper import write_atomic

KEYRINGS = (
    "/usr/share/keyrings/debian-archive-keyring.gpg",
    "/usr/share/keyrings/debian-archive-keyring.pgp",
)
# Host settings the private apt keeps: how to reach the network, nothing else.
KEPT_SETTINGS = ("Acquire::http::Proxy", "Acquire::https::Proxy", "Acquire::ftp::Proxy")
# Settings forced whatever the host says: signatures and dates are always checked.
FORCED = {
    "Acquire::AllowInsecureRepositories": "false",
    "Acquire::AllowWeakRepositories": "false",
    "Acquire::AllowDowngradeToInsecureRepositories": "false",
    "APT::Get::AllowUnauthenticated": "false",
    "Acquire::Check-Valid-Until": "true",
    "Acquire::Check-Date": "true",
}
# What each suite serves of the packages asked for (and, in a source apt, the
# versions of the source packages asked for), and the state of its lists then.
CANDIDATES = "candidates.json"
# apt-cache policy's answer, package by package: "NAME:" then its candidate.
_POLICY = re.compile(r"^(\S+?):\n(?:[ \t]+Installed:.*\n)?[ \t]+Candidate:[ \t]*(\S*)", re.MULTILINE)


def mirror() -> str:
    """``$QMPCOMPAT_DEBIAN_MIRROR``, else the Debian archive."""
    return os.environ.get("QMPCOMPAT_DEBIAN_MIRROR", "http://deb.debian.org/debian")


def keyring() -> str:
    """``$QMPCOMPAT_DEBIAN_KEYRING`` (a private mirror's key), else the host's
    Debian archive keyring."""
    env = os.environ.get("QMPCOMPAT_DEBIAN_KEYRING")
    if env:
        if not os.path.isfile(env):
            raise ProvisionError(f"QMPCOMPAT_DEBIAN_KEYRING={env}: no such file")
        return env
    for path in KEYRINGS:
        if os.path.exists(path):
            return path
    raise ProvisionError("the Debian archive keyring is not installed, so signatures cannot be checked"
                         "\n  hint: install the debian-archive-keyring package")


def suite_sources(suite: str) -> list[str]:
    """The suites apt needs to resolve ``suite``'s packages: a backports or
    updates suite needs its base release, experimental needs sid."""
    if suite in ("experimental", "rc-buggy"):
        return ["sid", suite]
    base = suite.split("-", 1)[0]
    return [base, suite] if base != suite else [suite]


def host_proxy_settings() -> list[str]:
    """The host's apt proxy settings (``KEPT_SETTINGS``), as apt.conf lines."""
    try:
        out = subprocess.run(["apt-config", "dump"], capture_output=True, text=True, check=False,
                             stdin=subprocess.DEVNULL, timeout=30).stdout
    except (OSError, subprocess.SubprocessError):
        return []
    return [line for line in out.splitlines()
            if line.split(" ", 1)[0].split("::")[:3] in [k.split("::") for k in KEPT_SETTINGS]
            and line.endswith(";")]


def private_config(root: Path) -> Path:
    """Write ``root/etc/apt.conf``, the only configuration file the private apt
    reads (given as ``APT_CONFIG``): it points apt's configuration parts and
    main file into ``root`` and keeps the host's proxies."""
    etc = root / "etc"
    (etc / "apt.conf.d").mkdir(parents=True, exist_ok=True)
    text = "".join(f"{line}\n" for line in [
        "// written by qmpcompat: the host's apt configuration is not read",
        f'Dir::Etc::parts "{etc / "apt.conf.d"}";',
        f'Dir::Etc::main "{etc / "apt.conf.main"}";',
        *host_proxy_settings()])
    path = etc / "apt.conf"
    if not path.exists() or path.read_text() != text:
        path.write_text(text)
    return path


def host_arch() -> str:
    try:
        out = subprocess.run(["dpkg", "--print-architecture"], capture_output=True, text=True,
                             check=True)
    except (OSError, subprocess.CalledProcessError):
        return "amd64"
    return out.stdout.strip() or "amd64"


class PrivateApt:
    """apt-get and apt-cache bound to a directory of their own under ``root``."""

    def __init__(self, root: Path, arch: str | None = None) -> None:
        self.root = root
        self.arch = arch or host_arch()
        self.lists = root / "lists"
        self.status = root / "status"
        # Suites whose expired Release file is used all the same (a stale mirror).
        self.accept_stale: set[str] = set()
        self._remembering = threading.Lock()

    def _stale_option(self, suite: str) -> str:
        return " check-valid-until=no" if suite in self.accept_stale else ""

    def _require_apt(self) -> None:
        if not shutil.which("apt-get") or not shutil.which("dpkg-deb"):
            raise ProvisionError(
                "this host has no apt-get/dpkg-deb, so Debian builds cannot be provisioned"
                "\n  hint: run on a Debian (or derived) host, or name binaries with --qemu PATH"
                " / QMPCOMPAT_QEMU")

    def _sources_file(self, suites: Sequence[str]) -> Path:
        name = "sources-" + "+".join(sorted(set(suites))) + ".list"
        path = self.root / "etc" / name
        path.parent.mkdir(parents=True, exist_ok=True)
        key = keyring()
        text = "".join(f"deb [arch={self.arch} signed-by={key}{self._stale_option(s)}] "
                       f"{mirror()} {s} main\n" for s in sorted(set(suites)))
        if not path.exists() or path.read_text() != text:
            path.write_text(text)
        return path

    def _options(self, suites: Sequence[str], archives: Path | None = None) -> list[str]:
        (self.lists / "partial").mkdir(parents=True, exist_ok=True)
        self.status.touch()
        cache = self.root / "cache"
        archives = archives or cache / "archives"
        (archives / "partial").mkdir(parents=True, exist_ok=True)
        (self.root / "etc" / "preferences.d").mkdir(parents=True, exist_ok=True)
        opts = {
            "Dir::Etc::sourcelist": str(self._sources_file(suites)),
            "Dir::Etc::sourceparts": "-",
            "Dir::Etc::preferences": str(self.root / "etc" / "preferences"),
            "Dir::Etc::preferencesparts": str(self.root / "etc" / "preferences.d"),
            "Dir::State::Lists": str(self.lists),
            "Dir::State::status": str(self.status),
            "Dir::Cache": str(cache),
            "Dir::Cache::archives": str(archives),
            "Dir::Cache::pkgcache": "",
            "Dir::Cache::srcpkgcache": "",
            "APT::Architecture": self.arch,
            "APT::Architectures": self.arch,
            "Acquire::Languages": "none",
            "Debug::NoLocking": "1",
            **FORCED,
        }
        if os.geteuid() == 0:
            opts["APT::Sandbox::User"] = "root"
        return [f"-o{k}={v}" for k, v in opts.items()]

    def run(self, tool: str, args: list[str], suites: Sequence[str],
            archives: Path | None = None) -> str:
        self._require_apt()
        argv = [tool, "-q", *self._options(suites, archives), *args]
        proc = subprocess.run(argv, capture_output=True, text=True, check=False,
                              stdin=subprocess.DEVNULL, env=self.environ())
        if proc.returncode != 0:
            raise AptError(f"{tool} {' '.join(args)} failed:\n{proc.stderr.strip()[-2000:]}",
                           argv, proc.stdout + proc.stderr)
        return proc.stdout + proc.stderr

    def environ(self) -> dict[str, str]:
        """The environment apt runs in: the caller's, with the private configuration."""
        return {**os.environ, "LC_ALL": "C.UTF-8", "APT_CONFIG": str(private_config(self.root))}

    def update_output(self, suites: Sequence[str]) -> str:
        """Run ``apt-get update`` for ``suites``; its whole output, failed or not
        (``qmpcompat.provision.indexes`` reads it suite by suite)."""
        try:
            return self.run("apt-get", ["update"], suites)
        except AptError as exc:
            return exc.output

    def candidate(self, suite: str, package: str) -> str | None:
        """The version of ``package`` that ``suite`` serves, or None."""
        return self.candidates(suite, (package,)).get(package)

    def candidates(self, suite: str, packages: Sequence[str]) -> dict[str, str | None]:
        """The version of each of ``packages`` that ``suite`` serves (None for one
        it does not), read in one look at the suite's lists; remembered
        (``CANDIDATES``) until those lists change."""
        stamp = self._lists_stamp(suite_sources(suite))
        known = self._remembered(suite, stamp)
        if all(p in known for p in packages):
            return {p: known[p] for p in packages}
        out = self.run("apt-cache", ["-oAPT::Default-Release=" + suite, "policy", "--", *packages],
                       suite_sources(suite))
        found = dict(_POLICY.findall(out))
        answer = {p: v if (v := found.get(p)) and v != "(none)" else None for p in packages}
        self._remember(suite, stamp, answer)
        return answer

    def _lists_stamp(self, suites: Sequence[str]) -> str:
        """What the lists of ``suites`` are now: their files' names, sizes and times."""
        files = sorted(p for p in self.lists.glob("*_dists_*")
                       if any(f"_dists_{s}_" in p.name for s in suites))
        said = "".join(f"{p.name}:{st.st_size}:{st.st_mtime_ns};" for p in files for st in [p.stat()])
        return hashlib.sha256(said.encode()).hexdigest()

    def _remembered(self, suite: str, stamp: str) -> dict[str, Any]:
        try:
            entry = json.loads((self.root / CANDIDATES).read_text()).get(suite, {})
        except (OSError, ValueError, AttributeError):
            return {}
        found = entry.get("found") if isinstance(entry, dict) and entry.get("stamp") == stamp else None
        return found if isinstance(found, dict) else {}

    def _remember(self, suite: str, stamp: str, answer: Mapping[str, Any]) -> None:
        """Add ``answer`` to what is remembered of ``suite`` (written whole,
        ``write_atomic``: a reader never sees half a file, and a writer killed on
        the way leaves nothing the reaper does not remove; of two writers at once,
        one's answers are looked up again next time)."""
        with self._remembering:
            path = self.root / CANDIDATES
            try:
                known = json.loads(path.read_text())
            except (OSError, ValueError):
                known = {}
            if not isinstance(known, dict):
                known = {}
            known[suite] = {"stamp": stamp, "found": {**self._remembered(suite, stamp), **answer}}
            write_atomic(path, json.dumps(known))

    def download(self, suite: str, package: str, version: str, dest: Path) -> list[Path]:
        """Download ``package=version`` and its whole dependency closure into ``dest``."""
        pin = f"{package}={version}"
        return self.download_packages(suite, [pin], dest)

    def download_packages(self, suite: str, pins: Sequence[str], dest: Path) -> list[Path]:
        """Download the ``package=version`` of ``pins`` and their whole dependency
        closure (recommends left out) into ``dest``."""
        self.run("apt-get", ["-oAPT::Default-Release=" + suite, "install", "--download-only",
                             "--no-install-recommends", "-y", "--", *pins],
                 suite_sources(suite), archives=dest)
        debs = sorted(dest.glob("*.deb"))
        if not debs:
            raise ProvisionError(f"apt downloaded nothing for {' '.join(pins)} from {suite}")
        return debs


# --- source packages (deb-src) ------------------------------------------------


def _src_sources_text(suites: Sequence[str], stale: set[str]) -> str:
    key = keyring()
    return "".join(f"deb-src [signed-by={key}{' check-valid-until=no' if s in stale else ''}]"
                   f" {mirror()} {s} main\n" for s in sorted(set(suites)))


class PrivateSourceApt(PrivateApt):
    """A private apt that reads deb-src indexes only (keep it under its own
    ``root``: its lists would be pruned by an update with deb lines)."""

    def _src_options(self, suites: Sequence[str]) -> list[str]:
        path = self.root / "etc" / ("src-" + "+".join(sorted(set(suites))) + ".list")
        path.parent.mkdir(parents=True, exist_ok=True)
        text = _src_sources_text(suites, self.accept_stale)
        if not path.exists() or path.read_text() != text:
            path.write_text(text)
        opts = self._options(suites)
        return [f"-oDir::Etc::sourcelist={path}" if o.startswith("-oDir::Etc::sourcelist=") else o
                for o in opts]

    def run_src(self, tool: str, args: list[str], suites: Sequence[str],
                cwd: Path | None = None) -> str:
        """Run apt-get or apt-cache against the deb-src lines of ``suites``."""
        self._require_apt()
        argv = [tool, "-q", *self._src_options(suites), *args]
        proc = subprocess.run(argv, capture_output=True, text=True, check=False, cwd=cwd,
                              stdin=subprocess.DEVNULL, env=self.environ())
        if proc.returncode != 0:
            raise AptError(f"{tool} {' '.join(args)} failed:\n{proc.stderr.strip()[-2000:]}",
                           argv, proc.stdout + proc.stderr)
        return proc.stdout + proc.stderr

    def source_update_output(self, suites: Sequence[str]) -> str:
        """Run ``apt-get update`` on the deb-src lines of ``suites``; its whole
        output, failed or not (``qmpcompat.provision.indexes`` reads it)."""
        try:
            return self.run_src("apt-get", ["update"], suites)
        except AptError as exc:
            return exc.output

    def source_versions(self, package: str, suites: Sequence[str]) -> list[str]:
        """Every version of source package ``package`` that ``suites`` serve;
        remembered (``CANDIDATES``) until their lists change."""
        key, stamp = "deb-src " + "+".join(sorted(set(suites))), self._lists_stamp(suites)
        known = self._remembered(key, stamp).get(package)
        if isinstance(known, list) and all(isinstance(v, str) for v in known):
            return known
        out = self.run_src("apt-cache", ["showsrc", "--only-source", "--", package], suites)
        versions = sorted(set(re.findall(r"^Version:\s*(\S+)", out, re.MULTILINE)))
        self._remember(key, stamp, {package: versions})
        return versions

    def source_suites(self, package: str, suites: Sequence[str]) -> dict[str, list[str]]:
        """Each version of source package ``package`` with the suites that list it."""
        out = self.run_src("apt-cache", ["madison", "--", package], suites)
        found: dict[str, list[str]] = {}
        for version, suite in re.findall(r"^\s*\S+\s*\|\s*(\S+)\s*\|\s*\S+\s+([^/\s]+)/\S+\s+Sources",
                                         out, re.MULTILINE):
            found.setdefault(version, []).append(suite)
        return found

    def source_download(self, package: str, version: str, suites: Sequence[str],
                        dest: Path) -> list[Path]:
        """Download (and verify) the files of source package ``package=version``
        into ``dest`` without unpacking them; return the files."""
        dest.mkdir(parents=True, exist_ok=True)
        uris = self.run_src("apt-get", ["source", "--print-uris", "--", f"{package}={version}"], suites)
        hashes = dict(re.findall(r"^'\S+' (\S+) \d+ SHA256:([0-9a-f]{64})", uris, re.MULTILINE))
        try:
            self.run_src("apt-get", ["source", "--download-only", "-y", "--", f"{package}={version}"],
                         suites, cwd=dest)
        except AptError:
            # The archive may lack a backport's .dsc while serving its orig tarball,
            # which every Debian revision of one upstream version shares.
            if not any(".orig.tar" in p.name for p in dest.iterdir()):
                raise
        files = sorted(p for p in dest.iterdir() if p.is_file() and p.name in hashes)
        for path in files:
            if hashlib.sha256(path.read_bytes()).hexdigest() != hashes[path.name]:
                raise ProvisionError(f"{path.name}: SHA256 does not match the Sources index")
        if not files:
            raise ProvisionError(f"apt downloaded nothing for source {package}={version}")
        return files
