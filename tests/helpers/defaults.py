"""The QEMU versions of the default set as the committed schema baselines name
them (``vectors/schema/qemu-VERSION.json``, one per build of the default set:
``tests/qemu/test_schema_snapshot.py`` holds the provisioned builds to them),
known without provisioning anything. A module that parametrizes its tests by
build version takes the versions from here and picks each build when its test
runs (the ``builds`` fixture), so that collecting the tests never waits for the
builds: on a cold cache the unit tier runs while they are provisioned."""

from __future__ import annotations

from qmpcompat.schema.sources.snapshot import BASELINE_DIR
from qmpcompat.types import Version, strip_qemu_id


def default_versions() -> list[str]:
    """The versions of the committed baselines, oldest first."""
    found = [strip_qemu_id(p.stem) for p in BASELINE_DIR.glob("qemu-*.json")]
    return sorted(found, key=Version.parse)
