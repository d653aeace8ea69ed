"""Generators of the account's configuration (issue #25): data sources, tracking settings, web feeds, webhook
topics and webhooks, served as further list endpoints (registered in :data:`.more.MORE`).

Record ``i`` comes from ``(seed, resource, i)`` and its times from the dataset's timelines, like every other
resource. Values follow the record schemas of ``openapi-stable-2026-07-15.json`` (the conformance test validates
the answers against them): web feeds and webhooks have an update time the clock touches; data sources, tracking
settings (one record, the account's) and webhook topics have none.
"""

from __future__ import annotations

import random

TOPICS = ["event:klaviyo.sent_sms", "event:klaviyo.clicked_sms", "event:klaviyo.failed_to_deliver_sms",
          "event:klaviyo.received_sms", "event:klaviyo.consented_to_receive_sms", "event:klaviyo.unsubscribed_from_sms",
          "event:klaviyo.opened_push", "event:klaviyo.received_push"]  # fmt: skip
FEEDS = [
    "Blog_posts",
    "New_arrivals",
    "Best_sellers",
    "Restocked",
    "Weather",
    "Store_events",
]
_CAMPAIGN_DYNAMIC = [
    "campaign_id",
    "campaign_name",
    "campaign_name_id",
    "message_type",
    "profile_id",
]
_FLOW_DYNAMIC = ["flow_id", "flow_name", "message_name", "message_type", "profile_id"]


def data_source(b, i: int, r: random.Random) -> tuple[dict, dict, dict]:
    title = f"{r.choice(['Loyalty', 'Returns', 'Subscriptions', 'Warehouse'])} source {i}"
    attrs = {"title": title, "visibility": r.choice(["private", "shared"]), "description": f"Records of {title.lower()}",
             "namespace": "custom-objects"}  # fmt: skip
    return attrs, {}, {}


def _param(r: random.Random, dynamic: list[str]) -> dict | None:
    roll = r.random()
    if roll < 0.15:
        return None
    return (
        {"type": "dynamic", "value": r.choice(dynamic)}
        if roll < 0.6
        else {"type": "static", "value": r.choice(["klaviyo", "email"])}
    )


def tracking_setting(b, i: int, r: random.Random) -> tuple[dict, dict, dict]:
    attrs = {"auto_add_parameters": r.random() < 0.7,
             **{f"utm_{p}": {"campaign": _param(r, _CAMPAIGN_DYNAMIC), "flow": _param(r, _FLOW_DYNAMIC)}
                for p in ("source", "medium", "campaign", "id", "term")},
             "custom_parameters": [{"name": "utm_content", "campaign": {"type": "static", "value": "newsletter"},
                                    "flow": {"type": "dynamic", "value": "flow_name"}}] if r.random() < 0.5 else None}  # fmt: skip
    return attrs, {}, {}


def web_feed(b, i: int, r: random.Random) -> tuple[dict, dict, dict]:
    created, updated = b.times(i)
    name = f"{r.choice(FEEDS)}_{i}"
    attrs = {"name": name, "url": f"https://feeds.example.com/{name.lower()}.{r.choice(['json', 'xml'])}",
             "request_method": r.choice(["get", "post"]), "content_type": r.choice(["json", "xml"]), "created": created,
             "updated": updated, "status": r.choice(["ok", "ok", "refreshing", "disabled", None])}  # fmt: skip
    return attrs, {}, {}


def webhook_topic(b, i: int, r: random.Random) -> tuple[dict, dict, dict]:
    return {}, {}, {}


def webhook(b, i: int, r: random.Random) -> tuple[dict, dict, dict]:
    created, updated = b.times(i)
    topics = b.peer("webhook-topics")
    n = max(1, b.ds.timelines["webhook-topics"].count_until(b.ds.created_us(b.name, i)))
    chosen = sorted({r.randrange(n) for _ in range(r.randint(1, 3))})
    attrs = {"name": f"Webhook {i}", "description": r.choice([None, "Forward SMS events to the warehouse"]),
             "endpoint_url": f"https://hooks.example.com/{b.id_of(i)[:6]}...", "enabled": r.random() < 0.8,
             "created_at": created, "updated_at": updated}  # fmt: skip
    return (
        attrs,
        {"webhook-topics": [("webhook-topic", topics.id_of(t)) for t in chosen]},
        {},
    )


__all__ = ["data_source", "tracking_setting", "web_feed", "webhook", "webhook_topic"]
