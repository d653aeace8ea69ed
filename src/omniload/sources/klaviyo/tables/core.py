"""The 15 Klaviyo list endpoints as table specs (see spec.py for what a spec says).

Values follow Klaviyo's OpenAPI revision 2026-07-15 (``../shared/klaviyo/openapi-stable-2026-07-15.json``);
``tests/test_table_specs.py`` checks them against the sandbox's rules file, generated from that spec.
"""

from __future__ import annotations

from datetime import timedelta

from ....types import BOOL, DECIMAL, INT, JSON, TEXT, TS
from ..properties import COLUMNS as KNOWN_COLUMNS
from ..properties import SOURCE as PROPERTIES
from ..spec import Owner, TableSpec

_CATALOG = dict(title=TEXT, description=TEXT, price=DECIMAL, url=TEXT, image_full_url=TEXT, image_thumbnail_url=TEXT,
                images=JSON, custom_metadata=JSON, published=BOOL, created=TS, updated=TS)  # fmt: skip

# Klaviyo lists archived flows and campaigns, and hidden images, only when asked for them: read both halves.
ARCHIVED = (("equals(archived,false)", {}), ("equals(archived,true)", {}))
HIDDEN = (("equals(hidden,false)", {}), ("equals(hidden,true)", {}))

CORE: list[TableSpec] = [
    TableSpec("events", "/api/events", "event", dict(timestamp=INT, event_properties=JSON, datetime=TS, uuid=TEXT),
              350, 3500, 1000, cursor="datetime", lower_op="greater-or-equal", upper_op="less-than", sort="datetime",
              to_one=("profile", "metric"), immutable=True, lookback=timedelta(days=1), deep_lookback=timedelta(days=7),
              derived=KNOWN_COLUMNS, derived_from=PROPERTIES, reread_by=("profile_id",)),
    TableSpec("profiles", "/api/profiles", "profile",
              dict(email=TEXT, phone_number=TEXT, external_id=TEXT, first_name=TEXT, last_name=TEXT, organization=TEXT,
                   locale=TEXT, title=TEXT, image=TEXT, created=TS, updated=TS, last_event_date=TS, location=JSON,
                   properties=JSON, subscriptions=JSON),
              75, 750, 100, cursor="updated", lower_op="greater-than", upper_op="less-than", sort="updated",
              extra_params={"additional-fields[profile]": "subscriptions"},
              dependents=(("events", "profile_id"), ("list-memberships", "profile_id"), ("segment-memberships", "profile_id"),
                          ("subscriptions", "profile_id"),
                          # no profile column (never marked): its rows are only read again when the profile comes back
                          ("event_attributions", "profile_id"))),
    TableSpec("campaigns", "/api/campaigns", "campaign",
              dict(name=TEXT, status=TEXT, archived=BOOL, audiences=JSON, send_options=JSON, tracking_options=JSON,
                   send_strategy=JSON, created_at=TS, scheduled_at=TS, updated_at=TS, send_time=TS),
              10, 150, 100, cursor="updated_at", lower_op="greater-or-equal", upper_op="less-than", sort="updated_at",
              partitions=tuple((f"equals(messages.channel,'{ch}'),equals(archived,{arch})", {"channel": ch})
                               for ch in ("email", "sms", "mobile_push") for arch in ("false", "true"))),
    TableSpec("metrics", "/api/metrics", "metric", dict(name=TEXT, created=TS, updated=TS, integration=JSON),
              10, 150, None, cursor="updated"),
    TableSpec("tags", "/api/tags", "tag", dict(name=TEXT), 3, 60, 50, to_one=("tag-group",)),
    TableSpec("coupons", "/api/coupons", "coupon", dict(external_id=TEXT, description=TEXT, monitor_configuration=JSON),
              75, 750, 100),
    TableSpec("catalog-variants", "/api/catalog-variants", "catalog-variant",
              dict(external_id=TEXT, sku=TEXT, inventory_policy=INT, inventory_quantity=INT, **_CATALOG),
              350, 3500, 100, cursor="updated", sort="created", to_one=("item",),
              owner=Owner("catalog-items", "variants", "item_id", "/api/catalog-items/{id}/relationships/variants")),
    TableSpec("catalog-categories", "/api/catalog-categories", "catalog-category",
              dict(external_id=TEXT, name=TEXT, updated=TS), 350, 3500, 100, cursor="updated", sort="created"),
    TableSpec("catalog-items", "/api/catalog-items", "catalog-item", dict(external_id=TEXT, **_CATALOG),
              350, 3500, 100, cursor="updated", sort="created"),
    TableSpec("flows", "/api/flows", "flow",
              dict(name=TEXT, status=TEXT, archived=BOOL, created=TS, updated=TS, trigger_type=TEXT),
              3, 60, 50, cursor="updated", lower_op="greater-or-equal", upper_op="less-than", sort="updated",
              partitions=ARCHIVED),
    TableSpec("lists", "/api/lists", "list", dict(name=TEXT, created=TS, updated=TS, opt_in_process=TEXT),
              75, 750, 10, cursor="updated", lower_op="greater-than", sort="updated"),
    TableSpec("images", "/api/images", "image",
              dict(name=TEXT, image_url=TEXT, format=TEXT, size=INT, hidden=BOOL, updated_at=TS),
              10, 150, 100, cursor="updated_at", lower_op="greater-or-equal", upper_op="less-than", sort="updated_at",
              partitions=HIDDEN),
    TableSpec("segments", "/api/segments", "segment",
              dict(name=TEXT, definition=JSON, created=TS, updated=TS, is_active=BOOL, is_processing=BOOL, is_starred=BOOL),
              75, 750, 10, cursor="updated", lower_op="greater-than", sort="updated"),
    TableSpec("forms", "/api/forms", "form", dict(name=TEXT, status=TEXT, ab_test=BOOL, created_at=TS, updated_at=TS),
              3, 60, 100, cursor="updated_at", lower_op="greater-or-equal", upper_op="less-than", sort="updated_at"),
    TableSpec("templates", "/api/templates", "template",
              dict(name=TEXT, editor_type=TEXT, html=TEXT, text=TEXT, amp=TEXT, created=TS, updated=TS),
              75, 750, 10, cursor="updated", lower_op="greater-or-equal", upper_op="less-than", sort="updated"),
]  # fmt: skip
