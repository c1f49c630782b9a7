"""A real guest for end-to-end migrations: its own tiny firmware, a memory
pattern loaded before its CPU starts (and pages it keeps dirtying while it
runs), the QEMU options that start it, and the checks that it arrived intact."""

from qmpcompat.guest.live import (
    Arrival,
    GuestFiles,
    new_layout,
    options,
    recipe,
    runs_on,
    settle_source,
    template_files,
    verify,
    write_files,
)
from qmpcompat.guest.spec import GuestSpec, GuestSpecError, parse_guest

__all__ = ["Arrival", "GuestFiles", "GuestSpec", "GuestSpecError", "new_layout", "options",
           "parse_guest", "recipe", "runs_on", "settle_source", "template_files", "verify",
           "write_files"]
