"""The plan of a known defect's standalone reproducer, from its evidence.

A known defect names a vector (or a pair vector, whose cell is an ordinary
``migrate`` vector with a peer: ``pairs.case_vector``), or a consumer profile
(whose plan ``consumer`` makes), and the builds it was seen on. The plan of a
vector's defect is what the harness would do to run that vector on the first
such build, as data the standalone script plays:

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
the bug does not depend on), and passes no fds a vector declares (no vector's
known defect needs one; a vector that does is refused with a ``ReproducerError``).
"""

from __future__ import annotations

from pathlib import Path

from qmpcompat.errors import ReproducerError
from qmpcompat.reproduce.consumer import consumer_plan
from qmpcompat.reproduce.model import Plan, packages, seen
from qmpcompat.reproduce.parts import in_case_dir, settle, stand_in, templated
from qmpcompat.types import JSONObject, Version
from qmpcompat.vectors.load import VectorSet
from qmpcompat.vectors.match import describe
from qmpcompat.vectors.model import Expectation, Vector
from qmpcompat.vectors.pairs import PairVector, case_vector
from qmpcompat.vectors.plan import setup_commands
from qmpcompat.vectors.run import MIGRATION_TIMEOUT, GuestSide, Runner
from qmpcompat.vectors.safety import check_vector

FORM = "uri/uri"  # the addressing form a pair defect's reproducer uses


def _argv(runner: Runner, vec: Vector, version: Version, name: str, tmp: Path,
          side: GuestSide | None, *, incoming: bool, source: bool) -> list[str]:
    """One side's QEMU options as the harness makes them, the case dir as ``{tmpdir}``."""
    qemu = runner.qemu(vec, stand_in(version), incoming, name, tmp, side, source)
    return templated(qemu.qemu_options(tmp / f"{name}.qmp"), tmp)


def _side_events(vec: Vector, name: str, role: str, argv: list[str]) -> list[JSONObject]:
    """Start one side and send it the vector's set-up commands."""
    out: list[JSONObject] = [{"do": "start", "side": name, "role": role, "argv": list(argv)}]
    out += [{"do": "command", "side": name, "execute": c, "arguments": a}
            for c, a, _where in setup_commands(vec)]
    return out


def _settle(vec: Vector, name: str) -> list[JSONObject]:
    return [] if vec.guest is None else [settle(name, vec.guest.state == "paused")]


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


def _vector_claims(plan: Plan, vec: Vector, known: dict[str, str]) -> None:
    defect = plan.defect
    plan.expected = vec.expectation_for(plan.source)
    plan.affected = seen(list(defect.observed_on), known)
    fine = [(v, describe(e)) for e in vec.expect for v in e.observed_on
            if v not in defect.observed_on]
    plan.unaffected = [s for v, did in fine for s in seen([v], known, did)]


def _pair_claims(plan: Plan, pv: PairVector, known: dict[str, str]) -> None:
    defect = plan.defect
    assert plan.destination is not None
    exp = pv.expectation_for(plan.source, plan.destination, FORM)
    plan.expected = Expectation(defect.versions, "accept", migration=exp.migration) if exp else None
    plan.affected = seen(list(defect.observed_on), known)
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
    plan.unaffected = seen(near_pairs, known, "migration completed")


def make_plan(vs: VectorSet, defect_id: str) -> Plan:
    """The reproducer plan of known defect ``defect_id`` of ``vs``, for the first
    build (or pair) it was seen on (a consumer profile's: ``consumer_plan``).
    ReproducerError when there is no such defect, it was seen on no build, or its
    vector needs what the script does not do."""
    defect = next((d for d in vs.defects if d.id == defect_id), None)
    if defect is None:
        raise ReproducerError(defect_id, "no such known defect",
                              f"known: {', '.join(d.id for d in vs.defects) or 'none'}")
    if not defect.observed_on:
        raise ReproducerError(defect_id, "no build was seen showing it (no observed-on)")
    profile = next((p for p in vs.profiles if p.id == defect.vector), None)
    if profile is not None:
        return consumer_plan(vs, defect, profile)
    versions = [Version.parse(v) for v in defect.observed_on[0].split("->")]
    pair = next((p for p in vs.pairs if p.id == defect.vector), None)
    vec = case_vector(pair, FORM) if pair else next((v for v in vs.vectors
                                                     if v.id == defect.vector), None)
    if vec is None:
        raise ReproducerError(defect_id, f"its vector {defect.vector} is not in the vector set")
    if problems := check_vector(vec):
        raise ReproducerError(defect_id, "the safety gate refuses its vector: " + "; ".join(problems))
    plan = Plan(defect, vec, pair, versions[0], versions[1] if len(versions) > 1 else None)
    plan.events, plan.files = in_case_dir(defect_id, lambda tmp: events(
        vec, plan.source, plan.destination, tmp))
    if pair is not None:
        _pair_claims(plan, pair, packages())
    else:
        _vector_claims(plan, vec, packages())
    return plan
