"""The Debian archive's indexes, one suite at a time: fetched, dated, judged.

``apt-get update`` is run for every suite at once, and its output read suite
by suite, so that one suite whose index cannot be used (unsigned, missing,
unreachable) makes only that suite's builds unusable. An index past its
``Valid-Until`` is a stale mirror, not a forgery: it is fetched again with the
date check off for that suite alone (at the next update, while it stays
stale, with the date check off at once, and judged by the Valid-Until of the
Release file it brings), used with a warning naming its date, and refused
under ``--qmpcompat-strict``. Both apt 2.x (``E:``/``W:`` prefixes)
and apt 3.x (``Error:``/``Warning:``) output are read.
"""

from __future__ import annotations

import email.utils
import re
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from qmpcompat.errors import ProvisionError
from qmpcompat.provision.apt import PrivateApt
from qmpcompat.resultdoc import IndexJSON

# The members of an index's JSON left out when unset ("", False).
_UNSET_LEFT_OUT: tuple[Literal["date", "valid_until", "stale", "error", "kind", "hint"], ...] = (
    "date", "valid_until", "stale", "error", "kind", "hint")

# What apt said, per kind of failure, and what the user can do about it.
KINDS: dict[str, tuple[str, str]] = {
    "expired": (r"is expired|is no longer valid",
                "the mirror serves an index past its Valid-Until date; use another mirror "
                "(QMPCOMPAT_DEBIAN_MIRROR) or wait for this one to sync"),
    "unsigned": (r"is not signed|NO_PUBKEY|EXPKEYSIG|BADSIG|signatures? (couldn't|could not) be "
                 r"verified|not valid signature|OpenPGP signature verification failed"
                 r"|Signature by key .* uses weak",
                 "the index's signature cannot be checked against the Debian archive keyring: "
                 "upgrade debian-archive-keyring, or use another mirror (QMPCOMPAT_DEBIAN_MIRROR)"),
    "missing": (r"does not have a Release file|404\b|Not Found",
                "the archive does not serve this suite: choose another (--qmpcompat-suites)"),
    "unreachable": (r"Could not resolve|Could not connect|Connection (failed|timed out|refused)"
                    r"|Temporary failure|Failed to fetch|Unable to connect|No route",
                    "the mirror cannot be reached: check the network or proxy, or set "
                    "QMPCOMPAT_DEBIAN_MIRROR"),
}
_PREFIX = re.compile(r"^(E|W|Err|Error|Warning|Err:\d+)[: ]")
_DATE = "%Y-%m-%dT%H:%M:%SZ"


class IndexUnusable(ProvisionError):
    """A suite's index cannot be used; ``kind`` is expired, unsigned, missing or unreachable."""

    def __init__(self, suite: str, kind: str, said: str, hint: str) -> None:
        super().__init__(f"the Debian archive's index of {suite!r} cannot be used ({kind}): {said}")
        self.suite = suite
        self.kind = kind
        self.hint = hint


@dataclass(frozen=True)
class SuiteIndex:
    """One suite's index: its dates (ISO 8601, UTC; "" when unknown), whether it is
    past its Valid-Until (used anyway, unless strict), or why it is unusable."""

    suite: str
    date: str = ""
    valid_until: str = ""
    stale: bool = False
    error: str = ""
    kind: str = ""
    hint: str = ""

    def problem(self, strict: bool) -> IndexUnusable | None:
        """Why this index may not be used (None: it may)."""
        if self.error:
            return IndexUnusable(self.suite, self.kind, self.error, self.hint)
        if self.stale and strict:
            return IndexUnusable(
                self.suite, "expired", f"its Valid-Until date {self.valid_until} has passed "
                "(a stale mirror); refused under --qmpcompat-strict", KINDS["expired"][1])
        return None

    def warning(self) -> str:
        return (f"the index of {self.suite!r} expired on {self.valid_until} (Valid-Until; "
                f"published {self.date}): the mirror is stale; using it anyway "
                "(--qmpcompat-strict refuses it)") if self.stale else ""

    def to_json(self) -> IndexJSON:
        """The suite, and every other field that is set, in field order."""
        out: IndexJSON = {"suite": self.suite, "date": self.date, "valid_until": self.valid_until,
                          "stale": self.stale, "error": self.error, "kind": self.kind, "hint": self.hint}
        for key in _UNSET_LEFT_OUT:
            if not out[key]:
                del out[key]
        return out

    @classmethod
    def from_json(cls, data: Mapping[str, object]) -> SuiteIndex:
        fields = cls.__dataclass_fields__
        return cls(**{k: v for k, v in data.items() if k in fields})  # type: ignore[arg-type]


