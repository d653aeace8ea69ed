"""Account configuration that analysts join (issue #25): data sources, tracking settings, web feeds, webhook
topics and webhooks.

Values follow Klaviyo's OpenAPI revision 2026-07-15; ``tests/test_account_config.py`` checks them against it. Web
feeds are the one endpoint here that filters on a time that moves with a change (``updated``, ``>=`` and ``<``):
merged, filtered on the server. Webhooks have an ``updated_at`` the API does not filter on: merged, the interval
kept on the client (as custom metrics), and reconciled by an id scan. Data sources, tracking settings (one
record: the account's) and webhook topics (a catalogue of ids, no attributes) have no time at all: read whole and
replaced each run. Each endpoint is its own rate-limit bucket, so ``all`` runs them beside the slow tables; web
feeds, webhooks and webhook topics are 1/s, 15/m, but hold a handful of records (one request each per run).
"""

from __future__ import annotations

from ....types import BOOL, JSON, TEXT, TS
from ..spec import TableSpec

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
]  # fmt: skip
