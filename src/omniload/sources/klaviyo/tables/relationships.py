"""Child tables: records read once per parent record (flow actions per flow, memberships per list, ...), and
relationship endpoints (a tag's campaigns, flows, lists and segments; a catalog item's categories).

Each spec names its parent (spec.py :class:`Parent`); :mod:`..children` lists the parent ids and pages every
parent's endpoint through the generic extractor. Values follow Klaviyo's OpenAPI revision 2026-07-15 (these
endpoints are not in the digest); ``tests/test_table_specs.py`` and ``tests/test_table_families.py`` check them.
"""

from __future__ import annotations

from ....types import JSON, TEXT, TS
from ..spec import Parent, TableSpec

_BY_UPDATED = dict(cursor="updated", lower_op="greater-or-equal", upper_op="less-than", sort="updated")
_BY_JOINED = dict(cursor="joined_group_at", lower_op="greater-or-equal", upper_op="less-than", sort="joined_group_at",
                  extra_params={"fields[profile]": "joined_group_at"}, id_column="profile_id")  # fmt: skip

RELATIONSHIPS: list[TableSpec] = [
    TableSpec("flow-actions", "/api/flows/{id}/flow-actions", "flow-action", dict(created=TS, updated=TS, definition=JSON),
              3, 60, 50, parent=Parent("flows", column="flow_id", fields="id"), **_BY_UPDATED),
    TableSpec("flow-messages", "/api/flow-actions/{id}/flow-messages", "flow-message",
              dict(channel=TEXT, created=TS, updated=TS, definition=JSON),
              3, 60, 50, parent=Parent("flow-actions", column="flow_action_id", fields="id"), **_BY_UPDATED),
    TableSpec("list-memberships", "/api/lists/{id}/profiles", "profile", dict(joined_group_at=TS), 75, 750, 100,
              parent=Parent("lists", column="list_id", fields="id"), primary_key=("list_id", "profile_id"), reread_by=("list_id", "profile_id"),
              **_BY_JOINED),
    TableSpec("segment-memberships", "/api/segments/{id}/profiles", "profile", dict(joined_group_at=TS), 75, 750, 100,
              parent=Parent("segments", column="segment_id", fields="id"), primary_key=("segment_id", "profile_id"),
              reread_by=("segment_id", "profile_id"), **_BY_JOINED),
    # Relationship endpoints: resource identifiers only, one list per parent; read whole each run (replace).
    TableSpec("tag-links", "/api/tags/{id}/relationships/{kind}", "", {}, 3, 60, None,
              parent=Parent("tags", column="tag_id", fields="id"), kinds=("campaigns", "flows", "lists", "segments"),
              primary_key=("tag_id", "kind", "id")),
    TableSpec("catalog-item-categories", "/api/catalog-items/{id}/relationships/categories", "catalog-category", {},
              350, 3500, 100, parent=Parent("catalog-items", column="item_id", fields="id"), id_column="category_id",
              primary_key=("item_id", "category_id")),
]  # fmt: skip
