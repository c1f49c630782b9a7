"""Every vector file passes lint; each problem is reported here with its file,
line and vector id. A vector with a problem does not run (its case fails
saying why); the rest of the vectors still run."""

from __future__ import annotations

import pytest

from qmpcompat.escape import terminal
from qmpcompat.vectors.lint import Problem


def test_vector_file(vector_file_error: Problem) -> None:
    pytest.fail(terminal(vector_file_error), pytrace=False)
