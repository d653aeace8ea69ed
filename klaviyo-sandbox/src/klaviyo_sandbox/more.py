"""Generators of the sandbox's further list resources (issue #12): tag groups, coupon codes, push tokens, custom
and mapped metrics, universal content, accounts and reviews.

Like every other resource, record ``i`` comes from ``(seed, resource, i)`` and its times from the dataset's
timelines, so the records scale with ``--scale`` and new ones appear as the clock moves. Relationships point
only at records that existed when the record was created (so the tie never changes): a coupon code's coupon is
drawn by :func:`.children.parents` (coupon codes are children of coupons, listed with a ``coupon.id`` filter),
a review's item among the catalog items of its time. Campaigns and flows get their tags here too
(:func:`tags_of`), and campaign messages, served only as ``included`` resources, their attributes
(:func:`campaign_message`).
"""

from __future__ import annotations

import random
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np

from . import config, ids, objects
from .children import parents
from .dataset import DAY_US, iso, mix

WORDS = ["Summer", "Winter", "Flash", "VIP", "Welcome", "Holiday", "Launch", "Restock", "Loyalty", "Weekend"]
CODE_STATUS = ["UNASSIGNED", "ASSIGNED_TO_PROFILE", "USED", "EXPIRED"]
INDUSTRIES = ["Apparel & Accessories", "Food & Beverage", "Health & Beauty", "Home & Garden", "Electronics"]
ZONES = ["America/New_York", "Europe/London", "Europe/Berlin", "Australia/Sydney"]  # all with DST (reports' days)


def _existing(b, name: str, i: int) -> int:
    """How many records of ``name`` existed when record ``i`` of ``b`` was created (at least one)."""
    return max(1, b.ds.timelines[name].count_until(b.ds.created_us(b.name, i)))


def _tag_group(b, i: int, r: random.Random) -> tuple[dict, dict, dict]:
    attrs = {"name": f"{r.choice(WORDS)} group {i}", "exclusive": r.random() < 0.3, "default": i == 0}
    return attrs, {"tags": []}, {}


