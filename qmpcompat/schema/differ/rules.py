"""Classifying schema changes by QEMU's documented compatibility rules.

Each rule has a stable id, a level (breaking, warning, info) and a one-line
explanation (docs/devel/qapi-code-gen.rst, "Compatibility considerations").
What a change means depends on its direction: ``input`` (command arguments),
``output`` (command returns, events) or ``both`` (a type used both ways must
obey both rule sets, so the stricter rule wins).
"""

from __future__ import annotations

import hashlib
from dataclasses import asdict, dataclass, replace

from qmpcompat.schema.differ.diff import RawChange
from qmpcompat.types import JSON, JSONObject, Level

RULES: dict[str, tuple[str, str]] = {
    "COMMAND_ADDED": ("info", "adding a command is compatible"),
    "COMMAND_REMOVED": ("breaking", "removing a command breaks every client that uses it"),
    "EVENT_ADDED": ("info", "adding an event is compatible"),
    "EVENT_REMOVED": ("breaking", "clients waiting for a removed event wait forever"),
    "TYPE_ADDED": ("info", "a type that did not exist before is compatible"),
    "TYPE_REMOVED": ("breaking", "every use of a removed type is gone"),
    "DEPRECATED_REMOVED": ("warning", "withdrawn after its 'deprecated' feature announced it"),
    "UNSTABLE_REMOVED": ("info", "'unstable' interfaces may change or go at any time"),
    "UNSTABLE_CHANGED": ("info", "the command or event is 'unstable': it may change at any"
                                 " time"),
    "INPUT_OPTIONAL_MEMBER_ADDED": ("info", "a new optional argument is compatible"),
    "INPUT_REQUIRED_MEMBER_ADDED": ("breaking", "a new mandatory argument breaks existing calls"),
    "INPUT_MEMBER_REMOVED": ("breaking", "calls passing a removed argument are now rejected"),
    "INPUT_MEMBER_MADE_OPTIONAL": ("info", "making a mandatory argument optional is compatible"),
    "INPUT_MEMBER_MADE_REQUIRED": ("breaking", "calls omitting the argument are now rejected"),
    "OUTPUT_MEMBER_ADDED": ("info", "clients must ignore unknown members of returns and events"),
    "OUTPUT_MEMBER_REMOVED": ("breaking", "clients reading a removed output member break"),
    "OUTPUT_OPTIONAL_MEMBER_REMOVED": ("warning",
                                       "an optional output member was never guaranteed, but"
                                       " clients that use it lose it"),
    "OUTPUT_MEMBER_MADE_OPTIONAL": ("breaking", "clients relying on the member may not get it"),
    "OUTPUT_MEMBER_MADE_REQUIRED": ("info", "an output member that is always sent is compatible"),
    "INPUT_ENUM_VALUE_ADDED": ("info", "accepting a new enum value is compatible"),
    "INPUT_ENUM_VALUE_REMOVED": ("breaking", "calls passing a removed enum value are rejected"),
    "OUTPUT_ENUM_VALUE_ADDED": ("warning", "clients may receive an enum value they do not know"),
    "OUTPUT_ENUM_VALUE_REMOVED": ("info", "a value that can no longer be sent only shows in"
                                          " introspection"),
    "INPUT_BRANCH_ADDED": ("info", "a new union or alternate branch is compatible"),
    "INPUT_BRANCH_REMOVED": ("breaking", "calls using a removed branch are rejected"),
    "OUTPUT_BRANCH_ADDED": ("warning", "clients may receive a branch they do not know"),
    "OUTPUT_BRANCH_REMOVED": ("info", "a branch that can no longer be sent only shows in"
                                      " introspection"),
    "INPUT_TYPE_TO_ALTERNATE": ("info", "an argument that became an alternate including its"
                                        " old type still accepts what it did"),
    "OUTPUT_TYPE_TO_ALTERNATE": ("breaking", "clients may receive a JSON type they do not"
                                             " expect"),
    "INPUT_STR_TO_ENUM": ("warning", "introspection-only on the wire, but strings outside the"
                                     " enum are now rejected"),
    "OUTPUT_STR_TO_ENUM": ("info", "an output string became an enum: the wire is unchanged"),
    "INPUT_ENUM_TO_STR": ("info", "an argument enum became a string: anything it took still"
                                  " goes"),
    "OUTPUT_ENUM_TO_STR": ("warning", "clients may receive strings outside the old enum"),
    "TYPE_CHANGED": ("breaking", "the JSON type on the wire changed"),
    "UNION_STRUCTURE_CHANGED": ("warning", "a type became, or stopped being, a union"),
    "UNION_TAG_CHANGED": ("breaking", "the member that selects a union branch changed"),
    "FEATURE_DEPRECATED_ADDED": ("warning", "deprecated: may be withdrawn under the deprecation"
                                            " policy; stop using it"),
    "FEATURE_UNSTABLE_ADDED": ("warning", "unstable: may change or go at any time"),
    "FEATURE_ADDED": ("info", "a feature flag was added"),
    "FEATURE_REMOVED": ("info", "a feature flag was removed"),
    "ALLOW_OOB_CHANGED": ("info", "whether the command may run out-of-band changed"),
    "SINCE_MISMATCH": ("warning", "the QAPI doc comment's Since: names another release than"
                                  " the first one the schema history shows it in"),
    "CONFIG_CONDITION": ("info", "present in one side only because of its 'if' condition: a "
                                 "configuration difference between builds of the same version, "
                                 "not a compatibility change"),
    "IGNORE_REVIEW_OVERDUE": ("breaking", "an accepted change's review-by release has passed: it "
                                          "accepts nothing until someone looks at it again"),
}

