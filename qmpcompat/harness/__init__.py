"""Driving QEMU: processes that never outlive the run (``process``; the temp dirs
they work in are made and reaped by ``qmpcompat.reaper``), QMP through qemu.qmp
(``qemu``: a ``Qemu`` and its typed session and waits; ``reply``: what it
answers; ``pool``: fresh QEMUs with spares started ahead; ``forkserver``: QEMUs
forked from one already loaded; ``closer``: a killed QEMU's teardown on a
background thread), and probes of what a build can do (``features``)."""

from qmpcompat.harness.qemu import MAX_TIMEOUT, Qemu, QemuOptions, check_starts
from qmpcompat.harness.reply import CommandFailed, Reply

__all__ = ["MAX_TIMEOUT", "CommandFailed", "Qemu", "QemuOptions", "Reply", "check_starts"]
