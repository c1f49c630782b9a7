"""Driving QEMU: processes that never outlive the run, and QMP through qemu.qmp."""

from qmpcompat.harness.qemu import CommandFailed, Qemu, QemuOptions, Reply, check_starts, timeout_arg

__all__ = ["CommandFailed", "Qemu", "QemuOptions", "Reply", "check_starts", "timeout_arg"]
