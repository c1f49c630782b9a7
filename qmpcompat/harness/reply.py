"""What QEMU answers over QMP, as the harness hands it on: a ``Reply`` to one
command (a result or an error), ``CommandFailed`` for a command the harness
needed, and ``wire``, where qemu.qmp's untyped values become JSON."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import cast, overload

from qmpcompat.errors import QemuError
from qmpcompat.types import JSON, JSONObject


@overload
def wire(value: dict[str, object]) -> JSONObject: ...
@overload
def wire(value: object) -> JSON: ...
def wire(value: object) -> JSON:
    """What qemu.qmp (typed ``object``) parsed from the wire: JSON."""
    return cast(JSON, value)


@dataclass(frozen=True)
class Reply:
    """What QEMU answered to one command: a result, or an error class and desc."""

    command: str
    arguments: Mapping[str, JSON] | None
    result: JSON = None
    error_class: str | None = None
    desc: str | None = None
    seconds: float = 0.0

    @property
    def ok(self) -> bool:
        return self.error_class is None

    def __str__(self) -> str:
        if self.ok:
            return f"{self.command}: ok {self.result!r}"
        return f"{self.command}: {self.error_class}: {self.desc}"


class CommandFailed(QemuError):
    """A command the harness needed (not the one under test) returned an error."""

    def __init__(self, reply: Reply) -> None:
        super().__init__(f"{reply.command} failed: {reply.error_class}: {reply.desc}")
        self.reply = reply
