"""What a real QEMU did with one case (an ``Observation``): the one record every
runner fills in (a vector, a derived case, a transcript, a matrix cell, a
consumer replay) and every judge reads."""

from __future__ import annotations

from dataclasses import asdict, dataclass

from qmpcompat.errors import ENVIRONMENT_ERROR
from qmpcompat.harness import Reply
from qmpcompat.types import JSONObject, RunMode, json_list, json_object, json_text


@dataclass
class Observation:
    """What a real QEMU did with a vector.

    ``result`` is accept, reject, crash (QEMU died), hang (QEMU stopped
    answering and was killed), error (a precondition could not be set up) or
    corrupt (the migration completed on both sides, but the guest did not
    arrive intact: its memory, run state or transferred RAM is wrong).
    """

    result: str
    error_class: str | None = None
    desc: str | None = None
    migration: str | None = None  # final (or waiting) query-migrate status of the side under test
    peer_migration: str | None = None  # ... and of the other side, if there was one
    migration_error: str | None = None
    detail: str = ""  # crash, hang or set-up failure text, with QEMU's stderr tail
    guest: JSONObject | None = None  # what the checks of a real guest's arrival saw
    seconds: float = 0.0
    replies: list[JSONObject] | None = None  # a transcript: every step's answer
    qemu: str = RunMode.FRESH.value  # how the QEMU under test was had (a RunMode)
    # A failure on a reused QEMU run again alone on a fresh one (this observation):
    # what the reused QEMU did first ({"result", "detail"}).
    rerun: JSONObject | None = None
    step: str | None = None  # a consumer profile's: the step QEMU refused (or died or hung at)
    # True for a waiting case run ahead of its turn, on a background thread beside
    # the other cases (qmpcompat.vectors.ahead); its QEMU is as ``qemu`` says
    ahead: bool | None = None

    def to_json(self) -> JSONObject:
        return {k: v for k, v in asdict(self).items() if v not in (None, "")}

    @property
    def disagrees(self) -> bool:
        """True when this case was run again on a fresh QEMU and the fresh QEMU did
        otherwise than the reused one."""
        return self.rerun is not None and self.rerun.get("result") != self.result

    @classmethod
    def from_json(cls, data: JSONObject) -> Observation:
        """The observation ``data`` is the ``to_json`` of (TypeError when a member is
        of another shape)."""
        guest, replies, seconds = data.get("guest"), data.get("replies"), data.get("seconds", 0.0)
        rerun = data.get("rerun")
        if not isinstance(seconds, int | float):
            raise TypeError(f"an observation's seconds is not a number: {seconds!r}")
        return cls(str(data["result"]), json_text(data.get("error_class")),
                   json_text(data.get("desc")), json_text(data.get("migration")),
                   json_text(data.get("peer_migration")), json_text(data.get("migration_error")),
                   str(data.get("detail", "")), None if guest is None else json_object(guest),
                   seconds, None if replies is None else [json_object(r) for r in json_list(replies)],
                   qemu=RunMode(str(data.get("qemu", RunMode.FRESH.value))).value,
                   rerun=None if rerun is None else json_object(rerun),
                   step=json_text(data.get("step")), ahead=data.get("ahead") is True or None)

    @property
    def environment(self) -> bool:
        """True for an error whose cause is QEMU's environment (an
        ``EnvironmentFault``: a module or firmware of another build), not QEMU."""
        return self.result == "error" and ENVIRONMENT_ERROR in self.detail

    def summary(self) -> str:
        if self.result == "reject":
            at = f" at step {self.step}" if self.step else ""
            return f"reject{at} {self.error_class}: {self.desc}"
        if self.result == "accept":
            mig = f", migration {self.migration}" if self.migration else ""
            peer = f" (other side {self.peer_migration})" if self.peer_migration else ""
            err = f": {self.migration_error}" if self.migration_error else ""
            return f"accept{mig}{peer}{err}"
        return f"{self.result}: {self.detail}"


def observe(reply: Reply) -> Observation:
    if reply.ok:
        return Observation("accept")
    return Observation("reject", error_class=reply.error_class, desc=reply.desc)
