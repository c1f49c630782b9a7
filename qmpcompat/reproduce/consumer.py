"""The plan of a consumer profile's known defect: the two QEMUs started as the
profile's runner starts them, and the exact QMP exchange the real consumer sent
on each side, up to and including the step the defect is at.

The exchange is fixed from committed data, offline: the profile's program
resolved against a recording of the real consumer on an affected pair
(``vectors/consumers/wire/PROFILE/SRC-to-DST.json``, held by
``wirecheck.hold``). Each step whose condition held there is played with the
arguments it builds from the replies QEMU really gave, which are the recorded
message's (the check says so; the port and case dir stay placeholders); a step
whose condition did not hold is left out, as the consumer left it out. A step
the recording does not show as the profile says it, or a refusal the recording
does not show, is a ``ReproducerError``: the plan plays only what was seen. Of
the affected pairs with a recording, the one whose older side is oldest is
used: its machine type runs on the most builds, so the same script also shows
the unaffected ones.

The events: start the source and the destination with the options the runner
gives them (``profileguest.side_options``, then ``Qemu.qemu_options``), let the
source's guest start, then each step on its side: a command, a wait (the script
polls query-migrate where the consumer waits for MIGRATION events), or a
pass-fd (getfd with the fd in the same message, SCM_RIGHTS, a socket the script
connects to the step's address itself, as the consumer does: a build that takes
the consumer's ``migrate`` needs the fd to migrate at all). After the defect's
step, a build that took it gets what the consumer sent next where QEMU took it:
the profile's later steps resolved against a recording of an unaffected pair
with the same destination (their conditions as they held there), so an
unaffected build shows the consumer's migration to its end; without such a
recording, the script follows the migration until it ends or waits for the
consumer. What the consumer did after the refusal (its clean-up), and what it
sent that no step of the profile has, are left out and named in the plan's
``Exchange``.
"""

from __future__ import annotations

from collections import Counter
from pathlib import Path

from qmpcompat.claims.history import known_releases
from qmpcompat.errors import ReproducerError, VectorError
from qmpcompat.harness import Qemu
from qmpcompat.reproduce.model import Exchange, Plan, packages, seen
from qmpcompat.reproduce.owner import whose
from qmpcompat.reproduce.parts import in_case_dir, settle, stand_in, templated
from qmpcompat.safety import fill
from qmpcompat.types import JSONObject, Version, json_object
from qmpcompat.vectors import profileguest
from qmpcompat.vectors.load import VectorSet
from qmpcompat.vectors.match import describe, differences
from qmpcompat.vectors.model import Expectation, KnownDefect
from qmpcompat.vectors.observation import Observation
from qmpcompat.vectors.profilegate import gate_problems
from qmpcompat.vectors.profiles import Profile, Step
from qmpcompat.vectors.run import MIGRATION_TIMEOUT
from qmpcompat.vectors.versions import parse_pair_label
from qmpcompat.vectors.wire import Recording, recording_name, recordings
from qmpcompat.vectors.wirecheck import WireCheck, hold

TIMEOUT = 10.0  # the runner's QMP timeout (not on the command line)


def _recording(vs: VectorSet, defect: KnownDefect, profile: Profile
               ) -> tuple[Recording, dict[str, Recording]]:
    """The recording of an affected pair whose older side is oldest (the first in
    ``observed-on`` of those), and every recording of the profile by name."""
    try:
        found = recordings(vs.root, profile.id)
    except VectorError as exc:
        raise ReproducerError(defect.id, f"cannot read the recordings of {profile.id}: {exc}") \
            from exc
    usable = [(min(pair), i, found[name]) for i, label in enumerate(defect.observed_on)
              if (pair := parse_pair_label(label))
              and (name := recording_name(pair[0].label, pair[1].label)) in found]
    if not usable:
        raise ReproducerError(
            defect.id, f"no recording of {profile.name} on a pair it was seen on "
            f"({', '.join(defect.observed_on)}): its exchange is taken from one",
            f"record one (qmpcompat consumers observe {profile.id} --only SOURCE --to "
            "DESTINATION, docs/libvirt.md) and commit it under "
            f"{vs.root.name}/consumers/wire/{profile.id}/")
    return min(usable, key=lambda u: (u[0], u[1]))[2], found


