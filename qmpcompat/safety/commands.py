"""The allow-list of QMP commands and of every member and value they may carry.

A command not in ``COMMANDS`` is refused; so is a member an object's table does
not list, and an enum value its table does not list, wherever they appear:
what QEMU adds next year is refused until someone reads what it does and adds
it here. A member whose name starts with ``qmpcompat`` (or a command, or an
enum value) is allowed with anything under it: no QEMU will ever have it, so
QEMU refuses it (that is what derived "unexpected member" cases test).

A value of the wrong JSON type (a list where a string belongs, say) opens
nothing: QEMU's input visitor refuses the whole command before any command code
runs. Such a value is still checked leniently: every string in it must be safe
as a uri and as a path, in case a later QEMU turns the member into an alternate.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import TypeVar

from qmpcompat.safety.policy import Policy
from qmpcompat.types import JSON

T = TypeVar("T")

RESERVED = "qmpcompat"
Check = Callable[[object, str, Policy], list[str]]  # whatever a case tries to send


def _reserved(name: object) -> bool:
    return isinstance(name, str) and name.startswith(RESERVED)


def _strings(value: object) -> list[str]:
    if isinstance(value, str):
        return [value]
    if isinstance(value, dict):
        return [s for v in value.values() for s in _strings(v)]
    if isinstance(value, list):
        return [s for v in value for s in _strings(v)]
    return []


def loose(value: object, at: str, policy: Policy) -> list[str]:
    """A value of the wrong type: each string must be safe as a uri and, when it
    looks like a path, as a path."""
    out = []
    for text in _strings(value):
        why = policy.uri_problem(text) if ":" in text else None
        if why is None and text.startswith("/"):
            why = policy.path_problem(text)
        if why:
            out.append(f"{at}: {why}")
    return out


def scalar(value: object, at: str, policy: Policy) -> list[str]:
    """A number, boolean or word QEMU only stores or compares."""
    return [] if not isinstance(value, (dict, list)) else loose(value, at, policy)


def _typed(kind: type[T], check: Callable[[T, Policy], str | None]) -> Check:
    def run(value: object, at: str, policy: Policy) -> list[str]:
        if not isinstance(value, kind):
            return loose(value, at, policy)
        why = check(value, policy)
        return [f"{at}: {why}"] if why else []
    return run


uri = _typed(str, lambda v, p: p.uri_problem(v))
path = _typed(str, lambda v, p: p.path_problem(v))
host = _typed(str, lambda v, p: p.host_problem(v))
cid = _typed(str, lambda v, p: None if v == "1" else f"vsock cid {v!r} is not the local cid 1")
argv = _typed(list, lambda v, p: p.argv_problem(v))


def enum(*values: str, probes: tuple[str, ...] = ()) -> Check:
    """One of ``values``; ``probes`` are values no QEMU has, kept to test rejection."""
    allowed = set(values) | set(probes)

    def run(value: object, at: str, policy: Policy) -> list[str]:
        if not isinstance(value, str):
            return loose(value, at, policy)
        if value in allowed or _reserved(value):
            return []
        return [f"{at}: value {value!r} is not on the safety allow-list"]
    return run


def obj(members: Mapping[str, Check], probes: Mapping[str, tuple[JSON, ...]] | None = None,
        ) -> Check:
    """An object with these members. ``probes`` are members no QEMU has, each with
    the only values a vector may give it (to test that QEMU rejects it)."""
    probes = probes or {}

    def run(value: object, at: str, policy: Policy) -> list[str]:
        if not isinstance(value, dict):
            return loose(value, at, policy)
        out = []
        for key, item in value.items():
            where = f"{at}/{key}"
            if key in members:
                out += members[key](item, where, policy)
            elif _reserved(key):
                continue
            elif key in probes:
                if item not in probes[key]:
                    out.append(f"{where}: member {key!r} (one QEMU does not have) may only be "
                               f"{' or '.join(map(repr, probes[key]))}")
            else:
                out.append(f"{where}: member {key!r} is not on the safety allow-list")
        return out
    return run


def list_of(item: Check) -> Check:
    def run(value: object, at: str, policy: Policy) -> list[str]:
        if not isinstance(value, list):
            return loose(value, at, policy)
        return [p for i, v in enumerate(value) for p in item(v, f"{at}/{i}", policy)]
    return run


def nothing(value: object, at: str, policy: Policy) -> list[str]:
    """No arguments at all."""
    if value in (None, {}):
        return []
    return obj({})(value, at, policy)


# --- migrate and migrate-incoming: MigrationChannel and its addresses ---------

_INET = {"host": host, "port": scalar, "numeric": scalar, "to": scalar, "ipv4": scalar,
         "ipv6": scalar, "keep-alive": scalar, "keep-alive-count": scalar,
         "keep-alive-idle": scalar, "keep-alive-interval": scalar, "mptcp": scalar}
# Every branch's members in one table: a tree with a wrong or missing tag is still
# checked member by member.
ADDRESS = {
    "transport": enum("socket", "exec", "rdma", "file", probes=("SOCKET", "pipe")),
    "type": enum("inet", "unix", "vsock", "fd", probes=("tipc",)),
    **_INET, "path": path, "abstract": scalar, "tight": scalar, "cid": cid, "str": scalar,
    "args": argv, "filename": path, "offset": scalar,
}
ADDRESS_PROBES: dict[str, tuple[JSON, ...]] = {
    "mode": ("0600",), "size": (1,), "env": ([],), "scope": ("link",), "device": ("mlx0",),
    "fdset": (1,), "svm": (1,)}
CHANNEL = obj({"channel-type": enum("main", "cpr", probes=("MAIN", "postcopy")),
               "addr": obj(ADDRESS, ADDRESS_PROBES)}, {"priority": (1,)})
# One table for both commands: the runner sends a vector's arguments to its peer too.
MIGRATE = MIGRATE_INCOMING = obj(
    {"uri": uri, "channels": list_of(CHANNEL), "blk": scalar, "inc": scalar, "detach": scalar,
     "resume": scalar, "exit-on-error": scalar}, {"speed": (1,)})

# --- migration parameters and capabilities ---------------------------------

_NAME = scalar  # a name QEMU looks up among its own objects (TLS creds, nodes)
PARAMETERS = obj({
    **{name: scalar for name in (
        "announce-initial", "announce-max", "announce-rounds", "announce-step",
        "compress-level", "compress-threads", "compress-wait-thread", "decompress-threads",
        "throttle-trigger-threshold", "cpu-throttle-initial", "cpu-throttle-increment",
        "cpu-throttle-tailslow", "max-bandwidth", "avail-switchover-bandwidth",
        "downtime-limit", "x-checkpoint-delay", "block-incremental", "multifd-channels",
        "xbzrle-cache-size", "max-postcopy-bandwidth", "max-cpu-throttle",
        "multifd-zlib-level", "multifd-qatzip-level", "multifd-zstd-level",
        "x-vcpu-dirty-limit-period", "vcpu-dirty-limit", "direct-io", "x-rdma-chunk-size")},
    "tls-creds": _NAME, "tls-hostname": _NAME, "tls-authz": _NAME,
    "multifd-compression": enum("none", "zlib", "zstd", "qpl", "uadk", "qatzip"),
    "zero-page-detection": enum("none", "legacy", "multifd"),
    "mode": enum("normal", "cpr-reboot", "cpr-transfer", "cpr-exec"),
    "cpr-exec-command": argv,  # QEMU runs it in place of itself: the sink only
    "block-bitmap-mapping": list_of(obj({
        "node-name": _NAME, "alias": _NAME, "bitmaps": list_of(obj({
            "name": _NAME, "alias": _NAME, "transform": obj({"persistent": scalar})}))})),
})
CAPABILITY_NAMES = (
    "xbzrle", "rdma-pin-all", "auto-converge", "zero-blocks", "compress", "events",
    "postcopy-ram", "x-colo", "release-ram", "block", "return-path", "pause-before-switchover",
    "multifd", "dirty-bitmaps", "postcopy-blocktime", "late-block-activate", "x-ignore-shared",
    "validate-uuid", "background-snapshot", "zero-copy-send", "postcopy-preempt",
    "switchover-ack", "dirty-limit", "mapped-ram")
CAPABILITIES = obj({"capabilities": list_of(obj({"capability": enum(*CAPABILITY_NAMES),
                                                 "state": scalar}))})

# --- the commands ------------------------------------------------------------

_MIGRATION_STATES = (
    "none", "setup", "cancelling", "cancelled", "active", "postcopy-device", "postcopy-active",
    "postcopy-paused", "postcopy-recover-setup", "postcopy-recover", "completed", "failed",
    "colo", "pre-switchover", "device", "wait-unplug", "failing")
_DUMP_FORMATS = ("elf", "kdump-zlib", "kdump-lzo", "kdump-snappy", "kdump-raw-zlib",
                 "kdump-raw-lzo", "kdump-raw-snappy", "win-dmp")


MAX_WRITE_BYTES = 256 * 1024 * 1024  # the most one command may have QEMU write (the largest guest's RAM)


def written_bytes(value: object, at: str, policy: Policy) -> list[str]:
    """A number of bytes QEMU writes into the case's directory (``pmemsave``'s
    ``size``, ``dump-guest-memory``'s ``length``): at most MAX_WRITE_BYTES, so a
    transcript cannot fill the disk; another type is QEMU's to refuse."""
    if isinstance(value, (int, float)) and not isinstance(value, bool) and value > MAX_WRITE_BYTES:
        return [f"{at}: {value} bytes is over the {MAX_WRITE_BYTES // (1024 * 1024)} MiB one "
                "command may write into a case's directory"]
    return scalar(value, at, policy)