def _coupon_code(b, i: int, r: random.Random) -> tuple[dict, dict, dict]:
    coupon = b.peer("coupons").id_of(int(parents(b.ds, b.name)[i]))
    status = r.choice(CODE_STATUS)
    profile = None
    if status != "UNASSIGNED":
        profile = b.peer("profiles").id_of(r.randrange(b.ds.profiles_at(b.ds.created_us(b.name, i))))
    expires = (
        None
        if r.random() < 0.4
        else iso(b.ds.created_us(b.name, i) // 1_000_000 * 1_000_000 + r.randint(30, 365) * DAY_US)
    )
    attrs = {"unique_code": f"{coupon}-{b.id_of(i).upper()}", "expires_at": expires, "status": status}
    rels = {"coupon": ("coupon", coupon), "profile": ("profile", profile) if profile else None}
    return attrs, rels, {"coupon.id": coupon, "profile.id": profile}


def _push_token(b, i: int, r: random.Random) -> tuple[dict, dict, dict]:
    created, _ = b.times(i)
    ios = r.random() < 0.5
    profile = b.peer("profiles").id_of(r.randrange(b.ds.profiles_at(b.ds.created_us(b.name, i))))
    metadata = {"app_id": "com.example.shop", "app_name": "Example Shop", "app_version": f"{r.randint(1, 5)}.{r.randint(0, 9)}",
                "device_model": r.choice(["iPhone15,2", "Pixel 8"]) if ios else r.choice(["SM-S911B", "Pixel 7"]),
                "os_name": "ios" if ios else "android", "os_version": str(r.randint(13, 18)), "klaviyo_sdk": "swift" if ios else "android",
                "sdk_version": f"4.{r.randint(0, 3)}.0", "environment": r.choice(["release", "debug"])}  # fmt: skip
    attrs = {"created": created, "token": f"{mix_hex(b, i)}", "enablement_status": r.choice(["AUTHORIZED", "DENIED", "NOT_DETERMINED"]),
             "platform": "ios" if ios else "android", "vendor": "apns" if ios else "fcm",
             "background": r.choice(["AVAILABLE", "DENIED", "RESTRICTED"]), "recorded_date": created, "metadata": metadata}  # fmt: skip
    return attrs, {"profile": ("profile", profile)}, {"profile.id": profile}


def mix_hex(b, i: int) -> str:
    r = b.rng(i ^ 0x70C)
    return "".join(f"{r.getrandbits(32):08x}" for _ in range(8))


def _custom_metric(b, i: int, r: random.Random) -> tuple[dict, dict, dict]:
    created, updated = b.times(i)
    metrics = b.peer("metrics")
    chosen = sorted({r.randrange(_existing(b, "metrics", i)) for _ in range(r.randint(1, 3))})
    groups = [
        {"metric_id": metrics.id_of(m), "metric_filters": None, "value_property": r.choice([None, "$value"])}
        for m in chosen
    ]
    definition = {"aggregation_method": r.choice(["count", "value"]), "metric_groups": groups}
    attrs = {
        "name": f"{r.choice(WORDS)} custom metric {i}",
        "created": created,
        "updated": updated,
        "definition": definition,
    }
    return attrs, {"metrics": [("metric", metrics.id_of(m)) for m in chosen]}, {}


def _mapped_metric(b, i: int, r: random.Random) -> tuple[dict, dict, dict]:
    _, updated = b.times(i)
    metric = ("metric", b.peer("metrics").id_of(r.randrange(_existing(b, "metrics", i))))
    custom = None
    if r.random() < 0.3:
        custom = ("custom-metric", b.peer("custom-metrics").id_of(r.randrange(_existing(b, "custom-metrics", i))))
    return {"updated": updated}, {"metric": None if custom else metric, "custom-metric": custom}, {}


def _universal_content(b, i: int, r: random.Random) -> tuple[dict, dict, dict]:
    created, updated = b.times(i)
    kind = r.choice(["text", "button", "image", "html"])
    definition = {"content_type": "block", "type": kind,
                  "data": {"content": f"<p>{r.choice(WORDS)} block {i}</p>" if kind in ("text", "html") else None,
                           "display_options": {"show_on": r.choice(["all", "desktop", "mobile"]), "visible_check": None},
                           "styles": {"background_color": r.choice(["#ffffff", "#f5f5f5"]), "font_size": r.randint(10, 24)}}}  # fmt: skip
    attrs = {"name": f"{r.choice(WORDS)} {kind} block {i}", "definition": definition, "created": created, "updated": updated,
             "screenshot_status": r.choice(["completed", "generating", "failed"]),
             "screenshot_url": f"https://cdn.example.com/screenshots/{b.id_of(i)}.png"}  # fmt: skip
    return attrs, {}, {}


def _account(b, i: int, r: random.Random) -> tuple[dict, dict, dict]:
    contact = {"default_sender_name": "Example Shop", "default_sender_email": "hello@example.com",
               "website_url": "https://shop.example.com", "organization_name": f"Example Shop {i}",
               "street_address": {"address1": "125 Summer St", "address2": None, "city": "Boston", "region": "MA",
                                  "country": "US", "zip": "02110"}}  # fmt: skip
    attrs = {"test_account": i > 0, "contact_information": contact, "industry": r.choice(INDUSTRIES),
             "timezone": r.choice(ZONES), "preferred_currency": r.choice(["USD", "EUR", "GBP"]),
             "public_api_key": b.id_of(i), "locale": r.choice(["en-US", "de-DE"])}  # fmt: skip
    return attrs, {}, {}


def _review(b, i: int, r: random.Random) -> tuple[dict, dict, dict]:
    created, updated = b.times(i)
    item = b.peer("catalog-items").id_of(r.randrange(_existing(b, "catalog-items", i)))
    rating = r.randint(1, 5)
    value = r.choice(["published", "published", "pending", "rejected"])
    status = {
        "value": value,
        "rejection_reason": {"reason": "spam", "status_explanation": None} if value == "rejected" else None,
    }
    reply = None if r.random() < 0.7 else {"content": "Thank you!", "author": "Example Shop", "updated": updated}
    attrs = {"email": f"reviewer.{i}@example.com", "status": status, "verified": r.random() < 0.6,
             "review_type": r.choice(["review", "question", "store"]), "created": created, "updated": updated,
             "images": [f"https://cdn.example.com/reviews/{i}_{k}.jpg" for k in range(r.randint(0, 2))],
             "product": {"url": f"https://shop.example.com/item/{item}", "name": f"Item {item}", "image_url": None,
                         "external_id": item.rsplit(":", 1)[-1]},
             "rating": rating, "author": r.choice(["Sarah M.", "Liam S.", "Anonymous"]),
             "content": f"{r.choice(['Great', 'Fine', 'Poor'])} product, review {i}.", "title": r.choice([None, "My review"]),
             "smart_quote": None, "public_reply": reply}  # fmt: skip
    return attrs, {"events": [], "item": ("catalog-item", item)}, {"item.id": item}


def tags_of(b, i: int) -> list[tuple[str, str]]:
    """Up to two tags of campaign or flow ``i`` (``include=tags``), among the tags that existed when it was created."""
    n = b.ds.timelines["tags"].count_until(b.ds.created_us(b.name, i))
    h = mix(b.salt ^ i ^ 0x7A65)
    picks = sorted({(h >> (16 * k)) % n for k in range(h % 3)}) if n else []
    return [("tag", b.peer("tags").id_of(t)) for t in picks]


def campaign_message(state, rid: str) -> dict[str, Any] | None:
    """The attributes of campaign message ``rid`` (``include=campaign-messages``); None if no campaign has it."""
    idx = ids.ulid_index(rid)
    campaigns = state.builders["campaigns"]
    if idx is None or idx // 4 >= state.dataset.count("campaigns"):
        return None
    i, k = divmod(idx, 4)
    attrs, rels, hidden = campaigns.build(i)
    if ("campaign-message", rid) not in rels["campaign-messages"]:
        return None
    channel = hidden["messages.channel"]
    content = {"subject": f"{attrs['name']} ({k + 1})", "preview_text": None, "from_email": "hello@example.com",
               "from_label": "Example Shop"} if channel == "email" else {"body": f"{attrs['name']}: see inside"}  # fmt: skip
    sent = attrs["send_time"]
    return {
        "definition": {"channel": channel, "label": f"{attrs['name']} message {k + 1}", "content": content},
        "send_times": [{"datetime": sent, "is_local": False}] if sent else [],
        "created_at": attrs["created_at"],
        "updated_at": attrs["updated_at"],
    }


def coupon_codes_named(state, q) -> np.ndarray | None:
    """Which coupon codes a ``coupon.id`` filter can match (those of the named coupons), so that only they are
    built and tested; None without such a filter."""
    wanted = [c.value if isinstance(c.value, list) else [c.value] for c in q.conditions if c.field == "coupon.id"]
    if not wanted:
        return None
    coupons = state.builders["coupons"]
    named = [i for i in (coupons.index_of(rid) for ids in wanted for rid in ids) if i is not None]
    return np.isin(parents(state.dataset, "coupon-codes"), np.array(named, dtype=np.int64))


@dataclass(frozen=True)
class ListEndpoint:
    """One further list endpoint: its path as the spec writes it (its rules come from the packaged rules file),
    the generator of its record ``i``, the form of its ids, the timestamp attribute the clock touches (None: its
    records never change) and how many records it holds at the initial clock in each scale preset (tiny, small,
    medium, large: ``resources.PRESETS``). ``resources.py`` adds the last two to every resource's."""

    path: str
    generate: Callable[[Any, int, random.Random], tuple[dict, dict, dict]]
    id_kind: str
    updated: str | None
    counts: tuple[int, int, int, int]


# sandbox endpoint name (= omniload table name) -> the endpoint
MORE = {
    "tag-groups": ListEndpoint("/api/tag-groups", _tag_group, "uuid", None, (3, 8, 15, 25)),
    "coupon-codes": ListEndpoint("/api/coupon-codes", _coupon_code, "short", None, (120, 2_500, 40_000, 300_000)),
    "push-tokens": ListEndpoint("/api/push-tokens", _push_token, "uuid", None, (40, 800, 15_000, 150_000)),
    "custom-metrics": ListEndpoint("/api/custom-metrics", _custom_metric, "short", "updated", (3, 6, 10, 20)),
    "mapped-metrics": ListEndpoint("/api/mapped-metrics", _mapped_metric, "short", "updated", (4, 8, 10, 12)),
    "universal-content": ListEndpoint(
        "/api/template-universal-content", _universal_content, "short", "updated", (10, 60, 300, 1_000)
    ),
    "accounts": ListEndpoint("/api/accounts", _account, "short", None, (1, 1, 1, 1)),
    "reviews": ListEndpoint("/api/reviews", _review, "numeric", "updated", (60, 1_500, 20_000, 100_000)),
    "data-sources": ListEndpoint("/api/data-sources", config.data_source, "ulid", None, (2, 3, 5, 8)),
    "tracking-settings": ListEndpoint("/api/tracking-settings", config.tracking_setting, "short", None, (1, 1, 1, 1)),
    "web-feeds": ListEndpoint("/api/web-feeds", config.web_feed, "short", "updated", (3, 6, 12, 25)),
    "webhook-topics": ListEndpoint("/api/webhook-topics", config.webhook_topic, "short", None, (5, 6, 7, 8)),
    "webhooks": ListEndpoint("/api/webhooks", config.webhook, "ulid", "updated_at", (3, 5, 8, 12)),
    "object-types": ListEndpoint("/api/object-types", objects.object_type, "ulid", "updated_at", (3, 4, 6, 8)),
}
MORE_GENERATORS = {name: e.generate for name, e in MORE.items()}
MORE_ID_KINDS = {name: e.id_kind for name, e in MORE.items()}

__all__ = ["MORE", "MORE_GENERATORS", "MORE_ID_KINDS", "ListEndpoint"]
