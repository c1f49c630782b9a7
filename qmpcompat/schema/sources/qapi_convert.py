"""QAPI source definitions -> the entries ``query-qmp-schema`` would return.

Type names stay real (introspection masks them); everything else follows
qapi/introspect.json: builtin integer types and ``size`` become ``int``, a
struct's base and a union's base are flattened into ``members``, optional
members carry ``default: null``, missing arguments or returns are the empty
object ``q_empty``, enums have both ``values`` and ``members``. Conditionals
(``if``) are evaluated against a set of defined symbols.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass

from qmpcompat.errors import SchemaError
from qmpcompat.schema.model.query import Entry, Member
from qmpcompat.schema.sources.qapi_source import Expr
from qmpcompat.types import JSON, JSONObject

BUILTINS = {
    "str": ("str", "string"), "number": ("number", "number"), "bool": ("bool", "boolean"),
    "null": ("null", "null"), "any": ("any", "value"),
    **{name: ("int", "int") for name in (
        "int", "int8", "int16", "int32", "int64", "uint8", "uint16", "uint32", "uint64", "size")},
}
QTYPE = ["none", "qnull", "qnum", "qstring", "qdict", "qlist", "qbool"]
EMPTY = "q_empty"
META_KEYS = ("struct", "union", "alternate", "enum", "command", "event")

# Symbols true for the Linux x86_64 system emulator as Debian builds it; with
# these (and BLKIO_DEFINES where they apply), the whole QAPI source of Debian's
# 7.2 and 10.0 source packages converts to exactly what their binaries
# introspect.
DEFAULT_DEFINES = frozenset({
    "CONFIG_AUDIO_ALSA", "CONFIG_AUDIO_JACK", "CONFIG_AUDIO_OSS", "CONFIG_AUDIO_PA",
    "CONFIG_AUDIO_PIPEWIRE", "CONFIG_AUDIO_SDL", "CONFIG_BRLAPI", "CONFIG_CURSES",
    "CONFIG_DBUS_DISPLAY", "CONFIG_EBPF", "CONFIG_FDT", "CONFIG_FUSE", "CONFIG_GBM", "CONFIG_GTK",
    "CONFIG_KVM", "CONFIG_LIBPMEM", "CONFIG_LINUX", "CONFIG_LINUX_IO_URING", "CONFIG_OPENGL",
    "CONFIG_PIXMAN", "CONFIG_POSIX", "CONFIG_REPLICATION", "CONFIG_SDL", "CONFIG_SECRET_KEYRING",
    "CONFIG_SLIRP", "CONFIG_SPICE", "CONFIG_SPICE_PROTOCOL", "CONFIG_TCG", "CONFIG_TPM",
    "CONFIG_VDUSE_BLK_EXPORT", "CONFIG_VHOST_CRYPTO", "CONFIG_VHOST_USER_BLK_SERVER",
    "CONFIG_VNC", "CONFIG_ZSTD", "HAVE_CHARDEV_PARALLEL", "HAVE_CHARDEV_SERIAL",
    "HAVE_HOST_BLOCK_DEVICE", "HAVE_IPPROTO_MPTCP", "HAVE_TCP_KEEPCNT", "HAVE_TCP_KEEPIDLE",
    "HAVE_TCP_KEEPINTVL", "TARGET_I386", "TARGET_X86_64",
})
# Debian 13 and later build with libblkio; Debian 12 (bookworm, and its
# backports) has no libblkio.
BLKIO_DEFINES = frozenset({"CONFIG_BLKIO", "CONFIG_BLKIO_VHOST_VDPA_FD"})


def defines_for(debian_version: str = "") -> frozenset[str]:
    """The symbols for the QAPI source of a Debian build (by its Debian version;
    '' for upstream source: as the newest Debian release builds it)."""
    if re.search(r"deb12|bpo12", debian_version):
        return DEFAULT_DEFINES
    return DEFAULT_DEFINES | BLKIO_DEFINES


@dataclass(frozen=True)
class Conditions:
    """Symbols to add to or take from the defaults for QAPI conditionals."""

    define: frozenset[str] = frozenset()
    undefine: frozenset[str] = frozenset()

    def apply(self, base: frozenset[str]) -> frozenset[str]:
        return (base | self.define) - self.undefine


def if_true(cond: JSON, defines: frozenset[str], where: tuple[str, int]) -> bool:
    """Evaluate a QAPI ``if``: a symbol, or ``{'all'|'any': [...]}``, ``{'not': c}``."""
    if cond is None:
        return True
    if isinstance(cond, str):
        return cond in defines
    if isinstance(cond, dict) and len(cond) == 1:
        (op, arg), = cond.items()
        if op == "not":
            return not if_true(arg, defines, where)
        if op in ("all", "any") and isinstance(arg, list) and arg:
            results = [if_true(a, defines, where) for a in arg]
            return all(results) if op == "all" else any(results)
    raise SchemaError(f"malformed 'if': {cond!r}", *where)


class Converter:
    """Builds the entry list of one schema's definitions."""

    def __init__(self, exprs: Iterable[Expr], defines: frozenset[str]) -> None:
        self.defines = defines
        self.defs: dict[str, Expr] = {}
        for expr in exprs:
            meta = [k for k in META_KEYS if k in expr.data]
            if len(meta) != 1:
                raise SchemaError("a definition needs exactly one of " + ", ".join(META_KEYS),
                                  expr.file, expr.line)
            name = expr.data[meta[0]]
            if not isinstance(name, str):
                raise SchemaError(f"{meta[0]} name must be a string", expr.file, expr.line)
            if not self._keep(expr.data, expr):
                continue
            if name in self.defs:
                prev = self.defs[name]
                raise SchemaError(f"{name!r} is already defined at {prev.file}:{prev.line}",
                                  expr.file, expr.line)
            self.defs[name] = expr
        self.entries: dict[str, Entry] = {}

    def _keep(self, item: JSON, expr: Expr) -> bool:
        return not isinstance(item, dict) or if_true(item.get("if"), self.defines,
                                                    (expr.file, expr.line))

    def _features(self, raw: JSON, expr: Expr) -> list[str]:
        out = []
        if raw and not isinstance(raw, list):
            raise SchemaError("'features' must be a list", expr.file, expr.line)
        for feat in raw if isinstance(raw, list) else ():
            name = feat.get("name") if isinstance(feat, dict) else feat
            if self._keep(feat, expr):
                out.append(str(name))
        return out

    def ref(self, typ: JSON, expr: Expr) -> str:
        """The entry name for a type reference (``'T'`` or ``['T']``), creating
        builtin, array and implicit entries as needed."""
        if isinstance(typ, list):
            if len(typ) != 1:
                raise SchemaError("an array type names exactly one element type",
                                  expr.file, expr.line)
            element = self.ref(typ[0], expr)
            name = f"[{element}]"
            self.entries.setdefault(name, {"name": name, "meta-type": "array",
                                           "element-type": element})
            return name
        if not isinstance(typ, str):
            raise SchemaError(f"a type must be a name, found {typ!r}", expr.file, expr.line)
        if typ in BUILTINS:
            name, json_type = BUILTINS[typ]
            self.entries.setdefault(name, {"name": name, "meta-type": "builtin",
                                           "json-type": json_type})
            return name
        if typ == "QType":
            self.entries.setdefault(typ, {"name": typ, "meta-type": "enum", "values": QTYPE,
                                          "members": [{"name": v} for v in QTYPE]})
            return typ
        if typ == EMPTY:
            self.entries.setdefault(EMPTY, {"name": EMPTY, "meta-type": "object", "members": []})
            return EMPTY
        if typ not in self.defs:
            raise SchemaError(f"type {typ!r} is not defined (or its 'if' is false)",
                              expr.file, expr.line)
        if typ not in self.entries:
            self.entries[typ] = {"name": typ}  # placeholder against recursion
            self.entries[typ] = self.define(self.defs[typ])
        return typ

    def members(self, data: JSON, expr: Expr) -> list[Member]:
        """Introspection members of a ``data`` dict of a struct or command."""
        if data is None:
            return []
        if not isinstance(data, dict):
            raise SchemaError("'data' must be an object here", expr.file, expr.line)
        out = []
        for key, spec in data.items():
            if not self._keep(spec, expr):
                continue
            typ = spec.get("type") if isinstance(spec, dict) else spec
            member: Member = {"name": key.removeprefix("*"), "type": self.ref(typ, expr)}
            if key.startswith("*"):
                member["default"] = None
            if isinstance(spec, dict) and spec.get("features"):
                member["features"] = self._features(spec["features"], expr)
            out.append(member)
        return out

    def base_members(self, base: JSON, expr: Expr) -> list[Member]:
        """Members of a base: a named struct (with its own bases) or an inline dict."""
        if base is None:
            return []
        if isinstance(base, dict):
            return self.members(base, expr)
        entry = self.entries.get(self.ref(base, expr)) or Entry()
        if entry.get("meta-type") != "object" or entry.get("variants"):
            raise SchemaError(f"base {base!r} must be a struct", expr.file, expr.line)
        return [m.copy() for m in entry["members"]]

    def define(self, expr: Expr) -> Entry:
        """The entry of one named definition."""
        data = expr.data
        kind = next(k for k in META_KEYS if k in data)
        entry: Entry = {"name": str(data[kind])}  # a string: checked when it was read
        features = self._features(data.get("features"), expr)
        if features:
            entry["features"] = features
        if kind == "enum":
            listed = data.get("data") or []
            if not isinstance(listed, list):
                raise SchemaError("an enum's 'data' must be a list", expr.file, expr.line)
            values = [v for v in listed if self._keep(v, expr)]
            members: list[Member] = []
            for value in values:
                member: Member = {"name": _name(value, "an enum value", expr)}
                if isinstance(value, dict) and value.get("features"):
                    member["features"] = self._features(value["features"], expr)
                members.append(member)
            return {**entry, "meta-type": "enum", "values": [m["name"] for m in members],
                    "members": members}
        if kind == "struct":
            return {**entry, "meta-type": "object",
                    "members": self.base_members(data.get("base"), expr)
                    + self.members(data.get("data"), expr)}
        if kind == "union":
            return {**entry, **self.union(data, expr)}
        if kind == "alternate":
            specs = _object(data.get("data"), "an alternate's 'data'", expr)
            branches = [spec.get("type") if isinstance(spec, dict) else spec
                        for spec in specs.values() if self._keep(spec, expr)]
            return {**entry, "meta-type": "alternate",
                    "members": [{"type": self.ref(t, expr)} for t in branches]}
        return {**entry, **self.routine(kind, data, expr)}

    def union(self, data: JSONObject, expr: Expr) -> Entry:
        if "discriminator" not in data:
            return self.simple_union(data, expr)
        members = self.base_members(data.get("base"), expr)
        tag = data.get("discriminator")
        if not isinstance(tag, str) or not any(m["name"] == tag for m in members):
            raise SchemaError(f"discriminator {tag!r} is not a member of the base",
                              expr.file, expr.line)
        variants: list[Member] = []
        for case, spec in _object(data.get("data"), "a union's 'data'", expr).items():
            if self._keep(spec, expr):
                typ = spec.get("type") if isinstance(spec, dict) else spec
                variants.append({"case": case, "type": self.ref(typ, expr)})
        return {"meta-type": "object", "members": members, "tag": tag, "variants": variants}

    def simple_union(self, data: JSONObject, expr: Expr) -> Entry:
        """A union without discriminator (QEMU before 7.0): tag ``type`` of an
        implicit enum, each branch wrapped as ``{'data': T}``."""
        cases = [(case, spec) for case, spec
                 in _object(data.get("data"), "a union's 'data'", expr).items()
                 if self._keep(spec, expr)]
        kind = f"{data['union']}Kind"
        self.entries[kind] = {"name": kind, "meta-type": "enum", "values": [c for c, _ in cases],
                              "members": [{"name": c} for c, _ in cases]}
        variants: list[Member] = []
        for case, spec in cases:
            typ = spec.get("type") if isinstance(spec, dict) else spec
            wrapper = f"q_obj_{self.ref(typ, expr)}-wrapper"
            self.entries[wrapper] = {"name": wrapper, "meta-type": "object",
                                     "members": [{"name": "data", "type": self.ref(typ, expr)}]}
            variants.append({"case": case, "type": wrapper})
        return {"meta-type": "object", "members": [{"name": "type", "type": kind}],
                "tag": "type", "variants": variants}

    def routine(self, kind: str, data: JSONObject, expr: Expr) -> Entry:
        """A command's or event's entry; inline arguments become ``q_obj_NAME-arg``."""
        args = data.get("data")
        if args is None:
            arg_type = self.ref(EMPTY, expr)
        elif isinstance(args, dict):
            arg_type = f"q_obj_{data[kind]}-arg"
            self.entries[arg_type] = {"name": arg_type, "meta-type": "object",
                                      "members": self.members(args, expr)}
        else:
            arg_type = self.ref(args, expr)
        entry: Entry = {"meta-type": kind, "arg-type": arg_type}
        if kind == "command":
            returns = data.get("returns")
            entry["ret-type"] = self.ref(EMPTY if returns is None else returns, expr)
            if data.get("allow-oob"):
                entry["allow-oob"] = True
        return entry

    def convert(self) -> list[Entry]:
        """Entries of every command and event and of all that they reach."""
        for name, expr in self.defs.items():
            if "command" in expr.data or "event" in expr.data:
                self.ref(name, expr)
        return list(self.entries.values())


