"""Version ranges such as ``>=10.0,<11.0``, as used by vector expectations.

The rule, also written down in vectors/README.md:

- A range is clauses joined by commas; a version matches when it matches every
  clause. An empty range (or ``*``) matches every version.
- A clause is an operator (``>=``, ``>``, ``<=``, ``<``, ``==``, ``!=``) and a
  version of one to three dotted numbers.
- ``==X`` and ``==X.Y`` match every version that starts with those numbers
  (``==10.0`` matches 10.0.0 and 10.0.13); ``!=`` is its negation.
- For the other operators, missing numbers are zero: ``<11`` is ``<11.0.0``,
  ``>=10.0`` is ``>=10.0.0``.
- A QEMU version is its major.minor.micro as QEMU reports it; a development
  build (micro >= 50, e.g. 10.2.50) is compared as that number too.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from qmpcompat.types import Version

_CLAUSE = re.compile(r"^\s*(>=|<=|==|!=|>|<)\s*(\d+(?:\.\d+){0,2})\s*$")
_INF = Version(1 << 30, 0, 0)
_ZERO = Version(0, 0, 0)


class RangeError(ValueError):
    """A range string is not well-formed."""


def _pad(parts: tuple[int, ...]) -> Version:
    full = (*parts, 0, 0, 0)[:3]
    return Version(full[0], full[1], full[2])


def _next_prefix(parts: tuple[int, ...]) -> Version:
    """The first version after every version that starts with ``parts``."""
    bumped = (*parts[:-1], parts[-1] + 1)
    return _pad(bumped)


@dataclass(frozen=True)
class Clause:
    op: str
    parts: tuple[int, ...]

    def intervals(self) -> list[tuple[Version, Version]]:
        """Half-open intervals [lo, hi) of versions this clause matches."""
        v = _pad(self.parts)
        succ = Version(v[0], v[1], v[2] + 1)
        if self.op == ">=":
            return [(v, _INF)]
        if self.op == ">":
            return [(succ, _INF)]
        if self.op == "<":
            return [(_ZERO, v)]
        if self.op == "<=":
            return [(_ZERO, succ)]
        hi = _next_prefix(self.parts) if len(self.parts) < 3 else succ
        if self.op == "==":
            return [(v, hi)]
        return [(_ZERO, v), (hi, _INF)]  # !=

    def __str__(self) -> str:
        return self.op + ".".join(map(str, self.parts))


def _intersect(a: list[tuple[Version, Version]],
               b: list[tuple[Version, Version]]) -> list[tuple[Version, Version]]:
    out = []
    for lo1, hi1 in a:
        for lo2, hi2 in b:
            lo, hi = max(lo1, lo2), min(hi1, hi2)
            if lo < hi:
                out.append((lo, hi))
    return out


@dataclass(frozen=True)
class VersionRange:
    """A parsed range; ``str()`` gives its canonical spelling."""

    clauses: tuple[Clause, ...]

    @classmethod
    def parse(cls, text: str | None) -> VersionRange:
        if text is None or str(text).strip() in ("", "*"):
            return cls(())
        clauses = []
        for piece in str(text).split(","):
            m = _CLAUSE.match(piece)
            if not m:
                raise RangeError(f"bad version clause {piece.strip()!r} in {text!r} "
                                 "(want e.g. '>=10.0,<11.0')")
            clauses.append(Clause(m.group(1), tuple(int(p) for p in m.group(2).split("."))))
        rng = cls(tuple(clauses))
        if not rng.intervals():
            raise RangeError(f"range {text!r} matches no version")
        return rng

    def intervals(self) -> list[tuple[Version, Version]]:
        result = [(_ZERO, _INF)]
        for clause in self.clauses:
            result = _intersect(result, clause.intervals())
        return result

    def __contains__(self, version: Version) -> bool:
        return any(lo <= tuple(version) < hi for lo, hi in self.intervals())

    def overlaps(self, other: VersionRange) -> bool:
        return bool(_intersect(self.intervals(), other.intervals()))

    def __str__(self) -> str:
        return ",".join(map(str, self.clauses)) or "*"


PAIR_ARROW = "->"


def pair_label(source: Version, destination: Version) -> str:
    """How a cross-version pair is named in ``observed-on``: ``10.0.13->11.1.2``."""
    return f"{Version(*source).label}{PAIR_ARROW}{Version(*destination).label}"


def parse_pair_label(text: str) -> tuple[Version, Version] | None:
    """The source and destination of a pair label, or None if ``text`` is not one
    (``MAJOR.MINOR.MICRO->MAJOR.MINOR.MICRO``)."""
    match = re.fullmatch(r"(\d+\.\d+\.\d+)->(\d+\.\d+\.\d+)", text)
    return (Version.parse(match[1]), Version.parse(match[2])) if match else None
