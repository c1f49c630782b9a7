"""Hunting for argument trees that break QEMU: Hypothesis explores schema-valid
trees of a command (``strategies``) and short command sequences around it
(``state``), on one QEMU while cases leave it unchanged (``explore``, ``run``);
every failure is shrunk (``reduce``), reproduced, named by its signature
(``cases``), compared with the known defects (``known``), and written as a
candidate vector (``findings``) and a bug report (``report``, ``backtrace``);
``floor`` measures QEMU alone. See docs/hunt.md."""