def _object(value: JSON, what: str, expr: Expr) -> JSONObject:
    """``value`` when it is an object, {} when it is missing or empty; SchemaError
    naming ``what`` otherwise."""
    if not value:
        return {}
    if not isinstance(value, dict):
        raise SchemaError(f"{what} must be an object", expr.file, expr.line)
    return value


def _name(value: JSON, what: str, expr: Expr) -> str:
    """The name of ``value``: itself when a string, else its ``name`` member (a
    string; SchemaError naming ``what`` otherwise)."""
    name = value.get("name") if isinstance(value, dict) else value
    if not isinstance(name, str):
        raise SchemaError(f"{what} must be a name, found {value!r}", expr.file, expr.line)
    return name


def cond_text(cond: JSON) -> str:
    """A QAPI ``if`` as text: ``CONFIG_SPICE``, ``CONFIG_A and not CONFIG_B``."""
    if isinstance(cond, str):
        return cond
    if isinstance(cond, dict) and len(cond) == 1:
        (op, arg), = cond.items()
        if op == "not":
            return f"not {cond_text(arg)}"
        if op in ("all", "any") and isinstance(arg, list):
            inner = f" {'and' if op == 'all' else 'or'} ".join(cond_text(a) for a in arg)
            return f"({inner})" if len(arg) > 1 else inner
    return repr(cond)


