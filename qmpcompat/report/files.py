"""Writing report files: atomically (readers never see half a file) and with
the mode an ordinary file gets under the umask (CI artifacts other users read)."""

from __future__ import annotations

import os
from pathlib import Path

from qmpcompat.reaper import make_file


def _umask() -> int:
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


def write_atomic(path: Path, text: str) -> None:
    """Write ``text`` to ``path`` through a temp file in the same directory and a
    rename (a temp file the reaper removes if this process is killed on the way);
    the file ends up with mode ``0666 & ~umask`` like any file ``open`` creates
    (``mkstemp`` alone would leave it 0600)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = make_file(path.parent, ".qmpw-", f".{path.name}")
    try:
        with os.fdopen(fd, "w") as fh:
            fh.write(text)
        os.chmod(tmp, 0o666 & ~_umask())
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


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