# change -> (rule for input, rule for output)
BY_DIRECTION: dict[str, tuple[str, str]] = {
    "member-added-optional": ("INPUT_OPTIONAL_MEMBER_ADDED", "OUTPUT_MEMBER_ADDED"),
    "member-added-required": ("INPUT_REQUIRED_MEMBER_ADDED", "OUTPUT_MEMBER_ADDED"),
    "member-removed-required": ("INPUT_MEMBER_REMOVED", "OUTPUT_MEMBER_REMOVED"),
    "member-removed-optional": ("INPUT_MEMBER_REMOVED", "OUTPUT_OPTIONAL_MEMBER_REMOVED"),
    "made-optional": ("INPUT_MEMBER_MADE_OPTIONAL", "OUTPUT_MEMBER_MADE_OPTIONAL"),
    "made-required": ("INPUT_MEMBER_MADE_REQUIRED", "OUTPUT_MEMBER_MADE_REQUIRED"),
    "value-added": ("INPUT_ENUM_VALUE_ADDED", "OUTPUT_ENUM_VALUE_ADDED"),
    "value-removed": ("INPUT_ENUM_VALUE_REMOVED", "OUTPUT_ENUM_VALUE_REMOVED"),
    "branch-added": ("INPUT_BRANCH_ADDED", "OUTPUT_BRANCH_ADDED"),
    "branch-removed": ("INPUT_BRANCH_REMOVED", "OUTPUT_BRANCH_REMOVED"),
    "to-alternate": ("INPUT_TYPE_TO_ALTERNATE", "OUTPUT_TYPE_TO_ALTERNATE"),
    "str-to-enum": ("INPUT_STR_TO_ENUM", "OUTPUT_STR_TO_ENUM"),
    "enum-to-str": ("INPUT_ENUM_TO_STR", "OUTPUT_ENUM_TO_STR"),
}


@dataclass(frozen=True)
class Finding:
    """One classified change between two schemas."""

    old: str
    new: str
    root: str
    path: str
    change: str
    rule: str
    level: Level
    direction: str
    explanation: str

    @property
    def fingerprint(self) -> str:
        """Stable id of the change (independent of the inputs compared)."""
        return hashlib.sha1(f"{self.rule}|{self.path}".encode()).hexdigest()[:12]

    def to_json(self) -> JSONObject:
        return {**asdict(self), "fingerprint": self.fingerprint}


def conditional_kind(path: tuple[str, ...]) -> tuple[str, str] | None:
    """(kind, name) of the thing a raw change's ``path`` adds or removes, in the
    kinds of ``qapi_convert.conditionals``; None for other changes."""
    if len(path) == 1:
        return ("command|event", path[0])
    kind = {"members": "member", "values": "value", "variants": "branch",
            "branches": "branch"}.get(path[-2])
    return (kind, path[-1]) if kind else None


def as_configuration(finding: Finding, condition: str, off_in: str) -> Finding:
    """``finding`` reclassified: its thing is there or not because ``condition``
    is off in ``off_in`` (a configuration difference, level info)."""
    level, explanation = RULES["CONFIG_CONDITION"]
    return replace(finding, rule="CONFIG_CONDITION", level=Level(level), explanation=explanation,
                   change=f"{finding.change} (if: {condition}, off in {off_in})")


def query_path(path: tuple[str, ...], root_kind: str) -> str:
    """A model path in libvirt query syntax (``migrate/arg-type/channels/addr/+file``);
    ``^v`` an enum value, ``$f`` a feature, ``|kind`` an alternate branch."""
    out = [path[0]]
    parts = list(path[1:])
    i = 0
    while i < len(parts):
        key = parts[i]
        nxt = parts[i + 1] if i + 1 < len(parts) else None
        if root_kind in ("command", "event") and i == 0 and key in ("arg", "ret"):
            out.append(f"{key}-type")
        elif key in ("members", "variants", "values", "features", "branches") and nxt is not None:
            prefix = {"members": "", "variants": "+", "values": "^", "features": "$",
                      "branches": "|"}[key]
            out.append(prefix + nxt)
            i += 1
        elif key in ("tag", "allow-oob", "variants"):
            out.append(f"({key})")
        i += 1
    return "/".join(out)


