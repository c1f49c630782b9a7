"""A known defect's reproducer as data: the ``Plan`` the standalone script plays
(events, embedded files, what the defect's builds do and what they should do),
the builds (or pairs) it was seen on, and for a consumer profile's defect where
its QMP exchange comes from (``Exchange``) and whose bug it is (``Owner``).

``plan`` makes the plan of a vector's or a pair vector's defect, ``consumer``
that of a consumer profile's; ``script`` and ``report`` render any plan.
"""

from __future__ import annotations

import base64
import re
import zlib
from dataclasses import dataclass, field

from qmpcompat.schema.sources.releases import build_baselines
from qmpcompat.types import JSONObject, Version
from qmpcompat.vectors.match import describe
from qmpcompat.vectors.model import Expectation, KnownDefect, Vector
from qmpcompat.vectors.pairs import PairVector
from qmpcompat.vectors.profiles import Profile

DOCUMENTED = "did what QEMU documents"  # what a build its reproducer exits 0 on did


@dataclass(frozen=True)
class Seen:
    """A build (or pair of builds) a claim was seen on: version(s) and Debian package(s)."""

    label: str  # "11.1.3" or "10.0.13->11.1.3"
    packages: str  # "Debian 1:11.1.3+ds-1" (each side's, for a pair)
    did: str = ""  # what it did, for a build that is not affected


@dataclass(frozen=True)
class Exchange:
    """Where a consumer defect's QMP exchange comes from: a recording of the real
    consumer (``vectors/consumers/wire/``), the profile's steps resolved against it."""

    file: str  # vectors/consumers/wire/CP-0001/11.1.3-to-7.2.22.json
    recorded: str  # the day, 2026-12-06
    consumer: str  # "libvirt 9.0.0-4+deb12u2"
    package: str  # the consumer's Debian source package, "libvirt"
    version: str  # its Debian version, "9.0.0-4+deb12u2"
    suite: str  # the Debian suite it came from, "bookworm"
    command: str  # what drove the migration (virsh migrate ...)
    said: str  # what the consumer said of it (virsh's error), "" when it said nothing
    passed_over: tuple[str, ...] = ()  # commands it sent before the step that are not the profile's
    after: tuple[str, ...] = ()  # the steps it took after it (its clean-up), left out
    fds: tuple[str, ...] = ()  # the fds it passed (getfd), which the script passes too
    then: str = ""  # the recording of an unaffected pair its steps after the defect's come from


@dataclass(frozen=True)
class Owner:
    """Whose bug a defect is: ``project`` (``QEMU`` or the consumer), and why."""

    project: str
    why: str
    consumer: bool = False  # True: the consumer's, not QEMU's


@dataclass
class Plan:
    """A known defect's reproducer: the events the script plays and what it judges by."""

    defect: KnownDefect
    vector: Vector | None  # the vector played (a pair vector's cell); None for a profile's
    pair: PairVector | None
    source: Version  # the version the command lines are made for (the source, for a pair)
    destination: Version | None
    events: list[JSONObject] = field(default_factory=list)
    # each file's bytes, or how to make it again: random.Random(SEED).randbytes(SIZE)
    files: dict[str, bytes | tuple[int, int]] = field(default_factory=dict)
    expected: Expectation | None = None
    affected: list[Seen] = field(default_factory=list)
    unaffected: list[Seen] = field(default_factory=list)
    profile: Profile | None = None  # a consumer profile's defect: the profile
    exchange: Exchange | None = None
    owner: Owner = field(default_factory=lambda: Owner("QEMU", ""))
    alive: tuple[str, ...] = ("subject",)  # the sides that must still answer at the end
    fine: str = DOCUMENTED  # what exit 0 says: the build did what the defect's did not
    expected_label: str = "what QEMU documents"

    @property
    def title(self) -> str:
        return f"{self.defect.id}: {self.defect.summary}"

    @property
    def found_by(self) -> str:
        """What found it: ``vector XV-0001 (FILE)`` or ``consumer profile CP-0001 (FILE:LINE)``."""
        if self.profile is not None:
            return f"consumer profile {self.profile.id} ({self.profile.where})"
        assert self.vector is not None
        return f"vector {self.vector.id} ({self.vector.where})"

    def to_json(self) -> JSONObject:
        """What the script reads (``PLAN``)."""
        exp = self.expected
        defect = expectation_json(self.defect.observed)
        if signal := crash_signal(self.defect):
            defect["signal"] = signal
        if self.pair is not None and defect.get("migration") == "failed":
            defect["either-side"] = True  # a pair's migration fails on either side
        return {"title": self.title, "summary": self.defect.summary,
                "events": list(self.events), "alive": list(self.alive),
                "files": {n: base64.b64encode(zlib.compress(b, 9)).decode()
                          for n, b in sorted(self.files.items()) if isinstance(b, bytes)},
                "made": {n: {"random-seed": m[0], "bytes": m[1]}
                         for n, m in sorted(self.files.items()) if isinstance(m, tuple)},
                "defect": defect, "fine": self.fine,
                "expected": expectation_json(exp) if exp else {"result": "accept"},
                "expected_text": describe(exp) if exp else "accept"}


def crash_signal(defect: KnownDefect) -> int | None:
    """The signal a crash defect's evidence says QEMU was killed by, if it says one."""
    found = re.search(r"signal (\d+)", defect.evidence)
    return int(found.group(1)) if defect.observed.result == "crash" and found else None


def expectation_json(exp: Expectation) -> JSONObject:
    """An expectation in the vector format's keys (what the script matches)."""
    out: JSONObject = {"result": exp.result}
    for key, value in (("error-class", exp.error_class), ("desc", exp.desc),
                       ("desc-pattern", exp.desc_pattern), ("migration", exp.migration),
                       ("migration-error", exp.migration_error)):
        if value is not None:
            out[key] = value
    return out


def packages() -> dict[str, str]:
    """Version -> Debian package of every build a baseline was committed of."""
    return {k.version: str(k.source.get("package") or "") for k in build_baselines()}


def seen(labels: list[str], known: dict[str, str], did: str = "") -> list[Seen]:
    """``Seen`` of each version (or pair) label, with its Debian package(s) from ``known``."""
    return [Seen(label, " -> ".join(known.get(v, "") or "unpackaged" for v in label.split("->")),
                 did) for label in labels]
