"""The schema model: ``query`` (the typed introspection entries, an index over
them and libvirt-style queries on it) and ``normalize`` (the structural model, with type
names resolved, that every input is compared in). Imports nothing else of
``qmpcompat.schema``."""
