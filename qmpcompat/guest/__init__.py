"""A real guest for end-to-end migrations: a tiny kernel that writes a known
pattern into guest RAM (and keeps dirtying it while it runs), the QEMU
options that start it, and the checks that it arrived intact."""

from qmpcompat.guest.live import Arrival, new_layout, options, settle_source, verify, write_kernel
from qmpcompat.guest.spec import GuestSpec, GuestSpecError, parse_guest

__all__ = ["Arrival", "GuestSpec", "GuestSpecError", "new_layout", "options", "parse_guest",
           "settle_source", "verify", "write_kernel"]
