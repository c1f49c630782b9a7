"""The key of a CI cache of the provisioning cache (``qmpcompat provision
--cache-key``): a digest of what provisioning a selection puts in it, the
builds (each Debian package's version and target, each source build's spec and
profile, each foreign build's pinned spec) and the dates of the archive
indexes they were chosen from. The same selection on the same archive gives
the same key on every machine; a new
package version, or the indexes read again (weekly), gives a new one."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Sequence
from pathlib import Path

from qmpcompat.provision.debian import DEFAULT_TARGETS, Progress, planned

LAYOUT = 1  # the cache's layout: a change of it changes every key
PREFIX = "qmpcompat-cache-"  # every key starts so (a CI's fallback to any older cache)


def cache_key(suites: Sequence[str], cache: Path | None = None, progress: Progress | None = None,
              strict: bool = False, targets: Sequence[str] = DEFAULT_TARGETS,
              sources: Sequence[str] = (), foreign: Sequence[str] = ()) -> str:
    """The key of the cache ``provision`` of ``suites`` (and the source builds
    named in ``sources``, as ``source SPEC PROFILE`` keys, and the ``foreign``
    specs, e.g. the default set's pinned wheel) fills."""
    builds, resolved = planned(suites, cache, False, progress, strict, targets) if suites else ([], None)
    dates = ({suite: index.date for suite, index in sorted(resolved.indexes.items())}
             if resolved else {})
    held = {"layout": LAYOUT, "builds": sorted(builds), "sources": sorted(sources), "indexes": dates,
            **({"foreign": sorted(foreign)} if foreign else {})}  # keys made before it stay
    return PREFIX + hashlib.sha256(json.dumps(held, sort_keys=True).encode()).hexdigest()[:20]