def conditionals(exprs: Iterable[Expr]) -> dict[str, dict[str, str]]:
    """Everything of a QAPI source that has an ``if``, whatever its truth:
    {kind: {name: condition}} for kinds command, event, member, value and branch
    (members, enum values and union/alternate branches by their own name)."""
    out: dict[str, dict[str, str]] = {k: {} for k in ("command", "event", "member", "value",
                                                     "branch")}

    def note(kind: str, name: str, cond: JSON) -> None:
        text = cond_text(cond)
        old = out[kind].get(name)
        out[kind][name] = text if old in (None, text) else f"{old} or {text}"

    for expr in exprs:
        data = expr.data
        kind = next((k for k in META_KEYS if k in data), "")
        if kind in ("command", "event") and data.get("if") is not None:
            note(kind, str(data[kind]), data["if"])
        body = data.get("data")
        if kind == "enum" and isinstance(body, list):
            for value in body:
                if isinstance(value, dict) and value.get("if") is not None:
                    note("value", str(value.get("name")), value["if"])
        elif isinstance(body, dict):
            sub = "branch" if kind in ("union", "alternate") else "member"
            for key, spec in body.items():
                if isinstance(spec, dict) and spec.get("if") is not None:
                    note(sub, key.removeprefix("*"), spec["if"])
        base = data.get("base")
        if isinstance(base, dict):
            for key, spec in base.items():
                if isinstance(spec, dict) and spec.get("if") is not None:
                    note("member", key.removeprefix("*"), spec["if"])
    return out


