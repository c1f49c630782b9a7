"""The one escaping layer of each output format qmpcompat writes.

Text from outside (a vector's description and expectations, QEMU's replies and
stderr, names and messages in a results file given to a report command) may
hold anything: carriage returns and newlines that forge a report's lines,
``<!--`` or ``</script>`` that end an HTML element, ``|`` and backticks that
break a Markdown table, ``::error ...::`` that a CI runner reads as a workflow
command when a line begins with it, terminal escape sequences, and Unicode
controls that reorder what is shown (bidirectional overrides). Every writer
passes such text through the function of its format here, once, where it
writes it:

==================  ============================================================
``visible``         one line: every control character shown as ``\\r``, ``\\n``,
                    ``\\t``, ``\\xNN`` or ``\\uNNNN`` (never as itself)
``visible_lines``   the same, keeping line breaks (``\\n``) and tabs
``terminal``        ``visible_lines``, and no line that begins with a CI runner's
                    command marker (``::``, ``##``): its first character is
                    shown as ``\\x3a`` / ``\\x23``
``markdown``        one Markdown inline text or table cell: ``visible``, and
                    Markdown's ``\\ ` * _ ~ [ ] |`` and a ``<`` or ``&`` that
                    could start HTML (a tag, ``<!--``, an entity) backslash-escaped
``code_span``       inline code: ``visible``, delimited by more backticks than any
                    run inside it
``code_block``      a fenced Markdown code block: ``visible_lines`` inside a
                    fence longer than any backtick run in the text
``html_text``       HTML element text or attribute: ``visible_lines``, then
                    ``& < > " '`` as entities
``script_json``     data for ``<script type="application/json">``: every string
                    ``visible_lines``, and ``< > &`` (so ``</script>``, ``<!--``)
                    and U+2028/U+2029 as JSON ``\\uNNNN`` escapes
``xml_attribute``   JUnit XML attributes: ``visible`` (XML escaping of ``< & "``
``xml_text``        is ElementTree's); element text: ``visible_lines``
``workflow_data``   a GitHub Actions workflow command's message: ``visible_lines``,
``workflow_property`` then ``% \\r \\n`` (and in a property ``: ,``) percent-encoded
==================  ============================================================

GitLab code quality and SARIF are JSON: their text members are ``visible_lines``
and ``json.dumps`` does the rest.
"""

from __future__ import annotations

import html
import io
import json
import re
from collections.abc import Mapping
from typing import TextIO

# C0 controls but tab and newline, DEL, C1 controls, the Unicode line and paragraph
# separators, bidirectional and other invisible format controls, lone surrogates,
# interlinear annotations, the byte order mark.
_CONTROLS = ("\x00-\x08\x0b-\x1f\x7f-\x9f\u061c\u180e\u200b-\u200f\u2028-\u202e\u2060-\u206f"
             "\ufeff\ufff9-\ufffb\ud800-\udfff")
_LINE_CONTROLS = re.compile(f"[{_CONTROLS}]")
_ALL_CONTROLS = re.compile(f"[\t\n{_CONTROLS}]")
_NAMED = {"\t": "\\t", "\n": "\\n", "\r": "\\r"}
_COMMAND_START = re.compile(r"^([ \t]*)([:#])(?=[:#])", re.MULTILINE)  # ::error, ##[group], ##vso[
# Markdown's inline syntax, and the starts of HTML (a tag, a comment, an entity)
_MARKDOWN = re.compile(r"([\\`*~\[\]|]|(?<![A-Za-z0-9])_|_(?![A-Za-z0-9])|<(?=[A-Za-z/!?])"
                       r"|&(?=[#A-Za-z0-9]))")  # "_" inside a word is no emphasis
# Where a line (or a list item's text) starts, what starts a block (CommonMark):
# an ATX heading, a bullet or ordered list item, a quote, a thematic break or
# setext underline. The match ends where the marker's character is.
_BLOCK_START = re.compile(r"\A {0,3}(?:\d{1,9}(?=[.)](?:[ \t]|\Z))|(?=#{1,6}(?:[ \t]|\Z)"
                          r"|[-+](?:[ \t]|\Z)|>|[-=][-= \t]*\Z))")
_SCRIPT = {"<": "\\u003c", ">": "\\u003e", "&": "\\u0026", "\u2028": "\\u2028", "\u2029": "\\u2029"}


def _show(found: re.Match[str]) -> str:
    char = found.group()
    if char in _NAMED:
        return _NAMED[char]
    code = ord(char)
    return f"\\x{code:02x}" if code < 0x100 else f"\\u{code:04x}"


def visible(text: object) -> str:
    """``text`` on one line, every control character (line breaks and tabs too)
    shown as an escape."""
    return _ALL_CONTROLS.sub(_show, str(text))


