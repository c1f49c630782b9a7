"""Where schemas come from, each read into a ``SchemaInput`` (``input``):

- ``live``: a build's own ``query-qmp-schema``, read once per binary and
  process, with its query index (``SchemaCache``): "this build's schema";
- ``snapshot``: canonical JSON snapshots and the committed baselines;
- ``qapi_source`` (parse ``qapi/*.json``), ``qapi_convert`` (to introspection
  entries), ``debsrc`` (a Debian source package) and ``qapi`` (those as inputs);
- ``libvirt``: the releases libvirt recorded (``libvirt:VERSION[:ARCH]``), and
  ``releases``: the committed schemas of every known release;
- ``resolve``: what a user names (a version, a binary, a file, ``REPO@REF``,
  ``debian:VERSION``, ``libvirt:VERSION``) to the input it means.
"""
