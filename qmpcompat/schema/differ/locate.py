"""Where in the QAPI source a finding's member is declared: the file and line
of ``qapi/*.json`` that a CI annotation should point at.

A finding's path (``migrate/arg-type/channels/addr/+file``) is walked through
the source definitions: a member is looked up in its struct, command or event,
then in the base it inherits from; a union branch or an enum value in its
definition. The line is the one in the definition's text that names the member
(``'*channels':``), or, for what the source no longer has, the line where the
definition that held it starts.
"""

from __future__ import annotations

import os
import re
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from qmpcompat.errors import QmpCompatError
from qmpcompat.schema.sources.qapi_source import Expr
from qmpcompat.types import JSON

KEYS = ("struct", "union", "alternate", "enum", "command", "event")


def _name(expr: Expr) -> str:
    return next((str(expr.data[k]) for k in KEYS if k in expr.data), "")


def _type_of(value: JSON) -> str:
    """The type name a member's declaration refers to ('' for an inline or builtin one)."""
    if isinstance(value, dict):
        value = value.get("type")
    if isinstance(value, list) and value:
        value = value[0]
    return value if isinstance(value, str) else ""


@dataclass(frozen=True)
class Location:
    file: str
    line: int


class Locator:
    """Finds the source line of a finding path among ``exprs``; ``read`` reads a
    definition's file (default: from disk), ``prefix`` goes before the file
    names of the locations (``qapi/`` for a git ref's files)."""

    def __init__(self, exprs: list[Expr], read: Callable[[str], str] | None = None,
                 prefix: str = "") -> None:
        self.read = read or (lambda f: Path(f).read_text())
        self.prefix = prefix
        self.by_name = {_name(e): e for e in exprs if _name(e)}
        ends: dict[str, list[int]] = {}
        for e in exprs:
            ends.setdefault(e.file, []).append(e.line)
        self.starts = {f: sorted(lines) for f, lines in ends.items()}
        self._text: dict[str, list[str]] = {}

    def _lines(self, file: str) -> list[str]:
        if file not in self._text:
            try:
                self._text[file] = self.read(file).splitlines()
            except (OSError, QmpCompatError):
                self._text[file] = []
        return self._text[file]

    def _key_line(self, expr: Expr, key: str) -> int | None:
        """The line inside ``expr``'s text that names ``key`` (as a member key or a value)."""
        lines = self._lines(expr.file)
        later = [n for n in self.starts.get(expr.file, []) if n > expr.line]
        end = later[0] - 1 if later else len(lines)
        pattern = re.compile(r"""['"]\*?""" + re.escape(key) + r"""['"]""")
        for n in range(expr.line, end + 1):
            if n - 1 < len(lines) and pattern.search(lines[n - 1]):
                return n
        return None

    def _member(self, expr: Expr, name: str, depth: int = 0) -> tuple[Expr, JSON] | None:
        """(definition that declares member ``name``, its declared type), following bases."""
        data = expr.data.get("data")
        if isinstance(data, dict):
            for key, value in data.items():
                if key.lstrip("*") == name:
                    return expr, value
        base = expr.data.get("base")
        if isinstance(base, dict):
            for key, value in base.items():
                if key.lstrip("*") == name:
                    return expr, value
        elif isinstance(base, str) and base in self.by_name and depth < 20:
            return self._member(self.by_name[base], name, depth + 1)
        return None

    def locate(self, path: str) -> Location | None:
        """The location of the last part of ``path`` the source has; None when
        not even the root is defined in it."""
        parts = path.split("/")
        expr = self.by_name.get(parts[0])
        if expr is None:
            return None
        where = Location(self.prefix + expr.file, expr.line)
        for part in parts[1:]:
            if part in ("arg-type", "ret-type"):
                target = expr.data.get("data" if part == "arg-type" else "returns")
                if isinstance(target, str) and target in self.by_name:
                    expr = self.by_name[target]
                continue
            if part[:1] in "^+":
                line = self._key_line(expr, part[1:])
                if line is None:
                    break
                where = Location(self.prefix + expr.file, line)
                branches = expr.data.get("data") or {}
                branch = branches.get(part[1:]) if part[0] == "+" and isinstance(branches, dict) \
                    else None
                if _type_of(branch) not in self.by_name:
                    break
                expr = self.by_name[_type_of(branch)]
                continue
            if part[:1] in "$|(":
                break
            found = self._member(expr, part)
            if found is None:
                break
            holder, value = found
            line = self._key_line(holder, part)
            where = Location(self.prefix + holder.file, line or holder.line)
            if _type_of(value) not in self.by_name:
                break
            expr = self.by_name[_type_of(value)]
        return where


def shown_path(file: str) -> str:
    """``file`` relative to the working directory when it lies under it (as CI
    annotations want it), else as it is."""
    try:
        rel = os.path.relpath(file)
    except ValueError:
        return file
    return file if rel.startswith("..") else rel
