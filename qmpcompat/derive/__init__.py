"""Cases derived from a binary's own ``query-qmp-schema``: every required member
left out, an unknown member at every object, every member given every wrong
JSON type, every enum given a value it lacks, each with QEMU's predicted error."""

from qmpcompat.derive.cases import DerivedCase, derive
from qmpcompat.derive.shapes import Shape, TypeWalker

__all__ = ["DerivedCase", "Shape", "TypeWalker", "derive"]