def _flags(holder: JSON) -> JSONObject:
    flags = holder.get("features", {}) if isinstance(holder, dict) else {}
    return flags if isinstance(flags, dict) else {}


def _json_kind(node: JSON) -> str:
    if isinstance(node, str):
        return node
    return str(node.get("kind")) if isinstance(node, dict) else type(node).__name__


def describe(change: RawChange) -> tuple[str, str]:
    """(change id, human text) for one raw change; ids in BY_DIRECTION depend on
    the direction, the others are rule ids already."""
    path, op, old, new = change.path, change.op, change.old, change.new
    what = path[-2] if len(path) >= 2 else ""
    if len(path) == 1:
        kind = _json_kind(new if op == "added" else old)
        noun = {"command": "COMMAND", "event": "EVENT"}.get(kind, "TYPE")
        if op == "removed":
            return _removal(old, f"{noun}_REMOVED"), f"{kind} removed"
        return f"{noun}_ADDED", f"{kind} added"
    if what == "members" and op in ("added", "removed"):
        node = new if op == "added" else old
        opt = "optional" if isinstance(node, dict) and node.get("optional") else "required"
        if op == "added":
            return f"member-added-{opt}", f"{opt} member added"
        return _removal(node, f"member-removed-{opt}"), f"{opt} member removed"
    if path[-1] == "optional":
        return ("made-optional", "became optional") if new else ("made-required",
                                                                 "became required")
    if what == "values":
        if op == "added":
            return "value-added", "enum value added"
        return _removal(old, "value-removed"), "enum value removed"
    if what in ("variants", "branches") and op in ("added", "removed"):
        noun = "union branch" if what == "variants" else "alternate branch"
        return f"branch-{op}", f"{noun} {op}"
    if what == "features":
        feature = path[-1]
        if op == "removed":
            return "FEATURE_REMOVED", f"feature '{feature}' removed"
        rule = {"deprecated": "FEATURE_DEPRECATED_ADDED",
                "unstable": "FEATURE_UNSTABLE_ADDED"}.get(feature, "FEATURE_ADDED")
        return rule, f"feature '{feature}' added"
    if path[-1] == "variants":
        return "UNION_STRUCTURE_CHANGED", f"union branches {op}"
    if path[-1] == "tag":
        return "UNION_TAG_CHANGED", f"union tag {old!r} -> {new!r}"
    if path[-1] == "allow-oob":
        return "ALLOW_OOB_CHANGED", f"allow-oob {old} -> {new}"
    return _retyped(old, new)


def _removal(node: JSON, otherwise: str) -> str:
    flags = _flags(node)
    if "deprecated" in flags:
        return "DEPRECATED_REMOVED"
    if "unstable" in flags:
        return "UNSTABLE_REMOVED"
    return otherwise


def _retyped(old: JSON, new: JSON) -> tuple[str, str]:
    text = f"type {_json_kind(old)} -> {_json_kind(new)}"
    branches = new.get("branches", {}) if isinstance(new, dict) else None
    if isinstance(new, dict) and new.get("kind") == "alternate" and \
            isinstance(branches, dict) and old in branches.values():
        return "to-alternate", text
    if old == "string" and _json_kind(new) == "enum":
        return "str-to-enum", text
    if _json_kind(old) == "enum" and new == "string":
        return "enum-to-str", text
    return "TYPE_CHANGED", text


def classify(change: RawChange, direction: str, root_kind: str, old_label: str,
             new_label: str, removed_flags: frozenset[str] = frozenset(),
             unstable: bool = False) -> Finding:
    """The finding for one raw change of a root used in ``direction``.

    ``removed_flags`` are features of a removed thing that its node does not
    carry (a union branch's tag value); ``unstable`` says the root command or
    event is unstable, which turns anything stricter than info into
    UNSTABLE_CHANGED."""
    if root_kind in ("command", "event") and len(change.path) > 1:
        direction = "output" if root_kind == "event" or change.path[1] == "ret" else "input"
    key, text = describe(change)
    if change.op == "removed" and key in BY_DIRECTION:
        key = _removal({"features": dict.fromkeys(removed_flags, True)}, key)
    if key in BY_DIRECTION:
        pair = BY_DIRECTION[key]
        choices = {"input": [pair[0]], "output": [pair[1]]}.get(direction, list(pair))
        rule = max(choices, key=lambda r: Level(RULES[r][0]).rank)
    else:
        rule = key
    if unstable and len(change.path) > 1 and Level(RULES[rule][0]).rank > 0:
        rule = "UNSTABLE_CHANGED"
    level, explanation = RULES[rule]
    return Finding(old_label, new_label, change.path[0], query_path(change.path, root_kind),
                   text, rule, Level(level), direction, explanation)
