"""QAPI schemas, in three layers that import one way down:

- ``model``: the query index over introspection entries (libvirt-style
  queries) and the normalized model every input is compared in;
- ``sources``: where a schema comes from (a build's own ``query-qmp-schema``
  through ``sources.live``, the one place for "this build's schema"; snapshots;
  QAPI source of a directory, a git ref or a Debian source package; and
  ``sources.resolve``, which turns what a user names into one of those);
- ``differ``: the structural diff, the rule table that classifies it, the
  ignore file, the schema gate and the differ's reports.

The query API is re-exported here.
"""

from qmpcompat.schema.model.query import SchemaIndex, parse_query, schema_get, schema_has

__all__ = ["SchemaIndex", "parse_query", "schema_get", "schema_has"]