def slice_conditions(exprs: Iterable[Expr], names: set[str], defines: frozenset[str]) -> list[str]:
    """How the ``if:`` conditions of the definitions named ``names`` (a schema
    slice, by real type and command names) were evaluated with ``defines``: one
    line each, ``Type member NAME: CONDITION (true|false)``, in source order."""
    out = []
    for expr in exprs:
        data = expr.data
        kind = next((k for k in META_KEYS if k in data), "")
        name = str(data.get(kind, ""))
        if name not in names:
            continue
        where = (expr.file, expr.line)
        items: list[tuple[str, JSON]] = [(kind, data.get("if"))]
        body, base = data.get("data"), data.get("base")
        if kind == "enum" and isinstance(body, list):
            items += [(f"value {v.get('name')}", v.get("if")) for v in body if isinstance(v, dict)]
        for part in (body, base):
            if isinstance(part, dict) and kind != "enum":
                sub = "branch" if kind in ("union", "alternate") else "member"
                items += [(f"{sub} {k.removeprefix('*')}", v.get("if")) for k, v in part.items()
                          if isinstance(v, dict)]
        out += [f"{name} {what}: {cond_text(cond)} ({str(if_true(cond, defines, where)).lower()})"
                for what, cond in items if cond is not None]
    return out


def to_entries(exprs: Iterable[Expr], defines: frozenset[str] | None = None,
               debian_version: str = "") -> list[Entry]:
    """The introspection entries (with real type names) of QAPI definitions;
    conditionals use ``defines``, by default those of ``debian_version``."""
    chosen = defines if defines is not None else defines_for(debian_version)
    return Converter(exprs, chosen).convert()
