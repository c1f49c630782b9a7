"""Hunting for argument trees that break QEMU: Hypothesis explores schema-valid
trees of a command on fresh QEMUs; every failure is shrunk, reproduced and
written as a candidate vector (see docs/hunt.md)."""
