"""The test guest's kernel image: fixed bytes with five parameters patched in.

The bytes are what ``qmpcompat/data/guest.S`` assembles to (a test re-assembles
it when binutils is installed). QEMU's ``-kernel`` loader recognises the
multiboot header and starts the code in 32-bit flat mode; no firmware image,
disk or network is involved beyond the build's own SeaBIOS.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass

LOAD = 0x100000  # where the kernel lands in guest memory
SEED, FILL_START, FILL_END, HOT_START, HOT_END, STATUS, BEAT = range(0x20, 0x3C, 4)
MARKER_OFFSET = 0x3C
MARKER = b"QMPCOMPAT-MARK!!"
READY = 0x51415244  # 'DRAQ': the pattern is in memory
STATUS_ADDR = LOAD + STATUS  # status then beat: 8 bytes the harness reads back
PATTERN_START = 0x200000  # 2 MiB: the pattern covers guest RAM from here to its end
HOT_BYTES = 4 << 20  # the pages a running guest keeps dirtying
WEYL = 0x9E3779B9  # the step of the guest's pattern (odd: no repeat within 2**32 words)

IMAGE = bytes.fromhex(
    "02b0ad1b00000100fe4f51e4000010000000100000000000000000004c001000"
    "78563412000020000000000400002000000060000000000000000000514d5043"
    "4f4d5041542d4d41524b2121faa1200010008b3d240010008b0d2800100005b9"
    "79379e890783c70439cf72f28b3d24001000be3c001000b904000000f3a5c705"
    "34001000445241518b3d2c0010008b0d30001000ff471081c70010000039cf72"
    "f3ff0538001000ebdf")


@dataclass(frozen=True)
class Layout:
    """Where the guest writes what, for a guest of ``memory`` bytes."""

    memory: int
    seed: int

    @property
    def pattern_bytes(self) -> int:
        return self.memory - PATTERN_START

    @property
    def hot_end(self) -> int:
        return min(PATTERN_START + HOT_BYTES, self.memory)


def build_image(layout: Layout) -> bytes:
    """The kernel image for ``layout``: the fixed code with its parameters set."""
    if not 0 < layout.seed < 1 << 32:
        raise ValueError("the seed must be a non-zero 32-bit number")
    if layout.memory <= PATTERN_START + HOT_BYTES or layout.memory > 1 << 31:
        raise ValueError("guest memory must be more than 6 MiB and at most 2 GiB")
    image = bytearray(IMAGE)
    for offset, value in ((SEED, layout.seed), (FILL_START, PATTERN_START),
                          (FILL_END, layout.memory), (HOT_START, PATTERN_START),
                          (HOT_END, layout.hot_end)):
        struct.pack_into("<I", image, offset, value)
    return bytes(image)


def pattern(seed: int, words: int) -> bytes:
    """The first ``words`` 32-bit words the guest writes at PATTERN_START (before
    the marker replaces the first four), computed here as the guest does."""
    return b"".join(struct.pack("<I", (seed + WEYL * (i + 1)) & 0xFFFFFFFF) for i in range(words))
