"""Custom objects (issue #25): object types (a further list endpoint), and per type its records
(``/api/object-types/{id}/object-records``) and schema versions (``/api/object-types/{id}/schema-versions``),
child resources drawn like flow actions (:mod:`.children`: each belongs to a type that existed when it was created).

A type's ``current-schema`` is its newest schema version (none before its first). A record's ``record_properties``
follow the fields its type's schemas name.
"""

from __future__ import annotations

import random

from .children import parents
from .dataset import iso

TITLES = [
    "Loyalty account",
    "Return",
    "Subscription box",
    "Appointment",
    "Vehicle",
    "Warranty",
]
FIELDS = [
    ("tier", "string"),
    ("points", "int"),
    ("active", "boolean"),
    ("renewal", "timestamp"),
    ("notes", "string"),
]


def _schemas_of(b, t: int) -> list[int]:
    """The schema versions of object type ``t`` (indices, oldest first)."""
    return [
        k
        for k, p in enumerate(parents(b.ds, "object-schemas").tolist())
        if p == t and k not in b.ds.deleted.get("object-schemas", ())
    ]


def object_type(b, i: int, r: random.Random) -> tuple[dict, dict, dict]:
    created, updated = b.times(i)
    attrs = {"title": f"{TITLES[i % len(TITLES)]} {i}", "description": f"Custom object type {i}",
             "status": r.choice(["active", "active", "draft"]), "namespace": "custom-objects",
             "created_at": created, "updated_at": updated}  # fmt: skip
    versions = _schemas_of(b, i)
    schemas = b.peer("object-schemas")
    current = ("object-schema", schemas.id_of(versions[-1])) if versions else None
    rels = {
        "current-schema": current,
        "draft-schema": None,
        "schema-versions": [("object-schema", schemas.id_of(k)) for k in versions],
    }
    return attrs, rels, {}


def object_schema(b, i: int, r: random.Random) -> tuple[dict, dict, dict]:
    created, _ = b.times(i)
    fields = FIELDS[: 2 + i % 4]
    props = [{"id": k + 1, "name": n, "type": t, "description": f"The {n}"} for k, (n, t) in enumerate(fields)]
    attrs = {"title": f"Schema {i}", "description": f"Version {i}", "status": "active", "properties": props,
             "required": [fields[0][0]], "published_at": created, "visibility": r.choice(["private", "shared"])}  # fmt: skip
    return attrs, {"source-mapping": None}, {}


def object_record(b, i: int, r: random.Random) -> tuple[dict, dict, dict]:
    created, _ = b.times(i)
    props = {"tier": r.choice(["gold", "silver"]), "points": r.randint(0, 5000), "active": r.random() < 0.8,
             "renewal": iso(b.ds.created_us(b.name, i) + r.randint(1, 365) * 86_400_000_000), "notes": None}  # fmt: skip
    return {"record_properties": props}, {}, {}


OBJECT_CHILD_GENERATORS = {
    "object-records": object_record,
    "object-schemas": object_schema,
}
OBJECT_CHILD_ID_KINDS = {"object-records": "short", "object-schemas": "ulid"}