def _dump_protocol(value: object, at: str, policy: Policy) -> list[str]:
    if isinstance(value, str) and value.startswith("file:"):
        why = policy.path_problem(value[5:], "file path")
        return [f"{at}: {why}"] if why else []
    if isinstance(value, str) and value.startswith("fd:"):
        return []
    if isinstance(value, str):
        return [f"{at}: protocol {value!r} is neither file:PATH nor fd:NAME"]
    return loose(value, at, policy)


COMMANDS: dict[str, Check] = {
    "migrate": MIGRATE,
    "migrate-incoming": MIGRATE_INCOMING,
    "migrate-set-parameters": PARAMETERS,
    "migrate-set-capabilities": CAPABILITIES,
    "migrate-recover": obj({"uri": uri}),
    "migrate-continue": obj({"state": enum(*_MIGRATION_STATES)}),
    "migrate_cancel": nothing, "migrate-pause": nothing, "migrate-start-postcopy": nothing,
    "getfd": obj({"fdname": scalar}), "closefd": obj({"fdname": scalar}),
    "qom-list-types": obj({"implements": scalar, "abstract": scalar}),  # only lists
    "stop": nothing, "cont": nothing, "system_reset": nothing, "quit": nothing,
    "pmemsave": obj({"val": scalar, "size": written_bytes, "filename": path}),
    "memsave": obj({"val": scalar, "size": written_bytes, "filename": path, "cpu-index": scalar}),
    "dump-guest-memory": obj({"paging": scalar, "protocol": _dump_protocol, "detach": scalar,
                              "begin": scalar, "length": written_bytes,
                              "format": enum(*_DUMP_FORMATS)}),
}


def command_problems(command: str, arguments: Mapping[str, object] | None, policy: Policy,
                     where: str = "arguments") -> list[str]:
    """Every reason the gate refuses to send ``command`` with ``arguments``, each
    starting with its place (``where``/member/...); empty when it may be sent.
    ``query-*`` commands without arguments only read, and are allowed."""
    if command in COMMANDS:
        return COMMANDS[command](arguments if arguments is not None else {}, where, policy)
    if _reserved(command) or (command.startswith("query-") and not arguments):
        return []
    return [f"{where}: command {command!r} is not on the safety allow-list"]
