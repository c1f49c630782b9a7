"""The values qmpcompat puts into argument trees it makes up: safe defaults by
member name (loopback, unix paths under the case's temp dir, the harness's sink
commands; see qmpcompat.safety), the hunt's catalogue of boundary
values, and one wrong value per JSON type.

Strings may carry the runner's placeholders ``{tmpdir}`` and ``{port}``.
"""

from __future__ import annotations

from qmpcompat.types import JSON, JSONObject

SINK_ARGS = ["/bin/sh", "-c", "cat > {tmpdir}/derived.out"]
SINK_READ_ARGS = ["/bin/sh", "-c", "cat {tmpdir}/derived.out"]

# Safe valid defaults, by member name; members not named here get a plain word.
SAFE_DEFAULTS: JSONObject = {
    "uri": "unix:{tmpdir}/derived.sock",
    "path": "{tmpdir}/derived.sock",
    "filename": "{tmpdir}/derived.file",
    "host": "127.0.0.1",
    "port": "{port}",
    "cid": "1",
    "str": "qmpcompat-nofd",  # an fd name the monitor does not have
    "args": [*SINK_ARGS],
}

# One value of each JSON type, for the wrong-type cases.
WRONG_VALUES: JSONObject = {
    "string": "qmpcompat", "int": 7, "number": 1.5, "boolean": True, "null": None,
    "object": {}, "array": [],
}

BOGUS_ENUM = "qmpcompat-bogus"
UNKNOWN_MEMBER = "qmpcompat-unknown"

# The hunt's catalogue: boundary and odd values that stay safe.
INT_BOUNDARIES = (0, 1, -1, 255, 256, 4096, 65535, 65536, 2**31 - 1, 2**31, -(2**31),
                  2**32 - 1, 2**32, 2**53, 2**63 - 1, -(2**63), 2**64 - 1)
NUMBER_BOUNDARIES = (0.0, -0.0, 0.5, 1e-300, 1e300, -1.5)
LONG = "a" * 120
# Empty, one character, blank, non-ASCII (two-byte, right-to-left mark, four-byte),
# control characters (NUL, newline, escape, DEL), QEMU's option syntax, printf
# directives, and long (past 4 KiB, past 64 KiB).
PLAIN_STRINGS = ("", "x", "qmpcompat", " ", "é", "a\u0000b", "x" * 4097, "\n", "a\tb\x1b[0m\x7f",
                 "\u202eq", "\U0001f4a5", "a,b=c", "%s%n%x", "y" * 65537)
STRING_CATALOGUE: dict[str, tuple[JSON, ...]] = {
    "uri": ("unix:{tmpdir}/h.sock", f"unix:{{tmpdir}}/{LONG}", "unix:{tmpdir}/no/such/dir.sock",
            "tcp:127.0.0.1:{port}", "tcp:[::1]:{port}", "tcp:localhost:0", "tcp:127.0.0.1:65536",
            "tcp:127.0.0.1:", "file:{tmpdir}/h.file", "file:{tmpdir}/h.file,offset=4096",
            "file:{tmpdir}/h.file,offset=-1", "file:{tmpdir}/h.file,offset=x",
            "exec:cat > {tmpdir}/h.out", "exec:cat {tmpdir}/h.out", "fd:qmpcompat-nofd", "fd:0",
            "fd:", "vsock:1:{port}", "rdma:127.0.0.1:{port}", "", "bogus:x", "tcp:[::1]:x",
            "unix:", "file:", "tcp:127.0.0.1:{port},to=65535", "unix:{tmpdir}/a,b",
            "file:{tmpdir}/h.file,offset=18446744073709551615", "unix:{tmpdir}/é\n",
            f"unix:{{tmpdir}}/{'d' * 5000}"),
    "path": ("{tmpdir}/h.sock", f"{{tmpdir}}/{LONG}", "{tmpdir}/no/such/dir.sock", "{tmpdir}/",
             "{tmpdir}/é\u202e", "{tmpdir}/a\nb", "{tmpdir}/a,b", f"{{tmpdir}}/{'c' * 5000}"),
    "filename": ("{tmpdir}/h.file", "{tmpdir}/", "{tmpdir}/no/such/dir.file",
                 f"{{tmpdir}}/{'b' * 250}", "{tmpdir}/é\n", "{tmpdir}/a,b"),
    "host": ("127.0.0.1", "::1", "localhost", "127.0.0.2", "[::1]"),
    "port": ("{port}", "0", "65535", "65536", "-1", "", "port", " 1", "99999999999999999999"),
    "cid": ("1",),
    "str": ("qmpcompat-nofd", "", "0", "2", "-1", "x" * 300, "99999", "\n", "é"),
}
# exec argvs: the sink commands, and the empty argv (which cannot run anything).
ARGS_CATALOGUE: tuple[list[str], ...] = (SINK_ARGS, SINK_READ_ARGS, [])


def valid_scalar(json_type: str, member: str) -> JSON:
    """The safe default for a member called ``member`` of builtin ``json_type``
    (``array`` asks for a whole list, e.g. exec's ``args``; None if there is none)."""
    if member in SAFE_DEFAULTS:
        value = SAFE_DEFAULTS[member]
        if (json_type == "array") == isinstance(value, list):
            return list(value) if isinstance(value, list) else value
    if json_type == "array":
        return None
    plain: JSONObject = {"string": "qmpcompat", "int": 0, "number": 0, "boolean": False,
                         "null": None, "value": "qmpcompat"}
    return plain.get(json_type, "qmpcompat")
