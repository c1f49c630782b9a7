"""The test guest's two files and where it keeps what in guest RAM.

The firmware is a 64 KiB BIOS image (``qmpcompat/data/guest.S``; a test
re-assembles it when binutils is installed and compares the bytes): fixed code
with four parameters patched in. The memory pattern is 1 MiB of bytes drawn
from the case's seed, loaded into RAM at a seed-chosen address before the CPU
starts (``-device loader``). ``Layout`` says where everything is for one case:
the status word and pass counter, the pages the running guest dirties, the
pattern, and the pages sampled from the rest of RAM.
"""

from __future__ import annotations

import random
import struct
from dataclasses import dataclass
from functools import cached_property

FIRMWARE_BYTES = 64 << 10
# The assembled pieces: (offset in the image, bytes); everything else is zero.
_PIECES = (
    (0x0000, bytes.fromhex(
        "514d50434f4d5041542d47554553542100001000000010000000500000000000"
        "0000000000000000000000000000000000000000000000000000000000000000"
        "66b810008ed88ec08ed08b1d1000ffffc7430400000000c703445241518b3d14"
        "00ffff8b0d1800ffffff471081c70010000039cf72f3ff4304a11c00ffff85c0"
        "74db39430472d6f4ebfd8db4000066900000000000000000ffff0000009acf00"
        "ffff00000092cf0017009000ffff")),
    (0xFF00, bytes.fromhex("fa2e660f0116a8000f20c06683c8010f22c066ea4000ffff08")),
    (0xFFF0, bytes.fromhex("e90dff")),
)
STATUS, HOT_START, HOT_END, PASSES = 0x10, 0x14, 0x18, 0x1C  # the patched parameters' offsets
READY = 0x51415244  # 'DRAQ': the guest runs

PAGE = 4096
STATUS_ADDR = 0x100000  # status, then the pass counter: the first 8 bytes of the hot pages
HOT_BYTES = {"running": 4 << 20, "paused": 256 << 10}  # the pages the guest dirties
# Passes over them before the CPU halts: a paused guest's source is stopped once
# the guest says it runs, so one pass is all it needs, and a halted CPU leaves
# the host's CPU to the QEMUs starting beside it; a running guest never halts.
PASSES_BEFORE_HALT = {"running": 0, "paused": 1}
PATTERN_BYTES = 1 << 20
PATTERN_LOW = 8 << 20  # the pattern lies above the hot pages
SAMPLES = 8  # pages of the rest of RAM compared on both sides
_HOLE = (0xA0000, 0x100000)  # legacy VGA and ROM shadows: no plain RAM


@dataclass(frozen=True)
class Layout:
    """Where the guest keeps what, for a guest of ``memory`` bytes in run state
    ``state``; ``seed`` draws the pattern, its address and the sampled pages."""

    memory: int
    seed: int
    state: str = "paused"

    def __post_init__(self) -> None:
        if not 0 < self.seed < 1 << 32:
            raise ValueError("the seed must be a non-zero 32-bit number")
        if self.memory < PATTERN_LOW + PATTERN_BYTES or self.memory > 1 << 31:
            raise ValueError("guest memory must be at least 9 MiB and at most 2 GiB")

    @property
    def hot_end(self) -> int:
        return STATUS_ADDR + HOT_BYTES[self.state]

    @cached_property
    def pattern_addr(self) -> int:
        """The page-aligned guest address of the pattern."""
        pages = (self.memory - PATTERN_LOW - PATTERN_BYTES) // PAGE
        return PATTERN_LOW + random.Random(self.seed).randrange(pages + 1) * PAGE

    @property
    def pattern_recipe(self) -> tuple[int, int]:
        """How the pattern is made: ``random.Random(SEED).randbytes(SIZE)`` (the same
        in any Python from 3.9), as (SEED, SIZE): what a standalone script needs to
        make it again."""
        return self.seed ^ 0x5EED, PATTERN_BYTES

    @cached_property
    def pattern(self) -> bytes:
        """The pattern's bytes (the same for the same seed)."""
        seed, size = self.pattern_recipe
        return random.Random(seed).randbytes(size)

    @property
    def pattern_bytes(self) -> int:
        return PATTERN_BYTES

    @cached_property
    def samples(self) -> tuple[int, ...]:
        """``SAMPLES`` distinct page addresses of the rest of RAM (neither status, hot
        pages, pattern nor the legacy hole), in address order."""
        taken = (_HOLE, (STATUS_ADDR, self.hot_end),
                 (self.pattern_addr, self.pattern_addr + PATTERN_BYTES))
        draw = random.Random(self.seed ^ 0x5A3B)
        chosen: set[int] = set()
        while len(chosen) < SAMPLES:
            page = draw.randrange(self.memory // PAGE) * PAGE
            if not any(lo <= page < hi for lo, hi in taken):
                chosen.add(page)
        return tuple(sorted(chosen))


def firmware(layout: Layout) -> bytes:
    """The firmware image for ``layout``: the fixed code with its parameters set."""
    image = bytearray(FIRMWARE_BYTES)
    for offset, piece in _PIECES:
        image[offset:offset + len(piece)] = piece
    for offset, value in ((STATUS, STATUS_ADDR), (HOT_START, STATUS_ADDR),
                          (HOT_END, layout.hot_end), (PASSES, PASSES_BEFORE_HALT[layout.state])):
        struct.pack_into("<I", image, offset, value)
    return bytes(image)

