"""What one case may touch, and the value rules built on it: paths inside the
case's own directory, loopback hosts, the local vsock cid, migration uris and
the harness's sink commands. Also the two escapes the harness needs so that no
path is ever re-parsed: shell quoting of sink commands and QEMU's option
quoting (``,`` doubled)."""

from __future__ import annotations

import ipaddress
import posixpath
import re
import shlex
from dataclasses import dataclass
from pathlib import Path
from typing import overload

from qmpcompat.types import JSON, JSONObject

TMPDIR = "{tmpdir}"  # the placeholder of a case's directory in vectors and generated trees
PORT = "{port}"
# The one host name the gate lets reach QEMU, which resolves it with getaddrinfo()
# (util/qemu-sockets.c): only where this host answers it from /etc/hosts, with
# loopback addresses only, before any other source (see ``resolves_locally``).
# Other names (``ip6-loopback``, ``ip6-localhost``: not in every /etc/hosts)
# would reach DNS, and QEMU would listen wherever the answer says.
LOOPBACK_NAME = "localhost"
HOSTS_FILE = Path("/etc/hosts")
NSSWITCH_FILE = Path("/etc/nsswitch.conf")
VSOCK_LOCAL_CID = "1"
SHELL = "/bin/sh"
_SINK_NAME = re.compile(r"[\w.-]+")
_PLACEHOLDER = re.compile(r"\{(tmpdir|port)\}")
# uri schemes that no QEMU has or will have: vectors use them to probe rejection
PROBE_SCHEMES = ("gopher", "bogus", "qmpcompat")


@dataclass(frozen=True)
class Policy:
    """What one case may touch: files and sockets only inside ``case_dir``; exec
    only the harness's sink commands unless ``allow_exec``.

    ``case_dir`` is a real absolute directory for a case about to run, or the
    placeholder ``{tmpdir}`` for a vector or tree as written (``template()``).
    """

    case_dir: str
    allow_exec: bool = False

    @classmethod
    def for_case(cls, case_dir: Path | str, allow_exec: bool = False) -> Policy:
        return cls(str(case_dir).rstrip("/") or "/", allow_exec)

    @classmethod
    def template(cls, allow_exec: bool = False) -> Policy:
        return cls(TMPDIR, allow_exec)

    @property
    def shell_dir(self) -> str:
        """The case dir as it appears inside a sink command (shell-quoted when real)."""
        return self.case_dir if self.case_dir == TMPDIR else shlex.quote(self.case_dir)

    def inside(self, path: str) -> bool:
        """True when ``path`` names the case dir or something in it: no ``..``, no NUL."""
        if "\0" in path or ".." in path.split("/"):
            return False
        if self.case_dir == TMPDIR:
            return path == TMPDIR or path.startswith(TMPDIR + "/")
        norm = posixpath.normpath(path)
        return norm == self.case_dir or norm.startswith(self.case_dir + "/")

    def path_problem(self, path: str, what: str = "path") -> str | None:
        if self.inside(path):
            return None
        return f"{what} {path!r} is not under {self.case_dir}/"

    def sinks(self) -> tuple[str, str]:
        """The two sink command texts' prefixes: write the stream, read it back."""
        return f"cat > {self.shell_dir}/", f"cat {self.shell_dir}/"

    def is_sink_command(self, text: str) -> bool:
        """True for ``cat > DIR/NAME`` or ``cat DIR/NAME`` (DIR the quoted case dir,
        NAME letters, digits, ``_.-``): the only shell text the gate lets run."""
        for prefix in self.sinks():
            if text.startswith(prefix):
                name = text[len(prefix):]
                return bool(_SINK_NAME.fullmatch(name)) and name not in (".", "..")
        return False

    def exec_problem(self, command: str) -> str | None:
        if self.allow_exec or self.is_sink_command(command):
            return None
        return f"exec command {command!r} is not a sink command"

    def argv_problem(self, argv: object) -> str | None:
        """Why an exec argv may not run, or None. An argv QEMU cannot run (empty, or
        holding a non-string: QEMU's type check refuses it first) is allowed."""
        if not isinstance(argv, list) or not argv or not all(isinstance(a, str) for a in argv):
            return None
        if self.allow_exec or (len(argv) == 3 and argv[:2] == [SHELL, "-c"]
                               and self.is_sink_command(argv[2])):
            return None
        return (f"exec argv {argv!r} is not a sink command (['/bin/sh', '-c', "
                f"'cat > {TMPDIR}/NAME'] or 'cat {TMPDIR}/NAME')")

    def uri_problem(self, uri: str) -> str | None:
        """Why a migration uri is unsafe, or None. What cannot name anything QEMU
        could open is safe: no scheme separator, an empty address."""
        scheme, colon, rest = uri.partition(":")
        if not colon or not rest:
            return None
        if scheme in ("tcp", "rdma"):
            problem = self.host_problem(_inet_host(rest))
            return f"{scheme} {problem}" if problem else None
        if scheme == "vsock":
            cid = rest.split(":", 1)[0]
            return None if cid == VSOCK_LOCAL_CID else f"vsock cid {cid!r} is not the local cid 1"
        if scheme == "unix":
            return self.path_problem(rest, "unix path")
        if scheme == "file":  # QEMU splits at the first ",offset="
            return self.path_problem(rest.split(",offset=", 1)[0], "file path")
        if scheme == "exec":
            return self.exec_problem(rest)
        if scheme == "fd" or scheme in PROBE_SCHEMES:
            return None  # an fd the monitor holds (or a number): nothing outside QEMU
        return f"uri scheme {scheme!r} is not on the safety allow-list"


    def host_problem(self, host: str) -> str | None:
        """Why QEMU may not be given ``host``, or None: a literal loopback address
        always may; ``localhost`` only where this host resolves it from /etc/hosts
        to loopback addresses alone (checked for a case about to run)."""
        if is_loopback(host):
            return None
        if host != LOOPBACK_NAME:
            return f"host {host!r} is not loopback (127.0.0.0/8, ::1, localhost)"
        if self.case_dir == TMPDIR:
            return None
        return resolves_locally(host)


