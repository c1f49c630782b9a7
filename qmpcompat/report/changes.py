"""Comparing what two builds did, case by case (vectors and derived cases).

The inputs are case records as ``results.json`` keeps them; what each build
did is its ``observed`` member, with what differs from run to run (the case's
temp dir, port numbers, the binary's name before a message) taken out.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import asdict, dataclass, field
from itertools import pairwise

from qmpcompat.report.change_rules import BEHAVIOUR_RULES
from qmpcompat.report.consumers import what_happened
from qmpcompat.resultdoc import CaseJSON, ConsumerJSON, ResultsJSON
from qmpcompat.types import LEVELS, JSONObject, Level, json_text, label_order

CRASHES = ("crash", "hang")
# What differs between two runs of one build, and so is no change.
_NOISE = (
    (re.compile(r"/[^\s'\"]*/qmp[a-z]*-[A-Za-z0-9_]{6,}"), "<case-dir>"),
    (re.compile(r"(?<=\d|\]):\d{2,5}\b"), ":<port>"),  # 127.0.0.1:N, [::1]:N
    (re.compile(r"\bqemu-system-[\w-]+: "), ""),
    (re.compile(r"\s+"), " "),
)


def normalized(text: str | None) -> str:
    """``text`` without what differs between two runs of one build."""
    out = text or ""
    for pattern, repl in _NOISE:
        out = pattern.sub(repl, out)
    return out.strip()


@dataclass(frozen=True)
class Seen:
    """What one build did with one case, normalized for comparison."""

    result: str  # accept, reject, crash, hang, error, or "not run" (skipped, refused)
    error_class: str = ""
    desc: str = ""
    migration: str = ""
    migration_error: str = ""
    crash: str = ""  # signal and first words of a crash or hang

    @classmethod
    def of(cls, rec: CaseJSON) -> Seen:
        obs = rec.get("observed") or {}

        def said(key: str) -> str | None:
            return json_text(obs.get(key))

        result = said("result") or "not run"
        if result in CRASHES:
            detail = normalized(said("detail"))
            signal = re.search(r"killed by signal \d+|did not answer|exited with status \d+", detail)
            stderr = detail.split("stderr: ", 1)[1][:120] if "stderr: " in detail else ""
            return cls(result, crash=" ".join(p for p in (signal.group() if signal else "", stderr) if p))
        sides = [said("migration"), said("peer_migration")]
        return cls(result, said("error_class") or "", normalized(said("desc")),
                   "/".join(s for s in sides if s), normalized(said("migration_error")))

    def summary(self) -> str:
        if self.result == "reject":
            return f"reject {self.error_class}: {self.desc}"
        if self.result == "accept":
            end = f", migration {self.migration}" if self.migration else ""
            return f"accept{end}" + (f": {self.migration_error}" if self.migration_error else "")
        if self.result in CRASHES:
            return f"{self.result}: {self.crash}" if self.crash else self.result
        return self.result


@dataclass(frozen=True)
class Change:
    """One behaviour change of one case between BASE and NEW."""

    base: str
    new: str
    case: str
    kind: str  # vector or derived
    command: str
    description: str
    file: str
    rule: str
    level: str
    before: str
    after: str
    explanation: str
    defect: str

    @property
    def fingerprint(self) -> str:
        """Stable id of the change: the same change between other builds keeps it."""
        return hashlib.sha1(f"{self.rule}|{self.case}|{self.before}|{self.after}".encode()).hexdigest()[:12]

    def to_json(self) -> JSONObject:
        out: JSONObject = {**asdict(self), "fingerprint": self.fingerprint}
        return out


def classify(before: Seen, after: Seen) -> str | None:
    """The rule for BASE doing ``before`` and NEW doing ``after`` (None: no change)."""
    if before == after:
        return None
    b, a = before.result, after.result
    if b == "not run":
        return "CASE_ADDED"  # skipped on BASE (its schema lacked what the case needs)
    if a == "not run":
        return "CASE_REMOVED"
    if a in CRASHES and b not in CRASHES:
        return "NEW_CRASH" if a == "crash" else "NEW_HANG"
    if b in CRASHES:
        return "CRASH_CHANGED" if a in CRASHES else "CRASH_GONE"
    if "error" in (b, a):
        return "SETUP_CHANGED"
    if b == "accept" and a == "reject":
        return "NEWLY_REJECTED"
    if b == "reject" and a == "accept":
        return "NEWLY_ACCEPTED"
    if a == "reject":
        return "ERROR_CLASS_CHANGED" if before.error_class != after.error_class else "ERROR_TEXT_CHANGED"
    if before.migration != after.migration:
        if before.migration.startswith("completed") and not after.migration.startswith("completed"):
            return "MIGRATION_NOW_FAILS"
        if after.migration.startswith("completed") and not before.migration.startswith("completed"):
            return "MIGRATION_NOW_COMPLETES"
        return "MIGRATION_END_CHANGED"
    return "MIGRATION_ERROR_CHANGED"


def _kind(rec: CaseJSON) -> str:
    return "derived" if "derived" in rec.get("flags", ()) else "vector"


def compare(base: str, base_records: list[CaseJSON], new: str,
            new_records: list[CaseJSON]) -> list[Change]:
    """Every behaviour change from the build labelled ``base`` to ``new``, in case order."""
    old = {r["vector"]: r for r in base_records}
    cur = {r["vector"]: r for r in new_records}
    out = []
    for case in sorted(old.keys() | cur.keys()):
        was, now = old.get(case), cur.get(case)
        rec = cur[case] if case in cur else old[case]
        if was is None or now is None:
            rule = "CASE_ADDED" if was is None else "CASE_REMOVED"
            before = Seen.of(was).summary() if was else "(no such case)"
            after = Seen.of(now).summary() if now else "(no such case)"
        else:
            found = classify(Seen.of(was), Seen.of(now))
            if found is None:
                continue
            rule, before, after = found, Seen.of(was).summary(), Seen.of(now).summary()
        level, explanation = BEHAVIOUR_RULES[rule]
        defects = [r.get("defect") for r in (now, was) if r is not None]
        out.append(Change(base, new, case, _kind(rec), rec["command"], rec.get("description", ""),
                          rec.get("file", ""), rule, level, before, after, explanation,
                          next((d for d in defects if d), "")))
    return out


def _consumer_change(base: str, new: str, case: str, was: ConsumerJSON, now: ConsumerJSON) -> Change | None:
    before, after = what_happened(was), what_happened(now)
    if before == after or "not run" in (before, after):
        return None
    rule = ("CONSUMER_BROKEN" if before == "migrated" else "CONSUMER_FIXED" if after == "migrated"
            else "CONSUMER_CHANGED")
    level, explanation = BEHAVIOUR_RULES[rule]
    at = now if after != "migrated" else was
    return Change(base, new, case, "consumer", "consumer profile",
                  f"{now['consumer']} {now['consumer_version']}",
                  str(at.get("location") or at.get("file") or ""), rule, level, before, after,
                  explanation, now.get("defect") or was.get("defect") or "")


def consumer_changes(base: str, base_records: list[ConsumerJSON], new: str,
                     new_records: list[ConsumerJSON]) -> list[Change]:
    """Per consumer profile: its migration with BASE on both sides against NEW on
    both sides, and (when ``new_records`` has the cell) from BASE to NEW against
    BASE on both sides: the consumers a change breaks, names them."""
    def cell(records: list[ConsumerJSON], src: str, dst: str) -> dict[str, ConsumerJSON]:
        return {r["profile"]: r for r in records if (r["source"], r["destination"]) == (src, dst)}

    old, cur, upgrade = (cell(base_records, base, base), cell(new_records, new, new),
                         cell(new_records, base, new))
    out = []
    for pid in sorted(old):
        for case, now in ((pid, cur.get(pid)), (f"{pid} {base}->{new}", upgrade.get(pid))):
            if now is not None and (found := _consumer_change(base, new, case, old[pid], now)):
                out.append(found)
    return out


def worst(changes: list[Change]) -> int:
    """Rank of the worst change (-1 when there is none)."""
    return max((Level(c.level).rank for c in changes), default=-1)


@dataclass
class Step:
    """The changes from build ``base`` to build ``new`` (labels), and where each came from."""

    base: str
    new: str
    changes: list[Change]
    sources: dict[str, str] = field(default_factory=dict)

    def counts(self) -> dict[str, int]:
        return {lvl: sum(c.level == lvl for c in self.changes) for lvl in reversed(LEVELS)}

    def heading(self) -> str:
        counts = ", ".join(f"{n} {lvl}" for lvl, n in self.counts().items())
        return f"{self.base} -> {self.new}: {counts}"

    def at_least(self, level: str) -> list[Change]:
        return [c for c in self.changes if Level(c.level).rank >= Level(level).rank]


def by_label(doc: ResultsJSON) -> dict[str, list[CaseJSON]]:
    """A results document's case records per QEMU label, labels in version order."""
    out: dict[str, list[CaseJSON]] = {}
    for rec in doc["results"]:
        out.setdefault(rec["qemu"], []).append(rec)
    return {label: out[label] for label in sorted(out, key=label_order)}


def run_steps(doc: ResultsJSON) -> list[Step]:
    """The changes between each build of a run and the one before it (version order)."""
    groups = by_label(doc)
    labels = list(groups)
    consumers = doc.get("consumers") or []
    return [Step(a, b, compare(a, groups[a], b, groups[b]) + consumer_changes(a, consumers, b, consumers))
            for a, b in pairwise(labels)]
