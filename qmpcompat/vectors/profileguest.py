"""The one place the consumer-profile runner touches the test guest.

Everything about the guest (its firmware and pattern, options, start and arrival checks) is
``qmpcompat.guest``'s and ``GuestSide``'s (``qmpcompat.vectors.run``); a
profile only says which guest (``GuestSpec``) and how the destination starts.
These few functions are the seam: when the guest changes, only they follow.
"""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

from qmpcompat import guest
from qmpcompat.harness import Qemu, QemuOptions
from qmpcompat.types import JSONObject, Version
from qmpcompat.vectors.run import GuestSide


def new_side(spec: guest.GuestSpec, tmp: Path, version: Version) -> GuestSide:
    """The guest of one run; ``version`` (the older side's) picks the machine type."""
    return GuestSide(spec, tmp, version)


def _options(spec: guest.GuestSpec, version: Version, files: guest.GuestFiles, source: bool,
             incoming: str, timeout: float) -> QemuOptions:
    opts = guest.options(spec, version, files, source=source, incoming=incoming == "defer",
                         timeout=timeout)
    if incoming and incoming != "defer":  # the destination listens from its command line
        opts = replace(opts, extra_args=(*opts.extra_args, "-incoming", incoming))
    return opts


def side_options(side: GuestSide, source: bool, incoming: str, timeout: float) -> QemuOptions:
    """One side's QEMU options: the guest's, and ``incoming`` (``defer``, a uri, or "")."""
    return _options(side.spec, side.version, side.files, source, incoming, timeout)


def template_argv(spec: guest.GuestSpec, source: bool, incoming: str) -> list[str]:
    """A side's command line as written (the case dir a placeholder), for the gate."""
    opts = _options(spec, Version(1, 0, 0), guest.template_files(spec), source, incoming, 1.0)
    return ["-M", opts.machine, "-m", opts.memory or "", *opts.extra_args,
            *(["-incoming", "defer"] if opts.incoming_defer else [])]


def settle(q: Qemu, side: GuestSide, tmp: Path) -> None:
    """Start the guest on the source (stopped when the profile's guest is paused)."""
    side.source_state = guest.settle_source(q, side.spec, tmp)


def arrival(src: Qemu, dst: Qemu, side: GuestSide, tmp: Path,
            source_info: JSONObject, resume: bool) -> guest.Arrival:
    """Whether the guest arrived intact (memory, run state, RAM transferred); with
    ``resume`` false a running guest is left held for the consumer's own ``cont``
    (``runs_on`` judges it after)."""
    return guest.verify(src, dst, side.spec, side.layout, tmp, side.source_state, source_info,
                        resume)


def runs_on(dst: Qemu, side: GuestSide, tmp: Path, found: guest.Arrival) -> None:
    """After the consumer continued a guest ``arrival`` left held: it runs on, in the
    source's run state (``found`` gets the run state and any problem)."""
    guest.runs_on(dst, tmp, found, side.source_state)
