"""Reading QAPI schema source: ``qapi/*.json`` as QEMU's scripts/qapi reads it.

The syntax is JSON with single-quoted strings, ``#`` comments (``##`` blocks are
documentation and are skipped), and top-level ``include`` and ``pragma``
directives. Each definition comes back as an ``Expr`` with the file and line it
starts on; every syntax error is a SchemaError that names the file and line.
Files are read through a ``Reader``: from a directory (``dir_reader``) or from a
git ref of a QEMU checkout (``git_reader``); ``qapi.py`` makes schema inputs of them.
"""

from __future__ import annotations

import subprocess
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path, PurePosixPath

from qmpcompat.errors import SchemaError
from qmpcompat.types import JSON, JSONObject, json_object

Reader = Callable[[str], str]
ROOT_FILE = "qapi-schema.json"
_PUNCT = "{}[],:"


@dataclass
class Expr:
    """One top-level definition and where it is."""

    data: JSONObject
    file: str
    line: int
    doc: str = ""  # the ``##`` doc comment right above it (its ``#`` lines)


class _Lexer:
    """Tokens of one QAPI source file: punctuation, strings, true/false."""

    def __init__(self, text: str, file: str) -> None:
        self.text = text
        self.file = file
        self.pos = 0
        self.line = 1
        self.tok: str | tuple[str, str | bool] | None = None  # punctuation, (kind, value), end
        self.tok_line = 1
        self.advance()

    def _at(self, punct: str) -> bool:
        """True when the current token is the punctuation ``punct``."""
        return bool(self.tok == punct)

    def error(self, message: str, line: int | None = None) -> SchemaError:
        return SchemaError(message, self.file, line or self.tok_line)

    def advance(self) -> None:
        """Move to the next token; ``tok`` is None at the end of the file."""
        text = self.text
        while self.pos < len(text):
            ch = text[self.pos]
            if ch == "#":
                end = text.find("\n", self.pos)
                self.pos = len(text) if end < 0 else end
            elif ch == "\n":
                self.line += 1
                self.pos += 1
            elif ch in " \t\r\f":
                self.pos += 1
            else:
                break
        self.tok_line = self.line
        if self.pos >= len(text):
            self.tok = None
            return
        ch = text[self.pos]
        if ch in _PUNCT:
            self.tok = ch
            self.pos += 1
        elif ch == "'":
            self.tok = ("str", self._string())
        elif text.startswith("true", self.pos) or text.startswith("false", self.pos):
            word = "true" if text.startswith("true", self.pos) else "false"
            self.tok = ("bool", word == "true")
            self.pos += len(word)
        else:
            raise self.error(f"stray {ch!r}")

    def _string(self) -> str:
        out: list[str] = []
        self.pos += 1
        while True:
            if self.pos >= len(self.text) or self.text[self.pos] == "\n":
                raise self.error("missing terminating \"'\"")
            ch = self.text[self.pos]
            self.pos += 1
            if ch == "'":
                return "".join(out)
            if ch == "\\":
                if self.pos >= len(self.text):
                    raise self.error("missing terminating \"'\"")
                ch = self.text[self.pos]
                self.pos += 1
                if ch not in "\\'\"/bfnrt":
                    raise self.error(f"unknown escape \\{ch}")
            elif not " " <= ch <= "~":
                raise self.error(f"funny character {ch!r} in string")
            out.append(ch)

    def value(self) -> JSON:
        """Parse one value starting at the current token."""
        tok = self.tok
        if tok == "{":
            return self._object()
        if tok == "[":
            return self._array()
        if isinstance(tok, tuple):
            self.advance()
            return tok[1]
        if tok is None:
            raise self.error("expected a value, found the end of the file")
        raise self.error(f"expected a value, found {tok!r}")

    def _expect(self, what: str) -> None:
        if self.tok != what:
            found = "the end of the file" if self.tok is None else repr(self.tok
                                                                       if isinstance(self.tok, str)
                                                                       else self.tok[1])
            raise self.error(f"expected {what!r}, found {found}")
        self.advance()

    def _object(self) -> JSONObject:
        self.advance()
        out: JSONObject = {}
        if self.tok == "}":
            self.advance()
            return out
        while True:
            if not (isinstance(self.tok, tuple) and self.tok[0] == "str"):
                raise self.error("expected a string key")
            key, line = str(self.tok[1]), self.tok_line
            if key in out:
                raise self.error(f"duplicate key {key!r}", line)
            self.advance()
            self._expect(":")
            out[key] = self.value()
            if self._at("}"):
                self.advance()
                return out
            self._expect(",")

    def _array(self) -> list[JSON]:
        self.advance()
        out: list[JSON] = []
        if self.tok == "]":
            self.advance()
            return out
        while True:
            out.append(self.value())
            if self.tok == "]":
                self.advance()
                return out
            self._expect(",")


