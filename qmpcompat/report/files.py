"""Whether report files can be written into a directory (they are written with
``qmpcompat.reaper.write_atomic``: whole, and with the mode an ordinary file
gets under the umask, for CI artifacts other users read)."""

from __future__ import annotations

import os
from pathlib import Path

from qmpcompat.reaper import make_file


def check_writable(directory: Path) -> str | None:
    """None when reports can be written into ``directory`` (created if missing),
    else what stands in the way."""
    try:
        directory.mkdir(parents=True, exist_ok=True)
        fd, tmp = make_file(directory, ".qmpw-", ".probe")
        os.close(fd)
        tmp.unlink()
    except OSError as exc:
        return f"{exc.strerror or exc}" + (f": {exc.filename}" if exc.filename else "")
    return None