def _played(defect: KnownDefect, profile: Profile, check: WireCheck) -> tuple[list[Step], Step | None]:
    """The steps the consumer took up to and including the defect's (all, when the
    defect names none), and that step; each as the recording shows it."""
    steps, at = list(profile.steps), defect.observed.step
    if at is not None:
        ids = [s.id for s in steps]
        if at not in ids:
            raise ReproducerError(defect.id, f"its step {at} is not a step of {profile.id}")
        steps = steps[:ids.index(at) + 1]
    for step in steps:
        if step.id not in check.skipped and not check.seen(step.id):
            why = "; ".join(str(d) for d in check.differences if d.step == step.id)
            raise ReproducerError(defect.id, f"{check.recording.file} does not show step "
                                  f"{step.id} as {profile.id} says it: {why or 'not sent'}")
    played = [s for s in steps if s.id not in check.skipped]
    return played, next((s for s in played if s.id == at), None)


def _error(check: WireCheck, step: Step) -> JSONObject:
    """QEMU's error to ``step`` in the recording (empty when it took the step)."""
    msg = next(m for m in check.recording.messages if m.get("n") == check.matched[step.id])
    return json_object(msg.get("error") or {})


def _shows(defect: KnownDefect, step: Step | None, check: WireCheck) -> None:
    """ReproducerError unless the recording shows the refusal the defect records."""
    if defect.observed.result != "reject" or step is None:
        return
    n, error = check.matched[step.id], _error(check, step)
    obs = Observation("reject", error_class=str(error.get("class")), desc=str(error.get("desc")),
                      step=step.id)
    if not error or (diffs := differences(defect.observed, obs)):
        raise ReproducerError(defect.id, f"{check.recording.file} #{n} does not show the "
                              f"refusal it records ({describe(defect.observed)}): "
                              + ("; ".join(diffs) if error else "QEMU took the step there"))


def _event(step: Step, check: WireCheck, main: bool) -> JSONObject:
    out: JSONObject = {"side": step.side, "step": step.id}
    if step.fd_name:
        out.update({"do": "getfd", "fdname": step.fd_name, "connect": step.fd_connect})
    elif step.execute is None:
        out.update({"do": "wait", "seconds": MIGRATION_TIMEOUT, "until": list(step.wait_until),
                    "by": step.wait_by})
    else:
        out.update({"do": "command", "execute": step.execute,
                    "arguments": check.built[step.id]})
        if not step.stop_on_error:
            out["may-fail"] = True  # the consumer goes on after a refusal
    if main:
        out["main"] = True
    return out


def _continuation(defect: KnownDefect, profile: Profile, found: dict[str, Recording],
                  main: Step | None, destination: Version) -> tuple[list[Step], WireCheck] | None:
    """What the consumer sent after the defect's step where QEMU took it: the
    profile's later steps as a recording of an unaffected pair with the same
    destination shows them (each seen there), or None when no recording does."""
    if main is None:
        return None
    later = profile.steps[[s.id for s in profile.steps].index(main.id) + 1:]
    for rec in found.values():
        pair = f"{rec.version('source')}->{rec.version('destination')}"
        if pair in defect.observed_on or rec.version("destination") != destination.label:
            continue
        check = hold(profile, rec)
        if check.seen(main.id) and not _error(check, main) \
                and all(s.id in check.skipped or check.seen(s.id) for s in later):
            return [s for s in later if s.id not in check.skipped], check
    return None


def _events(profile: Profile, played: list[Step], main: Step | None, check: WireCheck,
            then: tuple[list[Step], WireCheck] | None, versions: tuple[Version, Version],
            tmp: Path) -> list[JSONObject]:
    side = profileguest.new_side(profile.guest, tmp, min(versions))
    incoming = fill(profile.incoming, {"tmpdir": str(tmp)})  # {port}: the script's
    out: list[JSONObject] = []
    for name, version in zip(("source", "destination"), versions, strict=True):
        opts = profileguest.side_options(side, name == "source",
                                         incoming if name == "destination" else "", TIMEOUT)
        argv = Qemu(stand_in(version), opts, name).qemu_options(tmp / f"{name}.qmp")
        out.append({"do": "start", "side": name, "role": name,
                    "argv": list(templated(argv, tmp))})
    out.append(settle("source", profile.guest.state == "paused"))
    out += [_event(s, check, s is main) for s in played]
    if then is not None:  # on a build that takes it, what the consumer sends next
        out += [_event(s, then[1], False) for s in then[0]]
    elif main is not None and main.execute == "migrate":
        out.append({"do": "wait", "side": main.side, "seconds": MIGRATION_TIMEOUT})
    return out


