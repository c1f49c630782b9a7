"""The plan of a known defect's standalone reproducer, from its evidence.

A known defect names a vector (or a pair vector, whose cell is an ordinary
``migrate`` vector with a peer: ``pairs.case_vector``) and the builds it was seen
on. The plan is what the harness would do to run that vector on the first such
build, as data the standalone script plays:

- each side's QEMU options, made by the harness's own code (``Runner.qemu``:
  ``vectors.plan.qemu_options``, the guest's options from ``qmpcompat.guest``,
  then ``Qemu.qemu_options``) with the case dir written ``{tmpdir}``, so they
  follow whatever those functions produce;
- the files the guest needs in the case dir (whatever ``GuestSide`` writes),
  embedded;
- the events in the runner's order (``vectors.run``): start the QEMU under test,
  its set-up commands, a peer that runs before it, the guest settling, the
  command, following the migration (``cancel-after`` included), a peer after it,
  QEMU still answering;
- what the defect's builds do (``defect``), what QEMU documents (``expected``,
  the vector's expectation), and the builds affected and not (the versions,
  or pairs, real builds were seen on, with their Debian packages).

The script waits a second for the guest to settle instead of reading its
status word from guest memory (the harness's check of the test guest, which
the bug does not depend on), and does not pass fds (no known defect needs one;
a vector that does is refused with a ``ReproducerError``).
"""

from __future__ import annotations

import base64
import re
import shutil
from dataclasses import dataclass, field
from pathlib import Path

from qmpcompat.errors import ReproducerError
from qmpcompat.harness.process import private_dir
from qmpcompat.provision import QemuBuild
from qmpcompat.safety import Policy, option_problems
from qmpcompat.schema.sources.releases import build_baselines
from qmpcompat.types import JSONObject, Version
from qmpcompat.vectors.load import VectorSet
from qmpcompat.vectors.match import describe
from qmpcompat.vectors.model import Expectation, KnownDefect, Vector
from qmpcompat.vectors.pairs import PairVector, case_vector
from qmpcompat.vectors.plan import setup_commands
from qmpcompat.vectors.run import MIGRATION_TIMEOUT, GuestSide, Runner
from qmpcompat.vectors.safety import check_vector

SETTLE_SECONDS = 1.0  # the script's wait for the guest to start, instead of the harness's check
FORM = "uri/uri"  # the addressing form a pair defect's reproducer uses


@dataclass(frozen=True)
class Seen:
    """A build (or pair of builds) a claim was seen on: version(s) and Debian package(s)."""

    label: str  # "11.1.3" or "10.0.13->11.1.3"
    packages: str  # "Debian 1:11.1.3+ds-1" (each side's, for a pair)
    did: str = ""  # what it did, for a build that is not affected


