"""The values of a run's options, parsed the same way by every front-end (the
``qmpcompat`` commands and the pytest plugin): each parser takes the option's
text and returns the value, or raises ``argparse.ArgumentTypeError`` (which
argparse and pytest both turn into a usage error naming the option)."""

from __future__ import annotations

import argparse

from qmpcompat.harness import MAX_TIMEOUT


def timeout_arg(text: str) -> float:
    """A timeout option's value in seconds: a finite number above 0 and at most an
    hour (``nan``, ``inf`` and ``0`` would make a hung QEMU hang the run)."""
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number of seconds") from None
    if not (0 < value <= MAX_TIMEOUT):  # also false for nan
        raise argparse.ArgumentTypeError(
            f"{text!r}: a timeout must be more than 0 and at most {MAX_TIMEOUT:g} seconds")
    return value
