"""Every vector file loads; a broken vector is reported here, with its file,
line and id, while the rest of the vectors still run."""

from __future__ import annotations

import pytest

from qmpcompat.errors import VectorError


def test_vector_file(vector_file_error: VectorError) -> None:
    pytest.fail(str(vector_file_error), pytrace=False)
