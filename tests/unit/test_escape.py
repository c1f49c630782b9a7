"""escape.markdown_item, for text written where a line or a list item starts:
no block can be forged there (a heading, a quote, a list item, a thematic break,
a setext underline), and text that starts none is left as it was; and
escape.markdown, for inline text and table cells, keeps those starts as written
(a version range such as >=8.2.2 reads as written in a cell); the stream the
command line writes through closes quietly once the stream it wraps is gone."""

from __future__ import annotations

import io

import pytest

from qmpcompat.escape import TerminalStream, markdown, markdown_item

FORGED = {
    "# FORGED": "\\# FORGED", "###### FORGED": "\\###### FORGED", "#": "\\#",
    "   # FORGED": "   \\# FORGED", "> FORGED": "\\> FORGED", ">=8.2.2": "\\>=8.2.2",
    "- FORGED": "\\- FORGED", "+ FORGED": "\\+ FORGED", "1. FORGED": "1\\. FORGED",
    "12) FORGED": "12\\) FORGED", "---": "\\---", "- - -": "\\- - -", "===": "\\===",
    "* FORGED": "\\* FORGED",
}
PLAIN = ["#FORGED", "####### seven", "-1", "= x", "1.5", "10.0.2", "a # b", "ok"]


@pytest.mark.parametrize(("text", "shown"), FORGED.items())
def test_a_block_marker_at_the_start_of_an_item_is_escaped(text: str, shown: str) -> None:
    assert markdown_item(text) == shown


@pytest.mark.parametrize("text", PLAIN)
def test_text_that_starts_no_block_is_kept(text: str) -> None:
    assert markdown_item(text) == text


@pytest.mark.parametrize("text", [t for t in FORGED if not t.startswith("*")])
def test_a_cell_keeps_what_only_starts_a_block_at_a_line_start(text: str) -> None:
    assert markdown(text) == text


def test_a_terminal_stream_that_outlives_its_stream_closes_quietly() -> None:
    """``qmpcompat``'s main wraps stdout and stderr for a run; collected after the
    stream it wrapped was closed (a test's captured output), it says nothing."""
    inner = io.StringIO()
    stream = TerminalStream(inner)
    stream.write("line\npartial")
    assert inner.getvalue() == "line\n"
    inner.close()
    stream.close()
    assert stream.closed
