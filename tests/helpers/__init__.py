"""Helpers the tiers of qmpcompat's own tests share (tests/ is on sys.path in
every pytest run of them: pytest puts the directory of tests/conftest.py there):
``suite_runner`` runs the conformance suite in a subprocess as a user would
(forked by ``zygote`` from a Python that has imported pytest and qmpcompat),
``fault_plugin`` is the pytest plugin those runs load to make QEMU misbehave on
purpose, ``ciformats`` checks CI outputs against their published formats, and
``shared`` makes an expensive set-up once per session for every xdist worker."""
