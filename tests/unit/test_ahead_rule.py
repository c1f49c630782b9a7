"""Which vectors wait rather than work (``qmpcompat.vectors.ahead.waits``): a
declared ``cancel-after``, and a ``migrate`` over vsock, whose connect nobody
answers waits out the kernel's timeout; a vsock listener does not wait."""

from __future__ import annotations

from qmpcompat.vectors.ahead import VSOCK_CONNECT_WAIT, waits
from qmpcompat.vectors.load import load


def test_the_waiting_vectors_of_the_set() -> None:
    vectors = load().vectors
    waiting = {v.id: waits(v) for v in vectors if waits(v)}
    assert waiting == {"M-0014": VSOCK_CONNECT_WAIT, "M-0037": VSOCK_CONNECT_WAIT,
                       "M-0215": 2.0, "M-0216": 2.0}
    listeners = [v for v in vectors if "vsock" in v.features and v.command == "migrate-incoming"]
    assert listeners and not any(waits(v) for v in listeners)
