"""QEMU's input rules: which error a malformed argument tree gets, in which
words, and which error comes first.

Learned from the real binaries (7.2 to 11.1, identical wording in all of them;
see docs/hunt.md for the table). The rules, from QEMU's QObject input visitor:

- QEMU visits an object's members in schema order (a union: base members, the
  tag among them, then the chosen branch's members), descending into each
  member as it goes; an object's unknown members are reported when the object
  is finished. The first problem met is the error; every error is GenericError.
- Member names are written as a path from the root: ``channels[0].addr.path``.
  Exceptions: an enum value and an integer range are reported with the bare
  member name (``'transport'``, ``'to' expects uint16_t``).
- Introspection shows every integer type as ``int``: a non-integer for a signed
  type says "Invalid parameter type ... expected: integer", for an unsigned one
  "Parameter ... expects uint64"; the schema cannot tell which.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

ERROR_CLASS = "GenericError"

# What the type error names as expected, per JSON type of the schema.
EXPECTED_WORD = {"string": "string", "boolean": "boolean", "number": "number",
                 "object": "object", "array": "array", "enum": "string", "int": "integer"}

INT_WHY = ("introspection shows every integer type as int; a signed member says "
           "'expected: integer', an unsigned one 'expects uint64'")
ALTERNATE_WHY = ("an alternate's type error names the alternate's C type, which "
                 "introspection masks")


@dataclass(frozen=True)
class Prediction:
    """The error QEMU must answer: exact ``desc``, or ``pattern`` with ``why`` it is not exact."""

    desc: str | None = None
    pattern: str | None = None
    why: str | None = None
    error_class: str = ERROR_CLASS

    def matches(self, error_class: str | None, desc: str | None) -> bool:
        if error_class != self.error_class or desc is None:
            return False
        if self.desc is not None:
            return desc == self.desc
        return re.fullmatch(self.pattern or "", desc) is not None

    def __str__(self) -> str:
        return f"{self.error_class}: {self.desc if self.desc is not None else f'/{self.pattern}/'}"


def missing(path: str) -> Prediction:
    return Prediction(f"Parameter '{path}' is missing")


def unexpected(path: str) -> Prediction:
    return Prediction(f"Parameter '{path}' is unexpected")


def bad_enum(name: str, value: str) -> Prediction:
    """An enum (or union tag) value the enum lacks: named by the bare member name."""
    return Prediction(f"Parameter '{name}' does not accept value '{value}'")


def wrong_type(path: str, kind: str) -> Prediction:
    """A value of the wrong JSON type for a member of ``kind`` (a JSON type of the
    schema, ``enum`` or ``alternate``)."""
    if kind == "int":
        signed = f"Invalid parameter type for '{path}', expected: integer"
        unsigned = f"Parameter '{path}' expects uint64"
        return Prediction(pattern=f"{re.escape(signed)}|{re.escape(unsigned)}", why=INT_WHY)
    if kind == "alternate":
        name = path.rsplit(".", 1)[-1]
        names = "|".join(sorted({re.escape(path), re.escape(name)}))
        return Prediction(pattern=f"Invalid parameter type for '(?:{names})', expected: \\S+",
                          why=ALTERNATE_WHY)
    return Prediction(f"Invalid parameter type for '{path}', expected: {EXPECTED_WORD[kind]}")