def parse_text(text: str, file: str) -> list[tuple[JSONObject, int]]:
    """The top-level expressions of one file, each with its starting line."""
    lexer = _Lexer(text, file)
    exprs: list[tuple[JSONObject, int]] = []
    while lexer.tok is not None:
        line = lexer.tok_line
        if lexer.tok != "{":
            raise lexer.error("expected '{' to start a definition")
        exprs.append((json_object(lexer.value()), line))
    return exprs


def doc_blocks(text: str) -> dict[int, str]:
    """The ``##`` doc comments of one file, keyed by the line of the definition
    that follows each (blank lines between them allowed)."""
    lines = text.splitlines()
    blocks: dict[int, str] = {}
    i = 0
    while i < len(lines):
        if lines[i].strip() != "##":
            i += 1
            continue
        end = i + 1
        while end < len(lines) and lines[end].strip() != "##":
            end += 1
        after = end + 1
        while after < len(lines) and not lines[after].strip():
            after += 1
        blocks[after + 1] = "\n".join(lines[i + 1:end])
        i = end + 1
    return blocks


def parse_schema(root: str, read: Reader) -> list[Expr]:
    """Every definition of the schema rooted at file ``root``, following
    ``include`` directives (relative to the including file, each file once)."""
    seen: set[str] = set()
    out: list[Expr] = []

    def visit(name: str, from_file: str = "", line: int = 0) -> None:
        if name in seen:
            return
        seen.add(name)
        try:
            text = read(name)
        except (OSError, SchemaError) as exc:
            where = SchemaError(f"cannot read {name}: {exc}", from_file or name, line or None)
            raise where from exc
        docs = doc_blocks(text)
        for data, at in parse_text(text, name):
            if "include" in data:
                target = data["include"]
                if not isinstance(target, str) or len(data) != 1:
                    raise SchemaError("'include' takes one file name", name, at)
                visit(str(PurePosixPath(name).parent / target), name, at)
            elif "pragma" not in data:
                out.append(Expr(data, name, at, docs.get(at, "")))

    visit(root)
    return out


def dir_reader(base: Path) -> Reader:
    """Read schema files relative to directory ``base``."""
    return lambda name: (base / name).read_text()


def git_reader(repo: str, ref: str, prefix: str) -> Reader:
    """Read schema files of ``ref`` in the git checkout ``repo`` under ``prefix``
    (SchemaError for a ref that begins with ``-``: git would read it as an option)."""
    if ref.startswith("-"):
        raise SchemaError(f"git ref {ref!r} begins with '-': git would take it for an option",
                          f"{repo}@{ref}")

    def read(name: str) -> str:
        path = str(PurePosixPath(prefix) / name)
        proc = subprocess.run(["git", "-C", repo, "show", "--end-of-options", f"{ref}:{path}"],
                              capture_output=True, text=True, check=False)
        if proc.returncode != 0:
            raise SchemaError(proc.stderr.strip() or "git show failed", f"{repo}@{ref}:{path}")
        return proc.stdout

    return read