def _mentions(line: str, suite: str) -> bool:
    return re.search(rf"(?:\s|/dists/){re.escape(suite)}(?:[\s/']|$)", line) is not None


def failures(output: str, suites: Sequence[str]) -> dict[str, tuple[str, str]]:
    """{suite: (kind, apt's line)} for every suite apt's ``update`` output says failed."""
    found: dict[str, tuple[str, str]] = {}
    for line in output.splitlines():
        if not _PREFIX.match(line):
            continue
        for kind, (pattern, _hint) in KINDS.items():
            if not re.search(pattern, line):
                continue
            for suite in suites:
                # an earlier, more specific kind (expired, unsigned) wins
                if _mentions(line, suite) and suite not in found:
                    found[suite] = (kind, line.strip())
            break
    return found


def _iso(value: str) -> str:
    try:
        return time.strftime(_DATE, email.utils.parsedate_to_datetime(value).utctimetuple())
    except (TypeError, ValueError):
        return ""


def release_dates(lists: Path, suite: str) -> tuple[str, str]:
    """(Date, Valid-Until) of ``suite``'s Release file in apt's ``lists`` dir."""
    for name in (f"_dists_{suite}_InRelease", f"_dists_{suite}_Release"):
        for path in sorted(lists.glob("*" + name)):
            try:
                head = path.read_text(errors="replace").split("\n\n", 2)
            except OSError:
                continue
            text = head[1] if head[0].startswith("-----BEGIN PGP") and len(head) > 1 else head[0]
            fields = dict(re.findall(r"^([A-Za-z-]+):[ \t]*(.*)$", text, re.MULTILINE))
            return _iso(fields.get("Date", "")), _iso(fields.get("Valid-Until", ""))
    return "", ""


def _expired(lists: Path, suite: str) -> bool:
    """Whether ``suite``'s Release file in ``lists`` is past its Valid-Until."""
    until = release_dates(lists, suite)[1]
    return bool(until) and until < time.strftime(_DATE, time.gmtime())


def fetch(apt: PrivateApt, suites: Sequence[str], run: Callable[[Sequence[str]], str],
          known_stale: Iterable[str] = ()) -> tuple[dict[str, tuple[str, str]], set[str]]:
    """Run ``run`` (an ``apt-get update`` of ``suites`` by ``apt``) and read what
    failed, suite by suite: (the failures, the suites used stale).

    A suite whose index has expired is fetched again with the date check off for
    it alone (signatures are checked as ever). A suite of ``known_stale`` (stale
    at the last update) has the date check off from the first run, and is stale
    when its Release file's Valid-Until has passed: while a mirror stays stale,
    one run rather than two. ``apt.accept_stale`` is left naming the stale suites.
    """
    wanted = sorted(set(suites))
    apt.accept_stale = set(known_stale) & set(wanted)
    failed = failures(run(wanted), wanted)
    expired = {s for s, (kind, _line) in failed.items() if kind == "expired"}
    if expired:
        apt.accept_stale |= expired
        failed = failures(run(wanted), wanted)
    apt.accept_stale = {s for s in apt.accept_stale
                        if s not in failed and (s in expired or _expired(apt.lists, s))}
    return failed, set(apt.accept_stale)


def update(apt: PrivateApt, suites: Sequence[str], warn: Callable[[str], None] | None = None,
           known_stale: Iterable[str] = ()) -> dict[str, SuiteIndex]:
    """Fetch the indexes of ``suites``; one SuiteIndex per suite.

    A suite whose index has expired is used stale (``fetch``; ``known_stale``:
    the suites stale at the last update) and ``warn`` is told; any other
    failure makes only that suite unusable.
    """
    wanted = sorted(set(suites))
    failed, stale = fetch(apt, wanted, apt.update_output, known_stale)
    apt.accept_stale = set()
    out: dict[str, SuiteIndex] = {}
    for suite in wanted:
        date, until = release_dates(apt.lists, suite)
        if suite in failed:
            kind, line = failed[suite]
            out[suite] = SuiteIndex(suite, date, until, error=line, kind=kind, hint=KINDS[kind][1])
        else:
            out[suite] = SuiteIndex(suite, date, until, stale=suite in stale)
            if suite in stale and warn:
                warn(out[suite].warning())
    return out