def _hosts_source_first(nsswitch: str) -> bool:
    """True when the ``hosts:`` line of nsswitch.conf text asks ``files`` first."""
    for line in nsswitch.splitlines():
        key, colon, sources = line.split("#", 1)[0].partition(":")
        if colon and key.strip() == "hosts":
            return sources.split()[:1] == ["files"]
    return True  # no hosts line: glibc's default is "files dns"


def local_addresses(name: str, hosts: str) -> list[str]:
    """The addresses /etc/hosts text ``hosts`` gives ``name`` (its canonical name or an alias)."""
    found = []
    for line in hosts.splitlines():
        words = line.split("#", 1)[0].split()
        if len(words) > 1 and name.lower() in (w.lower() for w in words[1:]):
            found.append(words[0])
    return found


def resolves_locally(name: str) -> str | None:
    """Why QEMU's getaddrinfo() of ``name`` could reach beyond this host, or None
    when /etc/hosts answers it first, with loopback addresses only. The gate
    reads the files itself (``HOSTS_FILE``, ``NSSWITCH_FILE``): it never asks a resolver."""
    hosts_file, nsswitch_file = HOSTS_FILE, NSSWITCH_FILE
    try:
        hosts = hosts_file.read_text(errors="replace")
        nsswitch = nsswitch_file.read_text(errors="replace") if nsswitch_file.exists() else ""
    except OSError as exc:
        return f"host {name!r}: cannot read {exc.filename}: {exc.strerror}"
    addresses = local_addresses(name, hosts)
    if not addresses:
        return (f"host {name!r} is not in {hosts_file}: QEMU would ask DNS for it "
                "(use 127.0.0.1 or ::1)")
    if not all(is_loopback(a) for a in addresses):
        return f"host {name!r} is not loopback in {hosts_file} ({', '.join(addresses)})"
    if not _hosts_source_first(nsswitch):
        return (f"host {name!r}: {nsswitch_file} does not ask /etc/hosts first, so QEMU's "
                "resolver may ask another source (use 127.0.0.1 or ::1)")
    return None


def _inet_host(address: str) -> str:
    """The host of a ``HOST:PORT[,OPTS]`` address as QEMU's inet_parse reads it:
    ``[...]`` for IPv6, else everything up to the first ``:`` (empty: any host)."""
    if address.startswith("["):
        return address[1:].split("]", 1)[0]
    return address.split(":", 1)[0].split(",", 1)[0]


def is_loopback(host: str) -> bool:
    """A literal loopback address: 127.0.0.0/8, ::1 (bracketed or not). No name."""
    try:
        return ipaddress.ip_address(host.removeprefix("[").removesuffix("]")).is_loopback
    except ValueError:
        return False


def qemu_opt(value: str) -> str:
    """``value`` escaped for a QEMU option string: QEMU reads ``,,`` as one ``,``."""
    return value.replace(",", ",,")


def split_qemu_opts(text: str) -> list[str]:
    """A QEMU option string split at single commas (``,,`` is an escaped comma)."""
    parts, cur, i = [], [], 0
    while i < len(text):
        if text[i] == ",":
            if text[i + 1:i + 2] == ",":
                cur.append(",")
                i += 2
                continue
            parts.append("".join(cur))
            cur = []
        else:
            cur.append(text[i])
        i += 1
    parts.append("".join(cur))
    return parts


def _shell_context(key: str | None, tree: JSON) -> bool:
    return key in ("args", "cpr-exec-command") and isinstance(tree, list) and tree[:2] == [SHELL, "-c"]


@overload
def fill(tree: str, values: dict[str, str], _key: str | None = None) -> str: ...
@overload
def fill(tree: JSONObject, values: dict[str, str], _key: str | None = None) -> JSONObject: ...
@overload
def fill(tree: list[JSON], values: dict[str, str], _key: str | None = None) -> list[JSON]: ...
@overload
def fill(tree: JSON, values: dict[str, str], _key: str | None = None) -> JSON: ...
def fill(tree: JSON, values: dict[str, str], _key: str | None = None) -> JSON:
    """Replace ``{tmpdir}`` and ``{port}`` in every string of ``tree`` (in one pass,
    so a value holding a placeholder is never filled again). Where the string is
    shell text (an ``exec:`` uri, the command of a ``/bin/sh -c`` argv) the value
    is shell-quoted, so a case dir with spaces, quotes or ``;`` stays one word."""
    if isinstance(tree, str):
        quote = _key == "uri" and tree.startswith("exec:")
        return _fill_str(tree, values, quote)
    if isinstance(tree, dict):
        return {k: fill(v, values, k) for k, v in tree.items()}
    if isinstance(tree, list):
        if _shell_context(_key, tree):
            return [*tree[:2], *(_fill_str(v, values, True) if isinstance(v, str) else v
                                 for v in tree[2:3]), *(fill(v, values) for v in tree[3:])]
        return [fill(v, values, _key) for v in tree]
    return tree


def _fill_str(text: str, values: dict[str, str], quote: bool) -> str:
    def sub(found: re.Match[str]) -> str:
        value = values.get(found.group(1))
        if value is None:
            return found.group(0)
        return shlex.quote(value) if quote and found.group(1) == "tmpdir" else value

    return _PLACEHOLDER.sub(sub, text)
