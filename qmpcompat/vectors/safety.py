"""Vectors are data that make QEMU open sockets, files and processes: these
rules keep them on loopback, inside the run's temp dir, and to known sinks.

Checked on the raw vector (before placeholders are filled in), by lint and
again by the runner, which refuses to run a vector that breaks a rule.
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Iterator
from typing import Any

from qmpcompat.vectors.model import Vector

TMP = "{tmpdir}/"
LOOPBACK_NAMES = ("localhost", "ip6-localhost", "ip6-loopback")
VSOCK_LOCAL_CID = "1"
# The harness's sink commands: write the stream to a file in the temp dir, or read it back.
_SINK_WRITE = re.compile(r"^cat > \{tmpdir\}/[\w.-]+$")
_SINK_READ = re.compile(r"^cat \{tmpdir\}/[\w.-]+$")
SINK_ARGV_PREFIX = ["/bin/sh", "-c"]
_PATH_KEYS = ("path", "filename")


def is_loopback(host: str) -> bool:
    if host.lower() in LOOPBACK_NAMES:
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def is_sink_command(text: str) -> bool:
    return bool(_SINK_WRITE.match(text) or _SINK_READ.match(text))


def _safe_path(path: str) -> bool:
    return path.startswith(TMP) and ".." not in path.split("/")


def check_uri(uri: str) -> str | None:
    """Why ``uri`` is unsafe, or None if it is safe.

    What cannot name anything QEMU could open is safe: a uri without a scheme
    separator, a tcp or rdma address without a port, an empty unix or file path.
    """
    scheme, colon, rest = uri.partition(":")
    if not colon:
        return None
    if scheme in ("tcp", "rdma"):
        if ":" not in rest:
            return None  # no port: QEMU cannot parse it as an address
        host = rest.rsplit(":", 1)[0].split(",", 1)[0]
        return None if is_loopback(host) else f"{scheme} host {host!r} is not loopback"
    if scheme == "vsock":
        cid = rest.split(":", 1)[0]
        return None if cid == VSOCK_LOCAL_CID else f"vsock cid {cid!r} is not the local cid 1"
    if scheme in ("unix", "file"):
        path = rest.split(",", 1)[0]
        return None if not path or _safe_path(path) else f"{scheme} path {path!r} is not under {{tmpdir}}/"
    if scheme == "exec":
        return None if is_sink_command(rest) else f"exec command {rest!r} is not a sink command"
    return None  # fd:, unknown schemes and bad syntax open nothing


def _runnable(argv: list[Any]) -> bool:
    """An exec argv QEMU could run: not empty and all strings (QEMU's type check
    refuses anything else before it runs a process)."""
    return bool(argv) and all(isinstance(a, str) for a in argv)


def _walk(node: Any, path: str) -> Iterator[tuple[str, str, Any]]:
    if isinstance(node, dict):
        for key, value in node.items():
            yield path, str(key), value
            yield from _walk(value, f"{path}/{key}")
    elif isinstance(node, list):
        for i, value in enumerate(node):
            yield from _walk(value, f"{path}/{i}")


def check_tree(tree: Any, where: str, allow_exec: bool = False) -> list[str]:
    """Every safety problem in one argument tree, each naming its place."""
    problems = []
    for path, key, value in _walk(tree, where):
        at = f"{path}/{key}"
        if key == "uri" and isinstance(value, str):
            why = check_uri(value)
            if why and not (allow_exec and value.startswith("exec:")):
                problems.append(f"{at}: {why}")
        elif key == "host" and isinstance(value, str) and not is_loopback(value):
            problems.append(f"{at}: host {value!r} is not loopback (127.0.0.0/8, ::1, localhost)")
        elif key in _PATH_KEYS and isinstance(value, str) and not _safe_path(value):
            problems.append(f"{at}: {value!r} is not under {{tmpdir}}/")
        elif key == "cid" and isinstance(value, str) and value != VSOCK_LOCAL_CID:
            problems.append(f"{at}: vsock cid {value!r} is not the local cid 1")
        elif key == "args" and isinstance(value, list) and not allow_exec and _runnable(value):
            argv = [str(a) for a in value]
            if not (argv[:2] == SINK_ARGV_PREFIX and len(argv) == 3 and is_sink_command(argv[2])):
                problems.append(f"{at}: exec argv {argv!r} is not a sink command "
                                "(['/bin/sh', '-c', 'cat > {tmpdir}/NAME'] or 'cat {tmpdir}/NAME')")
    return problems


def check_vector(vec: Vector, allow_exec: bool = False) -> list[str]:
    """Every safety problem of a vector: its arguments, its peer's and its fds."""
    problems = check_tree(vec.arguments, "arguments", allow_exec)
    if vec.peer and vec.peer.arguments is not None:
        problems += check_tree(vec.peer.arguments, "peer/arguments", allow_exec)
    fds = list(vec.fds) + list(vec.peer.fds if vec.peer else ())
    problems += [f"fds/{fd.name}: {fd.path!r} is not under {{tmpdir}}/"
                 for fd in fds if fd.kind != "pair" and not _safe_path(fd.path)]
    return problems


def fill(tree: Any, values: dict[str, str]) -> Any:
    """Replace ``{name}`` placeholders in every string of ``tree``."""
    if isinstance(tree, str):
        for name, value in values.items():
            tree = tree.replace("{" + name + "}", value)
        return tree
    if isinstance(tree, dict):
        return {k: fill(v, values) for k, v in tree.items()}
    if isinstance(tree, list):
        return [fill(v, values) for v in tree]
    return tree
