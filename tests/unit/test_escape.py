"""escape.markdown where its text starts a line or a list item: no block can be
forged (a heading, a quote, a list item, a thematic break, a setext underline),
and text that starts none (a version range such as >=8.2.2 among it) is left as
it was."""

from __future__ import annotations

import pytest

from qmpcompat.escape import markdown

FORGED = {
    "# FORGED": "\\# FORGED", "###### FORGED": "\\###### FORGED", "#": "\\#",
    "   # FORGED": "   \\# FORGED", "> FORGED": "\\> FORGED", ">": "\\>",
    "- FORGED": "\\- FORGED", "+ FORGED": "\\+ FORGED", "1. FORGED": "1\\. FORGED",
    "12) FORGED": "12\\) FORGED", "---": "\\---", "- - -": "\\- - -", "===": "\\===",
    "* FORGED": "\\* FORGED",
}
PLAIN = ["#FORGED", "####### seven", "-1", "= x", "1.5", "10.0.2", ">=8.2.2", "a # b", "ok"]


@pytest.mark.parametrize(("text", "shown"), FORGED.items())
def test_a_block_marker_at_the_start_is_escaped(text: str, shown: str) -> None:
    assert markdown(text) == shown


@pytest.mark.parametrize("text", PLAIN)
def test_text_that_starts_no_block_is_kept(text: str) -> None:
    assert markdown(text) == text
