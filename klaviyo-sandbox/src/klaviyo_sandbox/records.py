"""Attribute generators: record ``i`` of each resource, with realistic shapes and relationships that agree.

Every value comes from a ``random.Random`` seeded by ``(seed, resource, i)``; times come from the dataset's
timelines, so the same seed always yields the same records. Events live in :mod:`.events` (hot path).
"""

from __future__ import annotations

import random
from collections.abc import Callable
from typing import Any

from . import consent, ids
from .children import CHILD_GENERATORS, CHILD_ID_KINDS
from .dataset import Dataset, iso, mix, salt
from .more import MORE_GENERATORS, MORE_ID_KINDS, tags_of
from .objects import OBJECT_CHILD_GENERATORS, OBJECT_CHILD_ID_KINDS

FIRST = [
    "Sarah",
    "Liam",
    "Olivia",
    "Noah",
    "Emma",
    "Mateo",
    "Ava",
    "Lucas",
    "Mia",
    "Amir",
    "Chloé",
    "Jürgen",
    "Yuki",
    "Zoë",
]
LAST = ["Mason", "Smith", "García", "Nguyen", "O'Brien", "Müller", "Kowalski", "Tanaka", "Rossi", "Dubois", "Patel"]
CITIES = [("New York", "NY", "United States", "10017", "America/New_York", 40.7128, -74.006),
          ("Boston", "MA", "United States", "02108", "America/New_York", 42.3601, -71.0589),
          ("London", "England", "United Kingdom", "EC1A 1BB", "Europe/London", 51.5074, -0.1278),
          ("Berlin", "Berlin", "Germany", "10115", "Europe/Berlin", 52.52, 13.405),
          ("São Paulo", "SP", "Brazil", "01000-000", "America/Sao_Paulo", -23.5505, -46.6333)]  # fmt: skip
METRICS = ["Placed Order", "Opened Email", "Clicked Email", "Received Email", "Viewed Product", "Active on Site",
           "Started Checkout", "Added to Cart", "Ordered Product", "Fulfilled Order", "Subscribed to List",
           "Unsubscribed", "Received SMS", "Clicked SMS", "Bounced Email", "Marked Email as Spam"]  # fmt: skip
# sign-up form metrics (form reports count them; their events carry form_id and form_version_id, form_events.py)
FORM_METRICS = (
    "Viewed Form",
    "Submitted Form",
    "Closed Form",
    "Qualified Form",
    "Viewed Form Step",
    "Submitted Form Step",
)
METRICS += FORM_METRICS  # a scale with 22 metrics or more has them all (``tiny,metrics=22``)
INTEGRATIONS = [("API", "API"), ("Klaviyo", "Internal"), ("Shopify", "eCommerce"), ("Klaviyo", "Internal")]
CAMPAIGN_STATUS = ["Draft", "Scheduled", "Sent", "Sent", "Sent", "Cancelled", "Sending", "Variations Sent"]
CHANNELS = ["email", "sms", "mobile_push"]
TRIGGERS = ["Added to List", "Date Based", "Low Inventory", "Metric", "Price Drop", "Segment", "Unconfigured"]
EDITORS = ["SYSTEM_DRAGGABLE", "SIMPLE", "CODE", "USER_DRAGGABLE"]
WORDS = ["Summer", "Winter", "Flash", "VIP", "Welcome", "Holiday", "Launch", "Restock", "Loyalty", "Weekend"]


