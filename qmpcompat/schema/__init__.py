"""QAPI schemas: libvirt-style queries, normalization, snapshots and a differ."""

from qmpcompat.schema.query import SchemaIndex, parse_query, schema_get, schema_has

__all__ = ["SchemaIndex", "parse_query", "schema_get", "schema_has"]
