"""The shared vocabulary of qmpcompat: JSON data, finding levels, case outcomes,
how a case's QEMU was had, QEMU versions and their ``qemu-LABEL`` ids.

These are the only definitions of these concepts; every other module imports
them from here. The module imports nothing else from the package, so anything
may use it. The shapes of the documents the package writes and reads back are
in ``qmpcompat.resultdoc`` (results.json, with the record of one case) and
``qmpcompat.historydoc`` (the schema history).
"""

from __future__ import annotations

import re
from enum import StrEnum
from typing import NamedTuple, TypeAlias

_NUMBER = re.compile(r"\d+")

JSON: TypeAlias = "dict[str, JSON] | list[JSON] | str | int | float | bool | None"
"""A JSON value: what ``json.loads`` gives, what QMP carries (arguments, replies,
events, the introspected schema), what a vector's data and a report hold."""
JSONObject: TypeAlias = "dict[str, JSON]"
"""A JSON object (a QMP reply's ``return`` of a query, a schema entity, a record)."""


def json_object(value: JSON) -> JSONObject:
    """``value`` when it is a JSON object; TypeError otherwise (data of another shape
    than its source promises)."""
    if isinstance(value, dict):
        return value
    raise TypeError(f"expected a JSON object, got {type(value).__name__}: {value!r:.200}")


def json_list(value: JSON) -> list[JSON]:
    """``value`` when it is a JSON array; TypeError otherwise."""
    if isinstance(value, list):
        return value
    raise TypeError(f"expected a JSON array, got {type(value).__name__}: {value!r:.200}")


def json_text(value: JSON) -> str | None:
    """None for JSON null (or a missing member's None), else the value as text (a
    string as it is)."""
    return None if value is None else str(value)


class Level(StrEnum):
    """How much a change (a schema finding, say) matters, lowest first."""

    INFO = "info"
    WARNING = "warning"
    BREAKING = "breaking"

    @property
    def rank(self) -> int:
        """0 for info, 1 for warning, 2 for breaking."""
        return LEVELS.index(self.value)

    def at_least(self, floor: str) -> bool:
        """True when this level is ``floor`` or above (``floor`` a level or its name)."""
        return self.rank >= Level(floor).rank


LEVELS: tuple[str, ...] = tuple(level.value for level in Level)
"""The level names, lowest first (for ``--fail-on`` choices)."""


def at_least(level: str, floor: str) -> bool:
    """True when the level named ``level`` is ``floor`` or above; False for a name
    that is no level (a record from elsewhere, say)."""
    return level in LEVELS and Level(level).at_least(floor)


class Outcome(StrEnum):
    """What became of one case (a vector or derived case on one binary)."""

    PASSED = "passed"
    FAILED = "failed"
    XFAILED = "xfailed"  # a recorded known defect showed
    SKIPPED = "skipped"
    ERROR = "error"  # the case could not be set up or its worker died

    @property
    def bad(self) -> bool:
        """True for the outcomes that fail a run (failed, error)."""
        return self in (Outcome.FAILED, Outcome.ERROR)


OUTCOMES: tuple[str, ...] = tuple(o.value for o in Outcome)
"""The outcome names in report order."""


class RunMode(StrEnum):
    """How the QEMU a case ran on was had: started for it (exec'd), forked for it
    from a fork server, or reused after it served earlier cases (persistent mode)."""

    FRESH = "fresh"
    FORKED = "forked"
    REUSED = "reused"


class Version(NamedTuple):
    """A QEMU version, major.minor.micro as QEMU reports it (a development build
    such as 10.2.50 is that number too). A tuple: it orders, slices and compares
    with plain ``(int, int, int)`` tuples."""

    major: int
    minor: int
    micro: int

    @classmethod
    def parse(cls, text: str) -> Version:
        """The first three numbers in ``text`` (missing ones are 0):
        ``"10.0.13"``, ``"1:10.0.2+ds-2"`` -> 10.0.2, ``"11"`` -> 11.0.0."""
        parts = [int(p) for p in _NUMBER.findall(text)[:3]]
        parts += [0] * (3 - len(parts))
        return cls(parts[0], parts[1], parts[2])

    @property
    def label(self) -> str:
        """``"10.0.13"``."""
        return f"{self.major}.{self.minor}.{self.micro}"

    @property
    def line(self) -> tuple[int, int]:
        """The release line, ``(10, 0)``."""
        return (self.major, self.minor)


def version_prefix(spec: str, version: str) -> bool:
    """True when the dotted components of ``spec`` start ``version``'s:
    ``10.0`` matches ``10.0.13``, ``10`` matches ``10.2.0``, ``10.0`` not ``10.01.0``."""
    want = spec.split(".")
    return version.split(".")[:len(want)] == want


def label_order(label: str) -> tuple[Version, str]:
    """Sort key for a run's QEMU labels (``10.0.13``, ``10.0.13-2`` when two builds
    share a version, or a ``qemu-LABEL`` id): by version, then by label."""
    return Version.parse(strip_qemu_id(label)), label


QEMU_ID_PREFIX = "qemu-"


def qemu_id(label: str) -> str:
    """The id of a QEMU build in test ids, JUnit suites and schema names: ``qemu-LABEL``."""
    return f"{QEMU_ID_PREFIX}{label}"


def strip_qemu_id(text: str) -> str:
    """``qemu-LABEL`` -> ``LABEL``; anything else unchanged."""
    return text.removeprefix(QEMU_ID_PREFIX)


def case_id(case: str, label: str) -> str:
    """The parameter id of one case on one build: ``CASE-qemu-LABEL``."""
    return f"{case}-{qemu_id(label)}"


_CASE_ID = re.compile(r"^(?P<case>.+)-qemu-(?P<label>[^\]]+)$")


def split_case_id(text: str) -> tuple[str, str] | None:
    """``CASE-qemu-LABEL`` -> ``(CASE, LABEL)``, or None when ``text`` is no case id."""
    match = _CASE_ID.match(text)
    return (match["case"], match["label"]) if match else None
