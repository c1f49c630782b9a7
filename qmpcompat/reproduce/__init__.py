"""Findings people can send upstream: for every known defect, a standalone
reproducer generated from its evidence (``plan``: the QEMU command lines the
harness itself would use and the QMP exchange of its vector; ``consumer``: for a
consumer profile's defect, the real consumer's recorded exchange; ``model``,
``parts``: what every plan is and is made of; ``script``: a short Python script
that needs nothing of qmpcompat) and a report ready for qemu-devel or the Debian
bug tracker (``report``), saying whose bug a consumer's defect is (``owner``)."""
