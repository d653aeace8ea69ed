"""What each resource of the sandbox holds: how many records at the initial clock, by scale preset (``--scale``),
and the timestamp attribute the clock touches.

The resources counted here are the 15 list endpoints, the child and membership resources and custom objects'
parts; each further list endpoint brings its own counts and updated attribute in its one generator entry
(``more.ListEndpoint``), so adding one touches nothing here. ``--scale small,events=2000000`` starts from a preset
and overrides some counts.
"""

from __future__ import annotations

from .more import MORE

PRESETS = ("tiny", "small", "medium", "large")  # the order of each ``ListEndpoint.counts``

# Records per resource at the initial clock, by scale preset, beside the further list endpoints' (more.py).
# Events are the big one.
CORE: dict[str, dict[str, int]] = {
    "tiny": dict(events=2_000, profiles=300, campaigns=40, metrics=12, tags=30, coupons=25, **{
        "catalog-variants": 120, "catalog-categories": 12, "catalog-items": 40}, flows=8, lists=23,
        images=45, segments=17, forms=21, templates=19, **{"flow-actions": 20, "flow-messages": 15,
        "list-memberships": 1_500, "segment-memberships": 1_000,
        "metric-properties": 40, "object-schemas": 6, "object-records": 40}),
    "small": dict(events=50_000, profiles=5_000, campaigns=300, metrics=25, tags=120, coupons=250, **{
        "catalog-variants": 1_500, "catalog-categories": 60, "catalog-items": 500}, flows=110, lists=95,
        images=400, segments=70, forms=65, templates=85, **{"flow-actions": 400, "flow-messages": 300,
        "list-memberships": 20_000, "segment-memberships": 15_000,
        "metric-properties": 120, "object-schemas": 10, "object-records": 300}),
    "medium": dict(events=1_000_000, profiles=100_000, campaigns=1_500, metrics=40, tags=300, coupons=2_000, **{
        "catalog-variants": 20_000, "catalog-categories": 300, "catalog-items": 6_000}, flows=300, lists=400,
        images=3_000, segments=250, forms=150, templates=500, **{"flow-actions": 1_200, "flow-messages": 900,
        "list-memberships": 300_000, "segment-memberships": 200_000,
        "metric-properties": 250, "object-schemas": 15, "object-records": 3000}),
    "large": dict(events=10_000_000, profiles=1_000_000, campaigns=5_000, metrics=60, tags=600, coupons=10_000, **{
        "catalog-variants": 100_000, "catalog-categories": 1_000, "catalog-items": 30_000}, flows=800, lists=1_000,
        images=10_000, segments=600, forms=300, templates=1_000, **{"flow-actions": 3_000, "flow-messages": 2_400,
        "list-memberships": 3_000_000, "segment-memberships": 2_000_000,
        "metric-properties": 400, "object-schemas": 24, "object-records": 30000}),
}  # fmt: skip

# every resource's records at the initial clock, by preset: the core ones' and each further list endpoint's
SCALES: dict[str, dict[str, int]] = {
    preset: {**CORE[preset], **{name: e.counts[k] for name, e in MORE.items()}} for k, preset in enumerate(PRESETS)
}

# Timestamp attribute that the clock "touches" per resource (None: the resource has no update time), beside the
# further list endpoints' (more.py).
CORE_UPDATED = {
    "profiles": "updated", "campaigns": "updated_at", "metrics": "updated", "catalog-variants": "updated",
    "catalog-categories": "updated", "catalog-items": "updated", "flows": "updated", "lists": "updated",
    "images": "updated_at", "segments": "updated", "forms": "updated_at", "templates": "updated",
    "tags": None, "coupons": None, "events": None, "flow-actions": "updated", "flow-messages": "updated",
    "list-memberships": None, "segment-memberships": None,  # memberships only appear (joined_group_at)
    "catalog-item-categories": None, "tag-links": None,  # relationships only: no records of their own
    "list-flow-triggers": None, "segment-flow-triggers": None, "metric-flow-triggers": None, "metric-properties": None,
    "object-schemas": None, "object-records": None,
    "form-versions": "updated_at",  # its form's (form_versions.py): no records of their own
}  # fmt: skip
UPDATED_FIELD: dict[str, str | None] = {**CORE_UPDATED, **{name: e.updated for name, e in MORE.items()}}


def parse_scale(text: str) -> dict[str, int]:
    """``small`` or ``small,events=2000000,profiles=1000`` -> record counts per resource."""
    parts = [p.strip() for p in text.split(",") if p.strip()]
    base = "small"
    if parts and "=" not in parts[0]:
        base = parts.pop(0)
    if base not in SCALES:
        raise ValueError(f"unknown scale '{base}'; allowed: {', '.join(SCALES)} (optionally ,resource=count)")
    counts = dict(SCALES[base])
    for part in parts:
        key, _, val = part.partition("=")
        if key not in counts or not val.isdigit() or int(val) < 1:
            raise ValueError(f"bad scale item '{part}'; use resource=count with resource in {', '.join(counts)}")
        counts[key] = int(val)
    return counts
