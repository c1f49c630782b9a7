"""qmpcompat: conformance and compatibility suite for QEMU's migration QMP interface."""

__version__ = "0.1.0"