@dataclass
class Plan:
    """A known defect's reproducer: the events the script plays and what it judges by."""

    defect: KnownDefect
    vector: Vector  # the vector played (a pair vector's cell)
    pair: PairVector | None
    source: Version  # the version the command lines are made for (the source, for a pair)
    destination: Version | None
    events: list[JSONObject] = field(default_factory=list)
    files: dict[str, bytes] = field(default_factory=dict)
    expected: Expectation | None = None
    affected: list[Seen] = field(default_factory=list)
    unaffected: list[Seen] = field(default_factory=list)

    @property
    def title(self) -> str:
        return f"{self.defect.id}: {self.defect.summary}"

    def to_json(self) -> JSONObject:
        """What the script reads (``PLAN``)."""
        exp = self.expected
        defect = expectation_json(self.defect.observed)
        if signal := crash_signal(self.defect):
            defect["signal"] = signal
        if self.pair is not None and defect.get("migration") == "failed":
            defect["either-side"] = True  # a pair's migration fails on either side
        return {"title": self.title, "summary": self.defect.summary,
                "events": list(self.events), "alive": ["subject"],
                "files": {n: base64.b64encode(b).decode() for n, b in sorted(self.files.items())},
                "defect": defect,
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


def _stand_in(version: Version) -> QemuBuild:
    """A build of ``version`` for the harness's option code (which reads only its version)."""
    return QemuBuild("qemu-system-x86_64", version, f"QEMU emulator version {version.label}")


def _argv(runner: Runner, vec: Vector, version: Version, name: str, tmp: Path,
          side: GuestSide | None, *, incoming: bool, source: bool) -> list[str]:
    """One side's QEMU options as the harness makes them, the case dir as ``{tmpdir}``."""
    qemu = runner.qemu(vec, _stand_in(version), incoming, name, tmp, side, source)
    return [arg.replace(str(tmp), "{tmpdir}") for arg in qemu.qemu_options(tmp / f"{name}.qmp")]


def _side_events(vec: Vector, name: str, role: str, argv: list[str]) -> list[JSONObject]:
    """Start one side and send it the vector's set-up commands."""
    out: list[JSONObject] = [{"do": "start", "side": name, "role": role, "argv": list(argv)}]
    out += [{"do": "command", "side": name, "execute": c, "arguments": a}
            for c, a, _where in setup_commands(vec)]
    return out


def _settle(vec: Vector, name: str) -> list[JSONObject]:
    if vec.guest is None:
        return []
    return [{"do": "settle", "side": name, "seconds": SETTLE_SECONDS,
             "stop": vec.guest.state == "paused"}]


def events(vec: Vector, source: Version, destination: Version | None,
           tmp: Path) -> list[JSONObject]:
    """The events the runner's order gives ``vec``, its QEMU under test of version
    ``source`` (the one it runs ``vec.command`` on) and its peer of ``destination``."""
    if vec.fds or (vec.peer and vec.peer.fds) or vec.postcopy:
        raise ReproducerError(vec.id, "the reproducer does not pass fds or switch to postcopy")
    runner = Runner()
    other = destination or source
    side = GuestSide(vec.guest, tmp, min(source, other)) if vec.guest else None
    migrate = vec.command == "migrate"
    roles = ("source", "destination") if migrate else ("destination", "source")
    out = _side_events(vec, "subject", roles[0], _argv(
        runner, vec, source, "subject", tmp, side, incoming=vec.incoming == "defer", source=migrate))
    peer: list[JSONObject] = []
    if vec.peer is not None:
        peer_source = vec.peer.command == "migrate"
        peer = _side_events(vec, "peer", roles[1], _argv(
            runner, vec, other, "peer", tmp, side, incoming=not peer_source, source=peer_source))
        peer += _settle(vec, "peer") if peer_source else []
        args = vec.peer.arguments if vec.peer.arguments is not None else vec.arguments
        peer.append({"do": "command", "side": "peer", "execute": vec.peer.command,
                     "arguments": args})
        if vec.peer.when == "before" and peer_source:
            peer.append({"do": "wait", "side": "peer", "seconds": MIGRATION_TIMEOUT,
                         "need": "completed", "peer": True})
    after = vec.peer is not None and vec.peer.when == "after"
    out += [] if after else peer
    out += _settle(vec, "subject") if migrate else []
    out.append({"do": "command", "side": "subject", "execute": vec.command,
                "arguments": vec.arguments, "main": True})
    wait: JSONObject = {"do": "wait", "side": "subject",
                        "seconds": vec.cancel_after or MIGRATION_TIMEOUT}
    if vec.cancel_after:
        wait["cancel-after"] = vec.cancel_after
    if migrate or vec.peer is not None:
        out += [] if migrate or not after else peer
        out.append({**wait, "need": "completed"} if after else wait)
        out += peer if migrate and after else []
        if vec.peer is not None:
            out.append({"do": "wait", "side": "peer", "seconds": MIGRATION_TIMEOUT, "peer": True})
    return out


def json_list_of_str(value: object) -> list[str]:
    """A JSON list of strings (an event's argv) as one."""
    return [str(v) for v in value] if isinstance(value, list) else []


def _packages() -> dict[str, str]:
    """Version -> Debian package of every build a baseline was committed of."""
    return {k.version: str(k.source.get("package") or "") for k in build_baselines()}


def _seen(labels: list[str], packages: dict[str, str], did: str = "") -> list[Seen]:
    return [Seen(label, " -> ".join(packages.get(v, "") or "unpackaged" for v in label.split("->")),
                 did) for label in labels]


def _vector_claims(plan: Plan, vec: Vector, packages: dict[str, str]) -> None:
    defect = plan.defect
    plan.expected = vec.expectation_for(plan.source)
    plan.affected = _seen(list(defect.observed_on), packages)
    fine = [(v, describe(e)) for e in vec.expect for v in e.observed_on
            if v not in defect.observed_on]
    plan.unaffected = [s for v, did in fine for s in _seen([v], packages, did)]


def _pair_claims(plan: Plan, pv: PairVector, packages: dict[str, str]) -> None:
    defect = plan.defect
    assert plan.destination is not None
    exp = pv.expectation_for(plan.source, plan.destination, FORM)
    plan.expected = Expectation(defect.versions, "accept", migration=exp.migration) if exp else None
    plan.affected = _seen(list(defect.observed_on), packages)
    sources = {a.split("->")[0] for a in defect.observed_on}
    destinations = {a.split("->")[1] for a in defect.observed_on}

    def near(pair: str) -> bool:  # another source to the same destination, or the reverse
        src, dst = pair.split("->")
        return ((dst in destinations and src not in sources | destinations)
                or (src in sources and dst not in destinations))

    line = plan.source.line  # first the pairs from a build of the affected source's line

    def first(pair: str) -> bool:
        return Version.parse(pair.split("->")[0]).line != line

    near_pairs = sorted((p for e in pv.expect for p in e.observed_on if near(p)), key=first)
    plan.unaffected = _seen(near_pairs, packages, "migration completed")


def make_plan(vs: VectorSet, defect_id: str) -> Plan:
    """The reproducer plan of known defect ``defect_id`` of ``vs``, for the first
    build (or pair) it was seen on. ReproducerError when there is no such defect,
    it was seen on no build, or its vector needs what the script does not do."""
    defect = next((d for d in vs.defects if d.id == defect_id), None)
    if defect is None:
        raise ReproducerError(defect_id, "no such known defect",
                              f"known: {', '.join(d.id for d in vs.defects) or 'none'}")
    if not defect.observed_on:
        raise ReproducerError(defect_id, "no build was seen showing it (no observed-on)")
    versions = [Version.parse(v) for v in defect.observed_on[0].split("->")]
    pair = next((p for p in vs.pairs if p.id == defect.vector), None)
    vec = case_vector(pair, FORM) if pair else next((v for v in vs.vectors
                                                     if v.id == defect.vector), None)
    if vec is None:
        raise ReproducerError(defect_id, f"its vector {defect.vector} is not in the vector set")
    if problems := check_vector(vec):
        raise ReproducerError(defect_id, "the safety gate refuses its vector: " + "; ".join(problems))
    plan = Plan(defect, vec, pair, versions[0], versions[1] if len(versions) > 1 else None)
    tmp = private_dir("qmpv-")
    try:
        plan.events = events(vec, plan.source, plan.destination, tmp)
        plan.files = {p.name: p.read_bytes() for p in sorted(tmp.iterdir()) if p.is_file()}
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    refused = [p for e in plan.events if e["do"] == "start"
               for p in option_problems(json_list_of_str(e["argv"]), Policy.template())]
    if refused:
        raise ReproducerError(defect_id, "the safety gate refuses its command line: "
                              + "; ".join(refused))
    packages = _packages()
    if pair is not None:
        _pair_claims(plan, pair, packages)
    else:
        _vector_claims(plan, vec, packages)
    return plan
