"""The sandbox's child resources: who belongs to which parent and how a child record is drawn.

Flow actions (of flows), flow messages (of flow actions) and list/segment memberships are resources with
their own deterministic timeline, like every other one (so they scale with ``--scale`` and new ones appear
when the clock moves). Child ``i`` belongs to a parent that already existed when it was created, drawn from
``(seed, resource, i)``, so the tie never changes. A membership is ``(parent, profile, joined_group_at)``;
only the first of two draws of the same pair counts. Pages under one parent are cut, child records rendered
and their ground truth listed in :mod:`.child_pages`.
"""

from __future__ import annotations

import random
from typing import Any

import numpy as np

from .dataset import DAY_US, Dataset, mix, mix_np, salt

PARENTS = {
    "flow-actions": "flows",
    "flow-messages": "flow-actions",
    "list-memberships": "lists",
    "segment-memberships": "segments",
    "coupon-codes": "coupons",
    "metric-properties": "metrics",
    "object-records": "object-types",
    "object-schemas": "object-types",
}  # fmt: skip (coupon codes: listed with a coupon.id filter, not under a path)
MEMBERSHIPS = ("list-memberships", "segment-memberships")
LEAVING = ("segment-memberships",)  # memberships that may end (left_at); a list's members stay (deletes aside)
LEAVE_EVERY = 4  # one segment membership in 4 ends
NEVER = np.iinfo(np.int64).max  # left_at of a membership that has not ended
CURSORS = {"flow-actions": "updated", "flow-messages": "updated",
           "list-memberships": "joined_group_at", "segment-memberships": "joined_group_at"}  # fmt: skip
SELF_PATHS = {"flow-actions": "/api/flow-actions", "flow-messages": "/api/flow-messages",
              "list-memberships": "/api/profiles", "segment-memberships": "/api/profiles",
              "coupon-codes": "/api/coupon-codes", "metric-properties": "/api/metric-properties",
              "object-records": "/api/object-records", "object-schemas": "/api/object-schemas"}  # fmt: skip
ACTION_TYPES = ["SEND_EMAIL", "SEND_SMS", "SEND_PUSH_NOTIFICATION", "TIME_DELAY", "CONDITIONAL_SPLIT", "UPDATE_PROFILE"]
CHANNELS = {"SEND_EMAIL": "email", "SEND_SMS": "sms", "SEND_PUSH_NOTIFICATION": "push"}


def _cached(ds: Dataset, key: str, make) -> Any:
    slot = (key, ds.version)
    hit = ds._cache.get(slot)  # cleared on every clock advance
    if hit is None:
        hit = ds._cache[slot] = make()
    return hit


def _draw(ds: Dataset, name: str, of: str, what: str) -> np.ndarray:
    """For each visible record of ``name``: an index of ``of`` among those created at or before it."""
    n = ds.count(name)
    idx = np.arange(n, dtype=np.int64)
    created = ds.timelines[name].times_us(idx)
    others = ds.timelines[of].times_us(np.arange(ds.count(of), dtype=np.int64))
    before = np.maximum(np.searchsorted(others, created, side="right"), 1).astype(np.uint64)
    h = mix_np(np.uint64(salt(ds.seed, f"{name}/{what}")) ^ idx.astype(np.uint64))
    return (h % before).astype(np.int64)


def parents(ds: Dataset, name: str) -> np.ndarray:
    """The parent index of every visible record of child resource ``name``."""
    return _cached(ds, f"parents:{name}", lambda: _draw(ds, name, PARENTS[name], "parent"))


def members(ds: Dataset, name: str) -> np.ndarray:
    """The profile index of every visible membership record."""
    return _cached(ds, f"members:{name}", lambda: _draw(ds, name, "profiles", "profile"))


def alive(ds: Dataset, name: str) -> np.ndarray:
    """Which visible records are served: those that count (:func:`counted`), but a segment membership that ended
    (:func:`left_at`)."""

    def make() -> np.ndarray:
        keep = counted(ds, name)
        return keep & (left_at(ds, name) == NEVER) if name in LEAVING else keep

    return _cached(ds, f"alive:{name}", make)


def left_at(ds: Dataset, name: str) -> np.ndarray:
    """When each visible record of ``name`` stopped being a member (microseconds), or :data:`NEVER`. One segment
    membership in :data:`LEAVE_EVERY` ends 1 to 60 days after it began (the profile no longer matches the segment's
    definition), when that is before the sandbox's start clock: a membership never ends while the clock moves,
    so the incremental memberships table, which cannot see removals, stays equal to the truth (the segment
    reports count the removals, audience_reports.py)."""

    def make() -> np.ndarray:
        n = ds.count(name)
        out = np.full(n, NEVER, dtype=np.int64)
        if name not in LEAVING:
            return out
        idx = np.arange(n, dtype=np.int64)
        h = mix_np(np.uint64(salt(ds.seed, f"{name}/leave")) ^ idx.astype(np.uint64))
        ends = (
            ds.timelines[name].times_us(idx) + ((h >> np.uint64(8)) % np.uint64(59 * DAY_US)).astype(np.int64) + DAY_US
        )
        ends -= ends % 1_000_000  # whole seconds
        leaves = (h % np.uint64(LEAVE_EVERY) == 0) & (ends <= ds.now0_us)
        return np.where(leaves, ends, out)

    return _cached(ds, f"left:{name}", make)


