"""Regular expressions that come from data files (a vector's ``desc-pattern``
and ``migration-error``, the same keys of known defects and pair vectors), run
with a bounded cost.

They run on RE2 (the ``google-re2`` package), whose matching time is linear in
the text's length whatever the pattern: a nested alternation such as
``(a|aa)+b`` that keeps Python's ``re`` backtracking for minutes (measured:
0.41 s at 30 characters, doubling with each one more) answers in microseconds.
RE2 also caps a compiled pattern's memory (8 MiB), so a pattern that would
grow too large is refused when it is read, as a vector error. Its syntax is
Python's without backreferences and lookaround (``\\1``, ``(?=``, ``(?<=``),
``\\Z`` (use ``\\z``) and possessive forms; ``$`` matches only at the very end.
Every pattern the vectors hold is in that subset (lint checks it).
"""

from __future__ import annotations

import functools

import re2

MAX_LENGTH = 2000  # characters of one pattern

_OPTIONS = re2.Options()
_OPTIONS.log_errors = False  # RE2 would print its parse errors on stderr as well


class PatternError(ValueError):
    """``pattern`` is no regular expression RE2 takes; the message says why."""


@functools.lru_cache(maxsize=1024)
def compile_pattern(pattern: str) -> re2._Regexp:
    """``pattern`` compiled; PatternError when RE2 refuses it or it is too long."""
    if len(pattern) > MAX_LENGTH:
        raise PatternError(f"too long ({len(pattern)} characters; at most {MAX_LENGTH})")
    try:
        return re2.compile(pattern, options=_OPTIONS)
    except re2.error as exc:
        reason = exc.args[0] if exc.args else "invalid"
        text = reason.decode("utf-8", "replace") if isinstance(reason, bytes) else str(reason)
        raise PatternError(text) from exc


def check(pattern: str) -> str | None:
    """Why ``pattern`` cannot be used (``None`` when it can)."""
    try:
        compile_pattern(pattern)
    except PatternError as exc:
        return str(exc)
    return None


def fullmatch(pattern: str, text: str) -> bool:
    """True when the whole of ``text`` matches ``pattern``."""
    return compile_pattern(pattern).fullmatch(text) is not None


def search(pattern: str, text: str) -> bool:
    """True when ``pattern`` matches somewhere in ``text``."""
    return compile_pattern(pattern).search(text) is not None
