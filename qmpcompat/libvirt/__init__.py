"""The real libvirt, run here: Debian's packages unpacked into the cache
(``tree``), two session daemons as an unprivileged uid (``session``), the test
guest as a domain (``domain``), libvirt's monitor log read back (``monitorlog``)
and one observed migration recorded (``observe``). The recordings' format and
the comparison with a profile are ``qmpcompat.vectors.wire`` and
``qmpcompat.vectors.wirecheck``: they need no libvirt."""
