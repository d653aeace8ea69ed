"""Account configuration that analysts join (issue #25): data sources, tracking settings, web feeds, webhook
topics and webhooks, and which lists, segments and metrics trigger which flows.

Values follow Klaviyo's OpenAPI revision 2026-07-15; ``tests/test_account_config.py`` checks them against it. Web
feeds are the one endpoint here that filters on a time that moves with a change (``updated``, ``>=`` and ``<``):
merged, filtered on the server. Webhooks have an ``updated_at`` the API does not filter on: merged, the interval
kept on the client (as custom metrics), and reconciled by an id scan. Data sources, tracking settings (one
record: the account's) and webhook topics (a catalogue of ids, no attributes) have no time at all: read whole and
replaced each run. Each endpoint is its own rate-limit bucket, so ``all`` runs them beside the slow tables; web
feeds, webhooks and webhook topics are 1/s, 15/m, but hold a handful of records (one request each per run).

Flow triggers come from the relationship endpoints ``/api/{lists,segments,metrics}/{id}/relationships/flow-triggers``
(resource identifiers only: the flow ids), read once per list, segment or metric through the child machinery
(children.py), like a catalog item's categories: one row per (trigger, flow), read whole and replaced each run
(nothing says when a trigger changes). One request per parent: lists and segments at 3/s, 60/m, metrics at
10/s, 150/m, each its own bucket.

A metric's properties (``/api/metrics/{id}/metric-properties``, with ``additional-fields[metric-property]=
sample_values``) are read once per metric the same way (1/s, 15/m, fixed pages: one request per metric), read
whole and replaced each run (no time attribute).

A form's versions (``/api/forms/{id}/form-versions``, the ``form_version_id`` of form events and form reports) are
read once per form the same way (3/s, 60/m, pages of 100: one request per form), filtered on the server on
``updated_at`` (``>=``, ``<``) and merged, as flow actions are; a deleted form's versions are marked with it.
"""

from __future__ import annotations

from ....types import BOOL, JSON, TEXT, TS
from ..spec import Parent, TableSpec


def _triggers(parent: str, column: str, burst: int, steady: int) -> TableSpec:
    """The flows each record of ``parent`` (lists, segments, metrics) triggers: one row per (record, flow)."""
    return TableSpec(f"{parent.rstrip('s')}-flow-triggers", f"/api/{parent}/{{id}}/relationships/flow-triggers", "flow", {},
                     burst, steady, None, parent=Parent(parent, column=column, fields="id"), id_column="flow_id",
                     primary_key=(column, "flow_id"))  # fmt: skip


_UTM = {f"utm_{p}": JSON for p in ("source", "medium", "campaign", "id", "term")}

CONFIG: list[TableSpec] = [
    TableSpec("data-sources", "/api/data-sources", "data-source",
              dict(title=TEXT, visibility=TEXT, description=TEXT, namespace=TEXT), 3, 60, 100),
    TableSpec("tracking-settings", "/api/tracking-settings", "tracking-setting",
              dict(auto_add_parameters=BOOL, **_UTM, custom_parameters=JSON), 10, 150, 1),
    TableSpec("web-feeds", "/api/web-feeds", "web-feed",
              dict(name=TEXT, url=TEXT, request_method=TEXT, content_type=TEXT, created=TS, updated=TS, status=TEXT),
              1, 15, 20, cursor="updated", lower_op="greater-or-equal", upper_op="less-than", sort="updated"),
    TableSpec("webhook-topics", "/api/webhook-topics", "webhook-topic", {}, 1, 15, None),
    TableSpec("webhooks", "/api/webhooks", "webhook",
              dict(name=TEXT, description=TEXT, endpoint_url=TEXT, enabled=BOOL, created_at=TS, updated_at=TS),
              1, 15, None, cursor="updated_at"),
    _triggers("lists", "list_id", 3, 60),
    _triggers("segments", "segment_id", 3, 60),
    _triggers("metrics", "metric_id", 10, 150),
    TableSpec("form-versions", "/api/forms/{id}/form-versions", "form-version",
              dict(form_type=TEXT, variation_name=TEXT, ab_test=JSON, status=TEXT, created_at=TS, updated_at=TS),
              3, 60, 100, parent=Parent("forms", column="form_id", fields="id"), cursor="updated_at",
              lower_op="greater-or-equal", upper_op="less-than", sort="updated_at"),
    TableSpec("metric-properties", "/api/metrics/{id}/metric-properties", "metric-property",
              dict(label=TEXT, property=TEXT, inferred_type=TEXT, sample_values=JSON), 1, 15, None,
              parent=Parent("metrics", column="metric_id", fields="id"),
              extra_params={"additional-fields[metric-property]": "sample_values"}),
]  # fmt: skip
