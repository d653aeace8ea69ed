"""Custom objects (issue #25): object types, their records and their schema versions.

Object types are a list endpoint with an ``updated_at`` the API does not filter on: merged, the interval kept on
the client (as webhooks), reconciled by an id scan. Records and schema versions are read per type through the
child machinery (children.py): ``/api/object-types/{id}/object-records`` (pages of 100) and
``/api/object-types/{id}/schema-versions`` (fixed pages), neither with a time to filter on, so both are read whole
and replaced each run. All records land in ONE long table keyed (``object_type_id``, ``id``), their properties as
JSON (``record_properties``): types come and go and their schemas change, which a table per type would turn into
tables appearing, vanishing and changing columns between runs; the schema versions table says which fields each
type has (a type's newest version is its current schema). All 3/s, 60/m, each endpoint its own bucket, scope
``custom-objects:read``.
"""

from __future__ import annotations

from ....types import JSON, TEXT, TS
from ..spec import Parent, TableSpec

_TYPE = Parent("object-types", column="object_type_id", fields="id")

OBJECTS: list[TableSpec] = [
    TableSpec("object-types", "/api/object-types", "object-type",
              dict(title=TEXT, description=TEXT, status=TEXT, namespace=TEXT, created_at=TS, updated_at=TS),
              3, 60, None, cursor="updated_at"),
    TableSpec("object-records", "/api/object-types/{id}/object-records", "object-record", dict(record_properties=JSON),
              3, 60, 100, parent=_TYPE, primary_key=("object_type_id", "id")),
    TableSpec("object-schemas", "/api/object-types/{id}/schema-versions", "object-schema",
              dict(title=TEXT, description=TEXT, status=TEXT, properties=JSON, required=JSON, published_at=TS, visibility=TEXT),
              3, 60, None, parent=_TYPE, primary_key=("object_type_id", "id")),
]  # fmt: skip