def _exchange(vs: VectorSet, profile: Profile, check: WireCheck, played: list[Step],
              main: Step | None, then: tuple[list[Step], WireCheck] | None) -> Exchange:
    rec, doc = check.recording, check.recording.doc
    cut = check.matched[main.id] if main is not None else None
    taken = set(check.matched.values())
    passed: Counter[str] = Counter()
    for m in rec.messages:
        n = int(str(m.get("n")))
        if "execute" in m and n not in taken and m["execute"] != "qmp_capabilities" \
                and (cut is None or n < cut):
            passed[str(m["execute"])] += int(str(m.get("repeated", 1)))
    after = [f"{s.id} ({s.what})" for s in (*profile.steps, *profile.cancel)
             if cut is not None and check.matched.get(s.id, 0) > cut]
    outcome = json_object(doc.get("outcome") or {})
    return Exchange(
        file=f"{vs.root.name}/{rec.file}", recorded=str(doc["recorded"]), consumer=profile.name,
        package=str(doc["consumer"]), version=str(doc["consumer-version"]),
        suite=str(doc["consumer-suite"]), command=str(doc["command"]),
        said=str(outcome.get("virsh-error") or ""),
        passed_over=tuple(f"{c} x{k}" if k > 1 else c for c, k in passed.items()),
        after=tuple(after), fds=tuple(s.fd_name for s in played if s.fd_name),
        then="" if then is None else f"{vs.root.name}/{then[1].recording.file}, recorded on "
        f"{then[1].recording.doc['recorded']}")


def _claims(plan: Plan, profile: Profile, main: Step | None, then: WireCheck | None) -> None:
    defect, known = plan.defect, packages()
    assert plan.destination is not None
    made_for = f"{plan.source.label}->{plan.destination.label}"  # first: what --run plays
    plan.affected = seen(sorted(defect.observed_on, key=lambda p: p != made_for), known)
    fine = [(p, e.outcome) for e in profile.expect for p in e.observed_on
            if p not in defect.observed_on]
    here = plan.destination.label

    def first(item: tuple[str, str]) -> tuple[bool, tuple[int, ...]]:  # this destination, newest
        src, dst = item[0].split("->")
        return dst != here, tuple(-x for x in Version.parse(src))

    plan.unaffected = [s for p, did in sorted(fine, key=first) for s in seen([p], known, did)]
    taken = f"{main.execute or main.what} ({main.id})" if main else "exchange"
    plan.expected = Expectation(defect.versions, "accept")
    if then is not None:  # the consumer's exchange then goes on to its end
        rec = then.recording
        fine_exp = profile.expectation_for(Version.parse(rec.version("source")),
                                           Version.parse(rec.version("destination")))
        plan.expected = fine_exp.claim if fine_exp else plan.expected
    plan.expected_label = f"what {profile.name} needs, and the unaffected builds do: QEMU " \
                          f"takes its {taken}"
    plan.fine = f"took {profile.name}'s {taken}" + (
        f", migration {plan.expected.migration}" if plan.expected.migration else "")


def consumer_plan(vs: VectorSet, defect: KnownDefect, profile: Profile) -> Plan:
    """The reproducer plan of ``defect``, a known defect of consumer profile
    ``profile`` (see the module's description)."""
    if problems := gate_problems(profile, False):
        raise ReproducerError(defect.id, "the safety gate refuses its profile: "
                              + "; ".join(problems))
    rec, found = _recording(vs, defect, profile)
    check = hold(profile, rec)
    played, main = _played(defect, profile, check)
    _shows(defect, main, check)
    versions = (Version.parse(rec.version("source")), Version.parse(rec.version("destination")))
    then = _continuation(defect, profile, found, main, versions[1])
    plan = Plan(defect, None, None, versions[0], versions[1], profile=profile,
                alive=(main.side,) if main else ("source", "destination"))
    plan.events, plan.files = in_case_dir(defect.id, lambda tmp: _events(
        profile, played, main, check, then, versions, tmp))
    plan.exchange = _exchange(vs, profile, check, played, main, then)
    plan.owner = whose(defect, profile.name, main.execute or "" if main else "",
                       check.built.get(main.id, {}) if main else {}, versions[0],
                       known_releases())
    _claims(plan, profile, main, then[1] if then else None)
    return plan