def visible_lines(text: object) -> str:
    """``text`` with its line breaks and tabs, every other control character
    (carriage return, escape, bidirectional override ...) shown as an escape."""
    return _LINE_CONTROLS.sub(_show, str(text))


def terminal(text: object) -> str:
    """``text`` as printed to a terminal or CI log: :func:`visible_lines`, and a
    line that would begin with ``::`` or ``##`` (a workflow command to GitHub's
    or Azure's runner) has its first character shown as an escape."""
    return _COMMAND_START.sub(lambda m: m.group(1) + _show_always(m.group(2)), visible_lines(text))


def _show_always(char: str) -> str:
    return f"\\x{ord(char):02x}"


def markdown(text: object) -> str:
    """``text`` as one Markdown inline text or table cell: nothing in it can
    start a new line, an HTML tag or comment, a code span, a link or emphasis,
    or end a table cell. Text written where a line or a list item starts takes
    ``markdown_item``."""
    return _MARKDOWN.sub(r"\\\1", visible(text))


def markdown_item(text: object) -> str:
    """``markdown(text)`` where it starts a line or a list item's text: it starts
    no heading, quote, list, thematic break or setext underline there (the
    first marker escaped)."""
    return _BLOCK_START.sub(lambda m: m[0] + "\\", markdown(text), count=1)


def code_span(text: object) -> str:
    """``text`` as a Markdown code span (shown literally, HTML included), delimited
    by more backticks than any run inside it; ``|`` escaped for a table cell."""
    shown = visible(text).replace("|", "\\|")
    ticks = "`" * (1 + max((len(r) for r in re.findall("`+", shown)), default=0))
    pad = " " if shown.startswith("`") or shown.endswith("`") else ""
    return f"{ticks}{pad}{shown}{pad}{ticks}"


def code_block(text: object, language: str = "") -> list[str]:
    """``text`` as a fenced Markdown code block (its lines): :func:`visible_lines`,
    inside a fence longer than any run of backticks in it, so nothing ends it early."""
    shown = visible_lines(text)
    fence = "`" * max(3, 1 + max((len(r) for r in re.findall("`+", shown)), default=0))
    return [fence + language, *shown.splitlines(), fence]


def html_text(text: object) -> str:
    """``text`` as HTML element text or a quoted attribute value."""
    return html.escape(visible_lines(text), quote=True)


def _strings_visible(data: object) -> object:
    if isinstance(data, str):
        return visible_lines(data)
    if isinstance(data, Mapping):
        return {visible_lines(k): _strings_visible(v) for k, v in data.items()}
    if isinstance(data, (list, tuple)):
        return [_strings_visible(v) for v in data]
    return data


def script_json(data: object) -> str:
    """``data`` as JSON that a ``<script type="application/json">`` element can
    hold whatever its strings say (``JSON.parse`` of the element's text gives
    it back, control characters shown as escapes)."""
    text = json.dumps(_strings_visible(data), separators=(",", ":"), ensure_ascii=False)
    return re.sub("[<>&\u2028\u2029]", lambda m: _SCRIPT[m.group()], text)


def xml_attribute(text: object) -> str:
    """``text`` for an XML attribute (ElementTree escapes ``< & "`` itself)."""
    return visible(text)


def xml_text(text: object) -> str:
    """``text`` for XML element text, line breaks kept."""
    return visible_lines(text)


def workflow_data(text: object) -> str:
    """``text`` as the message of a GitHub Actions workflow command."""
    shown = visible_lines(text)
    return shown.replace("%", "%25").replace("\r", "%0D").replace("\n", "%0A")


def workflow_property(text: object) -> str:
    """``text`` as a property value (``file=``, ``title=``) of a workflow command."""
    return workflow_data(text).replace(":", "%3A").replace(",", "%2C")


class TerminalStream(io.TextIOBase):
    """A text stream that writes through :func:`terminal`, a line at a time (a
    partial line when flushed): what ``qmpcompat`` prints in its text formats."""

    def __init__(self, stream: TextIO) -> None:
        super().__init__()
        self.stream = stream
        self._pending = ""

    def write(self, text: str) -> int:
        self._pending += text
        if "\n" in self._pending:
            lines, _, self._pending = self._pending.rpartition("\n")
            self.stream.write(terminal(lines) + "\n")
        return len(text)

    def flush(self) -> None:
        if self.stream.closed:  # it outlived its stream (its close when collected): nothing reaches it
            return
        if self._pending:
            self.stream.write(terminal(self._pending))
            self._pending = ""
        self.stream.flush()

    def isatty(self) -> bool:
        return self.stream.isatty()

    def fileno(self) -> int:
        return self.stream.fileno()

    @property
    def encoding(self) -> str:  # type: ignore[override]
        return self.stream.encoding