def counted(ds: Dataset, name: str) -> np.ndarray:
    """Which visible records count: all, except a membership repeating an earlier (parent, profile) pair, a
    deleted record, a record whose parent is gone, and a membership whose profile was deleted (a segment
    membership that ended still counts: it was one, and the reports count its end)."""

    def make() -> np.ndarray:
        n = ds.count(name)
        keep = np.ones(n, dtype=bool)
        if name in MEMBERSHIPS:
            pairs = parents(ds, name) * (1 << 32) + members(ds, name)
            _, first = np.unique(pairs, return_index=True)
            keep = np.zeros(n, dtype=bool)
            keep[first] = True
            keep &= ds.live_mask("profiles", ds.count("profiles"))[members(ds, name)]
        keep &= ds.live_mask(name, n)
        return keep & parent_alive(ds, name)[parents(ds, name)]

    return _cached(ds, f"counted:{name}", make)


def parent_alive(ds: Dataset, name: str) -> np.ndarray:
    """Which records of child resource ``name``'s parent resource still exist."""
    parent = PARENTS[name]
    return alive(ds, parent) if parent in PARENTS else ds.live_mask(parent, ds.count(parent))


def _flow_action(b, i: int, r: random.Random) -> tuple[dict, dict, dict]:
    created, updated = b.times(i)
    flow = b.peer("flows").id_of(int(parents(b.ds, b.name)[i]))
    kind = ACTION_TYPES[mix(b.salt ^ i) % len(ACTION_TYPES)]
    data: dict[str, Any] = {"status": r.choice(["live", "draft", "manual"])}
    if kind == "TIME_DELAY":
        data.update(unit=r.choice(["days", "hours"]), value=r.randint(1, 7), timezone="profile")
    elif kind in CHANNELS:
        data["message"] = {"name": f"{CHANNELS[kind]} message {i}", "smart_sending_enabled": r.random() < 0.7}
    definition = {"id": b.id_of(i), "type": kind.lower().replace("_", "-"), "data": data,
                  "links": {"next": None if r.random() < 0.2 else str(r.randint(1000, 9999))}}  # fmt: skip
    attrs = {"created": created, "updated": updated, "definition": definition}
    return attrs, {"flow": ("flow", flow), "flow-messages": []}, {"action_type": kind, "status": data["status"]}


def _flow_message(b, i: int, r: random.Random) -> tuple[dict, dict, dict]:
    created, updated = b.times(i)
    action = b.peer("flow-actions").id_of(int(parents(b.ds, b.name)[i]))
    channel = r.choice(["email", "email", "sms", "push"])
    name = f"{r.choice(['Welcome', 'Reminder', 'Last chance', 'Thank you'])} {channel} {i}"
    definition = {
        "channel": channel,
        "content": {"subject": name if channel == "email" else None, "body": f"Body of {name}"},
    }
    attrs = {"channel": channel, "created": created, "updated": updated, "definition": definition}
    return attrs, {"flow-action": ("flow-action", action), "template": None}, {"name": name}


def _membership(b, i: int, r: random.Random) -> tuple[dict, dict, dict]:
    return {"joined_group_at": b.times(i)[0]}, {}, {}


PROPERTIES = [("Categories", "List", ["Shoes", "Bags"]), ("ItemNames", "List", ["Tote", "Sneaker"]),
              ("$value", "Number", [19.99, 120]), ("Discount Codes", "List", []), ("Source", "String", ["web", "app"]),
              ("IsGift", "Boolean", [True, False])]  # fmt: skip


def _metric_property(b, i: int, r: random.Random) -> tuple[dict, dict, dict]:
    metric = b.peer("metrics").id_of(int(parents(b.ds, b.name)[i]))
    prop, kind, samples = PROPERTIES[mix(b.salt ^ i) % len(PROPERTIES)]
    attrs = {"label": f"{prop} {i}", "property": f"{prop} {i}", "inferred_type": kind}
    return attrs, {"metric": ("metric", metric)}, {"_additional": {"sample_values": samples}}


CHILD_GENERATORS = {"flow-actions": _flow_action, "flow-messages": _flow_message,
                    "list-memberships": _membership, "segment-memberships": _membership,
                    "metric-properties": _metric_property}  # fmt: skip
CHILD_ID_KINDS = {"flow-actions": "numeric", "flow-messages": "short",
                  "list-memberships": "numeric", "segment-memberships": "numeric", "metric-properties": "short"}  # fmt: skip


def record_id(state, name: str, i: int) -> str:
    """The id a child record is served under: the profile's for memberships, else its own."""
    if name in MEMBERSHIPS:
        return state.builders["profiles"].id_of(int(members(state.dataset, name)[i]))
    return state.builders[name].id_of(i)