class Builder:
    """Generates record ``i`` of one resource: its id, attributes, relationships and hidden filter fields."""

    def __init__(self, ds: Dataset, name: str, id_kind: str) -> None:
        self.ds = ds
        self.name = name
        own = ds.account_seed if name == "accounts" and ds.account_seed is not None else ds.seed
        self.salt = salt(own, name)
        self.id_kind = id_kind

    def peer(self, name: str) -> Builder:
        """The builder of another resource of the same dataset (for relationships), made once."""
        peers = self.ds.__dict__.setdefault("_builders", {})
        if name not in peers:
            peers[name] = Builder(self.ds, name, ID_KINDS[name])
        return peers[name]

    def rng(self, i: int) -> random.Random:
        return random.Random(mix(self.salt ^ (i * 0x9E37)))

    def id_of(self, i: int) -> str:
        k = self.id_kind
        if k == "short":
            return ids.short_id(i, self.salt)
        if k == "ulid":
            return ids.ulid(i, self.ds.created_us(self.name, i) // 1000, self.salt)
        if k == "uuid":
            return ids.uuid_id(i, self.salt)
        if k == "numeric":
            return str(1000 + i)
        if k == "catalog":
            return f"$custom:::$default:::{self.external_id(i)}"
        if k == "coupon":
            return self.external_id(i)
        raise AssertionError(k)

    def external_id(self, i: int) -> str:
        return {"catalog-variants": f"VAR-{i:07d}", "catalog-items": f"SKU-{i:07d}",
                "catalog-categories": f"CAT-{i:05d}", "coupons": f"COUPON{i:06d}"}[self.name]  # fmt: skip

    def index_of(self, rid: str) -> int | None:
        k = self.id_kind
        if k == "short":
            i = ids.short_index(rid, self.salt)
        elif k == "ulid":
            i = ids.ulid_index(rid)
        elif k == "uuid":
            i = ids.uuid_index(rid)
        elif k == "numeric":
            i = int(rid) - 1000 if rid.isdigit() else None
        else:
            prefix = {"catalog-variants": "$custom:::$default:::VAR-", "catalog-items": "$custom:::$default:::SKU-",
                      "catalog-categories": "$custom:::$default:::CAT-", "coupons": "COUPON"}[self.name]  # fmt: skip
            i = ids.suffix_index(rid, prefix)
        if i is None or i >= self.ds.count(self.name) or self.id_of(i) != rid:
            return None
        return i

    def times(self, i: int) -> tuple[str, str]:
        return iso(self.ds.created_us(self.name, i)), iso(self.ds.updated_us(self.name, i))

    def build(self, i: int) -> tuple[dict[str, Any], dict[str, Any], dict[str, Any]]:
        """(attributes, to-one/to-many relationship ids, hidden fields used by filters)."""
        return GENERATORS[self.name](self, i, self.rng(i))


def _profile(b: Builder, i: int, r: random.Random) -> tuple[dict, dict, dict]:
    created, updated = b.times(i)
    first, last = r.choice(FIRST), r.choice(LAST)
    city = r.choice(CITIES)
    has_phone = r.random() < 0.6
    attrs = {
        "email": f"{first.lower()}.{i}@example.com" if r.random() < 0.95 else None,
        "phone_number": f"+1555{i % 10_000_000:07d}" if has_phone else None,
        "external_id": f"crm-{i}" if r.random() < 0.3 else None,
        "first_name": first, "last_name": last,
        "organization": r.choice([None, "Example Corporation", "Acme Inc", "Globex"]),
        "locale": r.choice([None, "en-US", "de-DE", "pt-BR", "en-GB"]),
        "title": r.choice([None, "Regional Manager", "Engineer", "Buyer"]),
        "image": None if r.random() < 0.8 else f"https://images.example.com/p/{i}.jpeg",
        "created": created, "updated": updated,
        "last_event_date": updated if r.random() < 0.7 else None,
        "location": None if r.random() < 0.1 else {
            "address1": f"{r.randint(1, 999)} Main St", "address2": r.choice([None, "1st floor", "Apt 4"]),
            "city": city[0], "country": city[2], "latitude": round(city[5] + r.uniform(-0.1, 0.1), 4),
            "longitude": str(round(city[6] + r.uniform(-0.1, 0.1), 4)), "region": city[1], "zip": city[3],
            "timezone": city[4], "ip": f"192.0.2.{r.randint(1, 254)}"},
        "properties": {"pseudonym": f"{first} {last[0]}.", "loyalty_points": r.randint(0, 5000),
                       "tags": r.sample(["vip", "wholesale", "newsletter", "beta"], r.randint(0, 2)),
                       "nested": {"source": r.choice(["shopify", "popup", "import"]), "score": r.random()}},
    }  # fmt: skip
    _profile_life(b, i, attrs)
    if b.ds.profile_properties_kb:  # text as random as a customer's notes (it does not compress away)
        attrs["properties"]["notes"] = r.randbytes(b.ds.profile_properties_kb * 512).hex()
    extra = {
        "subscriptions": consent.subscriptions(b, i, created, updated, has_phone),
        "predictive_analytics": {
            "historic_clv": round(r.uniform(0, 500), 2), "predicted_clv": round(r.uniform(0, 200), 2),
            "total_clv": None, "historic_number_of_orders": r.randint(0, 12), "predicted_number_of_orders": round(r.random(), 2),
            "average_days_between_orders": None, "average_order_value": round(r.uniform(10, 120), 2),
            "churn_probability": round(r.random(), 2), "expected_date_of_next_order": None,
            "ranked_channel_affinity": ["email", "sms", "push"]},
    }  # fmt: skip
    return attrs, {}, {"_additional": extra, **consent.filter_fields(extra["subscriptions"])}


def _profile_life(b: Builder, i: int, attrs: dict) -> None:
    """What a profile's life changes (season.py): an update's new values; from a step on, a new custom property
    (``preferred_store``) on profiles changed since, and later ``loyalty_points`` sent as text instead of a number."""
    props = attrs["properties"]
    e = b.ds.edit(b.name, i)
    if e is not None:
        attrs["organization"] = e.choice([None, "Example Corporation", "Acme Inc", "Globex", "Initech"])
        props["loyalty_points"] = e.randint(0, 5000)
    if b.ds.drift:
        u = b.ds.updated_us(b.name, i)
        if b.ds.drifted("new_attribute", u):
            props["preferred_store"] = ("Downtown", "Airport", "Online")[mix(b.salt ^ i ^ 0xD21F) % 3]
        if b.ds.drifted("type_change", u):
            props["loyalty_points"] = str(props["loyalty_points"])


def _edited(b: Builder, i: int, attrs: dict, key: str, values: list) -> None:
    """An updated record's new value of ``key`` (one of ``values``), drawn from its last touch."""
    e = b.ds.edit(b.name, i)
    if e is not None:
        attrs[key] = e.choice(values)


def _campaign(b: Builder, i: int, r: random.Random) -> tuple[dict, dict, dict]:
    created, updated = b.times(i)
    channel = CHANNELS[mix(b.salt ^ i) % 3]
    status = r.choice(CAMPAIGN_STATUS)
    sent = status in ("Sent", "Variations Sent", "Sending")
    method = r.choice(["static", "static", "smart_send_time", "throttled", "immediate"])
    strategy: dict[str, Any] = {"method": method}
    if method in ("static", "throttled"):
        strategy["datetime"] = updated
    if method == "static":
        strategy["options"] = r.choice(
            [None, {"is_local": False}, {"is_local": True, "send_past_recipients_immediately": True}]
        )
    if method == "throttled":
        strategy["throttle_percentage"] = r.choice([10, 20, 25, 50])
    if method == "smart_send_time":
        strategy["date"] = updated[:10]
    tracking = None
    if channel == "email":
        tracking = {"add_tracking_params": True, "custom_tracking_params": [{"type": "dynamic", "value": "campaign_name", "name": "utm_campaign"}],
                    "is_tracking_clicks": True, "is_tracking_opens": r.random() < 0.8}  # fmt: skip
    elif channel == "sms":
        tracking = {"add_tracking_params": False, "custom_tracking_params": None}
    lists = b.ds.timelines["lists"].count_until(b.ds.created_us(b.name, i))  # lists that existed then: stable
    attrs = {
        "name": f"{r.choice(WORDS)} {channel} campaign #{i}", "status": status,
        "archived": mix(b.salt ^ i ^ 0xA4C) % 6 == 0,
        "audiences": {"included": [b.peer("lists").id_of(r.randrange(lists))] if lists else [],
                      "excluded": None if r.random() < 0.7 else []},
        "send_options": {"use_smart_sending": r.random() < 0.7},
        "tracking_options": tracking, "send_strategy": strategy,
        "created_at": created, "scheduled_at": updated if status != "Draft" else None, "updated_at": updated,
        "send_time": updated if sent else None,
    }  # fmt: skip
    attrs["archived"] = attrs["archived"] or i in b.ds.archived.get("campaigns", ())
    _edited(b, i, attrs, "name", [f"{w} {channel} campaign #{i}" for w in WORDS])
    messages = [ids.ulid(i * 4 + k, b.ds.created_us(b.name, i) // 1000, b.salt ^ 0x4D5) for k in range(1 + i % 2)]
    rels = {"campaign-messages": [("campaign-message", m) for m in messages], "tags": tags_of(b, i)}
    return attrs, rels, {"messages.channel": channel}


def _metric(b: Builder, i: int, r: random.Random) -> tuple[dict, dict, dict]:
    created, updated = b.times(i)
    copy = "" if i < len(METRICS) or b.ds.same_metric_names else f" ({i // len(METRICS)})"
    name = METRICS[i % len(METRICS)] + copy
    integ = INTEGRATIONS[i % len(INTEGRATIONS)]
    attrs = {"name": name, "created": created, "updated": updated,
             "integration": {"object": "integration", "id": f"int{i % 4}", "name": integ[0], "category": integ[1]}}  # fmt: skip
    return attrs, {}, {"integration.name": integ[0], "integration.category": integ[1]}


def _tag(b: Builder, i: int, r: random.Random) -> tuple[dict, dict, dict]:
    groups = max(1, b.ds.timelines["tag-groups"].count_until(b.ds.created_us(b.name, i)))  # groups that existed then
    group = b.peer("tag-groups").id_of(i % groups)
    return {"name": f"{r.choice(WORDS).lower()}-{i}"}, {"tag-group": ("tag-group", group)}, {}


def _coupon(b: Builder, i: int, r: random.Random) -> tuple[dict, dict, dict]:
    attrs = {"external_id": b.external_id(i), "description": r.choice([None, f"{r.randint(5, 50)}% off"]),
             "monitor_configuration": None if r.random() < 0.5 else {"low_balance_threshold": r.choice([100, 500])}}  # fmt: skip
    _edited(b, i, attrs, "description", [f"{k}% off" for k in range(5, 55, 5)])
    return attrs, {}, {}


def _catalog_common(b: Builder, i: int, r: random.Random, kind: str) -> dict[str, Any]:
    created, updated = b.times(i)
    ext = b.external_id(i)
    return {"external_id": ext, "title": f"{r.choice(WORDS)} {kind} {i}", "description": f"A fine {kind}, number {i}.",
            "price": round(r.uniform(1, 300), 2), "url": f"https://shop.example.com/{kind}/{ext}",
            "image_full_url": f"https://shop.example.com/img/{ext}.jpg", "image_thumbnail_url": f"https://shop.example.com/img/{ext}_t.jpg",
            "images": [f"https://shop.example.com/img/{ext}_{k}.jpg" for k in range(r.randint(0, 3))],
            "custom_metadata": {"color": r.choice(["red", "blue", "green"]), "size": r.choice(["S", "M", "L"])},
            "published": r.random() < 0.9, "created": created, "updated": updated,
            **({"price": round(e.uniform(1, 300), 2)} if (e := b.ds.edit(b.name, i)) else {})}  # fmt: skip


def _variant(b: Builder, i: int, r: random.Random) -> tuple[dict, dict, dict]:
    attrs = _catalog_common(b, i, r, "variant")
    attrs.update(sku=f"SKU-V{i:07d}", inventory_policy=r.choice([0, 1, 2]), inventory_quantity=r.randint(0, 500))
    _edited(b, i, attrs, "inventory_quantity", list(range(0, 500, 7)))
    item = b.peer("catalog-items").id_of(item_of(b, i))
    order = ["external_id", "title", "description", "sku", "inventory_policy", "inventory_quantity", "price", "url",
             "image_full_url", "image_thumbnail_url", "images", "custom_metadata", "published", "created", "updated"]  # fmt: skip
    return {k: attrs[k] for k in order}, {"item": ("catalog-item", item)}, {"item.id": item, "ids": b.id_of(i)}


def item_of(variants: Builder, i: int) -> int:
    """The index of variant ``i``'s catalog item: one of the items that existed when the variant was created."""
    n_items = max(1, variants.ds.timelines["catalog-items"].count_until(variants.ds.created_us(variants.name, i)))
    return mix(variants.salt ^ i) % n_items


def variants_of(items: Builder, i: int) -> list[tuple[str, str]]:
    """(type, id) of the variants of catalog item ``i`` still listed, in index order (the inverse of
    :func:`item_of`, made once per number of variants and deletion)."""
    ds, variants = items.ds, items.peer("catalog-variants")
    n = ds.count("catalog-variants")
    key = (n, ds.version)
    cache = ds.__dict__.setdefault("_variants_of", {})
    if cache.get("key") != key:
        owners: dict[int, list[int]] = {}
        gone = ds.deleted.get("catalog-variants", set())
        for v in range(n):
            if v not in gone:
                owners.setdefault(item_of(variants, v), []).append(v)
        cache.update(key=key, owners=owners)
    return [("catalog-variant", variants.id_of(v)) for v in cache["owners"].get(i, ())]


def _item(b: Builder, i: int, r: random.Random) -> tuple[dict, dict, dict]:
    attrs = _catalog_common(b, i, r, "item")
    cats = b.peer("catalog-categories")
    n_cats = max(1, b.ds.timelines["catalog-categories"].count_until(b.ds.created_us(b.name, i)))
    cat = cats.id_of(mix(b.salt ^ i) % n_cats)
    return attrs, {"variants": variants_of(b, i)}, {"category.id": cat, "ids": b.id_of(i)}


def _category(b: Builder, i: int, r: random.Random) -> tuple[dict, dict, dict]:
    _, updated = b.times(i)
    attrs = {"external_id": b.external_id(i), "name": f"{r.choice(WORDS)} collection {i}", "updated": updated}
    _edited(b, i, attrs, "name", [f"{w} collection {i}" for w in WORDS])
    return attrs, {"items": []}, {"ids": b.id_of(i), "item.id": None}


def _flow(b: Builder, i: int, r: random.Random) -> tuple[dict, dict, dict]:
    created, updated = b.times(i)
    attrs = {"name": f"{r.choice(WORDS)} flow {i}", "status": r.choice(["live", "draft", "manual"]),
             "archived": r.random() < 0.1 or mix(b.salt ^ i ^ 0xF10) % 8 == 0 or i in b.ds.archived["flows"],
             "created": created, "updated": updated, "trigger_type": r.choice(TRIGGERS)}  # fmt: skip
    _edited(b, i, attrs, "status", ["live", "draft", "manual"])
    return attrs, {"flow-actions": [], "tags": tags_of(b, i)}, {}


def _list(b: Builder, i: int, r: random.Random) -> tuple[dict, dict, dict]:
    created, updated = b.times(i)
    attrs = {"name": f"{r.choice(WORDS)} list {i}", "created": created, "updated": updated,
             "opt_in_process": r.choice(["double_opt_in", "single_opt_in"])}  # fmt: skip
    _edited(b, i, attrs, "name", [f"{w} list {i}" for w in WORDS])
    return attrs, {"profiles": [], "tags": tags_of(b, i), "flow-triggers": []}, {}


def _segment(b: Builder, i: int, r: random.Random) -> tuple[dict, dict, dict]:
    created, updated = b.times(i)
    definition = {"condition_groups": [{"conditions": [{"type": "profile-property", "property": "properties['loyalty_points']",
                                                        "filter": {"type": "numeric", "operator": "greater-than", "value": r.randint(10, 900)}}]}]}  # fmt: skip
    attrs = {"name": f"{r.choice(WORDS)} segment {i}", "definition": definition if r.random() < 0.8 else None,
             "created": created, "updated": updated, "is_active": r.random() < 0.85, "is_processing": r.random() < 0.05,
             "is_starred": r.random() < 0.2}  # fmt: skip
    _edited(b, i, attrs, "is_active", [True, True, False])
    return attrs, {"profiles": [], "tags": tags_of(b, i), "flow-triggers": []}, {}


def _image(b: Builder, i: int, r: random.Random) -> tuple[dict, dict, dict]:
    _, updated = b.times(i)
    fmt = r.choice(["jpeg", "png", "gif"])
    attrs = {"name": f"banner-{i}.{fmt}", "image_url": f"https://cdn.example.com/images/{1000 + i}.{fmt}", "format": fmt,
             "size": r.randint(2_000, 2_000_000), "hidden": r.random() < 0.1, "updated_at": updated}  # fmt: skip
    return attrs, {}, {}


def _form(b: Builder, i: int, r: random.Random) -> tuple[dict, dict, dict]:
    created, updated = b.times(i)
    attrs = {"name": f"{r.choice(WORDS)} popup {i}", "status": r.choice(["live", "draft"]), "ab_test": r.random() < 0.2,
             "created_at": created, "updated_at": updated}  # fmt: skip
    return attrs, {"form-versions": []}, {}


def _template(b: Builder, i: int, r: random.Random) -> tuple[dict, dict, dict]:
    created, updated = b.times(i)
    editor = r.choice(EDITORS)
    body = "".join(
        f"<p>Paragraph {k} of template {i}: {r.choice(WORDS)} offers inside.</p>" for k in range(r.randint(5, 40))
    )
    attrs = {"name": f"{r.choice(WORDS)} template {i}", "editor_type": editor,
             "html": f"<html><body>{body}</body></html>", "text": None if r.random() < 0.5 else f"Template {i}",
             "amp": None, "created": created, "updated": updated}  # fmt: skip
    definition = {"id": None, "template_id": b.id_of(i), "styles": [],
                  "body": {"properties": {}, "styles": {}, "sections": []}}  # fmt: skip
    extra = {"definition": definition if editor == "SYSTEM_DRAGGABLE" else None}
    return attrs, {}, {"_additional": extra}


GENERATORS: dict[str, Callable[[Builder, int, random.Random], tuple[dict, dict, dict]]] = {
    "profiles": _profile, "campaigns": _campaign, "metrics": _metric, "tags": _tag, "coupons": _coupon,
    "catalog-variants": _variant, "catalog-categories": _category, "catalog-items": _item, "flows": _flow,
    "lists": _list, "images": _image, "segments": _segment, "forms": _form, "templates": _template, **CHILD_GENERATORS,
    **MORE_GENERATORS, **OBJECT_CHILD_GENERATORS,
}  # fmt: skip
ID_KINDS = {
    "profiles": "ulid", "campaigns": "ulid", "metrics": "short", "tags": "uuid", "coupons": "coupon",
    "catalog-variants": "catalog", "catalog-categories": "catalog", "catalog-items": "catalog", "flows": "short",
    "lists": "short", "images": "numeric", "segments": "short", "forms": "short", "templates": "short", **CHILD_ID_KINDS, **MORE_ID_KINDS,
    **OBJECT_CHILD_ID_KINDS,
}  # fmt: skip


def builders(ds: Dataset) -> dict[str, Builder]:
    return {name: Builder(ds, name, kind) for name, kind in ID_KINDS.items()}
