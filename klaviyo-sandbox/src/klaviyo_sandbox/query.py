"""Validate a list request's query against the endpoint's rules, and select the records it asks for.

Validation mirrors Klaviyo: unknown parameters, filters, sorts, page sizes, includes, sparse fields and
additional fields are 400 ``invalid`` errors naming the parameter. Selection turns filters and sort into an
ordered list of record indices (events: time bounds that bisection on the timeline turns into an index range).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import numpy as np

from . import consent
from .dataset import Dataset
from .filters import Condition, FilterError, parse_datetime, parse_filter
from .rules import EndpointRules

TIME_FIELDS = {
    "created": 0,
    "created_at": 0,
    "updated": 1,
    "updated_at": 1,
    "joined_group_at": 0,
}  # memberships: created
COMPARE = {"greater-than": np.greater, "greater-or-equal": np.greater_equal,
           "less-than": np.less, "less-or-equal": np.less_equal, "equals": np.equal}  # fmt: skip


_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


def to_us(dt: datetime) -> int:
    """Exact microseconds since the epoch (no float rounding)."""
    return (dt - _EPOCH) // timedelta(microseconds=1)


class QueryError(ValueError):
    """A request the API rejects with 400 ``invalid``; ``parameter`` names the offending query parameter."""

    def __init__(self, detail: str, parameter: str) -> None:
        super().__init__(detail)
        self.detail = detail
        self.parameter = parameter


@dataclass
class Query:
    conditions: list[Condition] = field(default_factory=list)
    sort: str | None = None
    page_size: int = 0
    offset: int = 0
    includes: list[str] = field(default_factory=list)
    fields: dict[str, list[str]] = field(default_factory=dict)
    additional: list[str] = field(default_factory=list)
    seconds: bool = False  # filter precision: compare datetimes in whole seconds (both sides truncated)
    cursor: Any = None  # a decoded keyset cursor (envelope.Cursor), when the request carries one


def _csv(value: str) -> list[str]:
    return [v for v in value.split(",") if v]


def validate(rules: EndpointRules, params: dict[str, str], offset: int) -> Query:
    q = Query(offset=offset)
    for key in params:
        if key not in rules.known_params or (key == "page[size]" and rules.page_size is None):
            raise QueryError(f"'{key}' is not a valid query parameter for this endpoint.", key)
    if "filter" in params:
        try:
            q.conditions = parse_filter(params["filter"], rules.filters, rules.filter_types, rules.resource_type)
        except FilterError as exc:
            raise QueryError(str(exc), "filter") from None
        if rules.name == "coupons":
            raise QueryError("Filtering is not supported on this endpoint.", "filter")
    if rules.filter_required and rules.name == "coupon-codes":
        if not any(c.field in ("coupon.id", "profile.id") for c in q.conditions):
            raise QueryError(
                "A coupon or profile filter is required: filter=any(coupon.id,[...]) or profile.id.", "filter"
            )
    elif rules.filter_required:
        if not any(c.field == "messages.channel" and c.op == "equals" for c in q.conditions):
            raise QueryError(
                "A channel filter is required to list campaigns. Please provide either: "
                "?filter=equals(messages.channel,'email'), 'sms' or 'mobile_push'.",
                "filter",
            )
    for c in q.conditions:
        if c.field == "messages.channel" and c.value not in ("email", "sms", "mobile_push"):
            raise QueryError(f"'{c.value}' is not a valid channel; allowed: email, sms, mobile_push.", "filter")
    if "sort" in params:
        if params["sort"] not in rules.sorts:
            allowed = ", ".join(rules.sorts) or "none"
            raise QueryError(f"'{params['sort']}' is not a valid sort field; allowed: {allowed}.", "sort")
        q.sort = params["sort"]
    if rules.page_size is None:
        q.page_size = 200
    else:
        raw = params.get("page[size]")
        if raw is None:
            q.page_size = rules.page_size["default"]
        else:
            lo, hi = rules.page_size["minimum"], rules.page_size["maximum"]
            if not raw.lstrip("-").isdigit() or not lo <= int(raw) <= hi:
                raise QueryError(f"Page size must be an integer between {lo} and {hi}, got '{raw}'.", "page[size]")
            q.page_size = int(raw)
    if "include" in params:
        for inc in _csv(params["include"]):
            if inc not in rules.includes:
                allowed = ", ".join(rules.includes) or "none"
                raise QueryError(f"'{inc}' is not a valid include; allowed: {allowed}.", "include")
            q.includes.append(inc)
    for typ, allowed_fields in rules.fields.items():
        raw = params.get(f"fields[{typ}]")
        if raw is not None:
            for f in _csv(raw):
                if f not in allowed_fields:
                    raise QueryError(f"'{f}' is not a valid field for the resource '{typ}'.", f"fields[{typ}]")
            q.fields[typ] = _csv(raw)
    for typ, allowed_fields in rules.additional_fields.items():
        raw = params.get(f"additional-fields[{typ}]")
        if raw is not None:
            for f in _csv(raw):
                if f not in allowed_fields:
                    key = f"additional-fields[{typ}]"
                    raise QueryError(
                        f"'{f}' is not a valid additional field; allowed: {', '.join(allowed_fields)}.", key
                    )
            q.additional = _csv(raw)
    return q


def _matches(value: Any, cond: Condition, seconds: bool = False) -> bool:
    op, want = cond.op, cond.value
    if op == "has":
        return value is not None
    if op == "any" or (op == "equals" and cond.arg == "list"):
        return value in want
    if op == "equals":
        return value == want
    if value is None:
        return False
    if op == "contains":
        return want in value if isinstance(value, (str, list)) else False
    if op == "starts-with":
        return str(value).startswith(want)
    if op == "ends-with":
        return str(value).endswith(want)
    if hasattr(want, "tzinfo") and isinstance(value, str):
        value = parse_datetime(value)
        if seconds:
            value, want = value.replace(microsecond=0), want.replace(microsecond=0)
    return {"greater-than": value > want, "greater-or-equal": value >= want,
            "less-than": value < want, "less-or-equal": value <= want}[op]  # fmt: skip


def field_value(attrs: dict[str, Any], rels: dict[str, Any], hidden: dict[str, Any], rid: str, name: str) -> Any:
    if name in hidden:
        return hidden[name]
    if name in ("id", "ids"):
        return rid
    if name in attrs:
        return attrs[name]
    if name in rels:
        rel = rels[name]
        return rel[1] if isinstance(rel, tuple) else (rel or None)
    if "." in name:
        head, tail = name.split(".", 1)
        sub = attrs.get(head)
        if isinstance(sub, dict):
            return sub.get(tail)
    return None


# (resource, filter field) -> every record's value of a time field as microseconds (-1: none), computed at once
VECTOR_FIELDS = {("profiles", consent.SUPPRESSION): consent.suppressed_us}

# resource -> the flag whose records are listed only when a filter names it (archived campaigns always)
HIDDEN_UNLESS_FILTERED = {"campaigns": "archived"}


def select_entities(
    ds: Dataset, builder, q: Query, hide: dict[str, str] = HIDDEN_UNLESS_FILTERED, within: np.ndarray | None = None
) -> tuple[np.ndarray, Any]:
    """Indices of the visible records of an entity resource (``within``: only those) that match ``q``, in the
    requested order (``hide``: resource -> a flag whose flagged records are listed only when a filter names it), and
    their sort keys aligned with them (see :mod:`.keyset`): microseconds for time sorts, ``(is_null, value)``
    pairs for other sorts, None when unsorted (index order)."""
    name = builder.name
    n = ds.count(name)
    created, updated = ds.arrays(name)
    mask = ds.live_mask(name, n) if within is None else within & ds.live_mask(name, n)  # deleted records are gone
    generic: list[Condition] = []
    for c in q.conditions:
        col = TIME_FIELDS.get(c.field)
        if col is not None and c.op in COMPARE and c.arg == "single":
            arr = created if col == 0 else updated
            if q.seconds:
                mask &= COMPARE[c.op](arr // 1_000_000, to_us(c.value) // 1_000_000)
            else:
                mask &= COMPARE[c.op](arr, to_us(c.value))
        elif (name, c.field) in VECTOR_FIELDS and c.op in COMPARE and c.arg == "single":  # without building records
            key = (f"vector:{name}:{c.field}", ds.version)
            arr = ds._cache.get(key)
            if arr is None:
                arr = ds._cache[key] = VECTOR_FIELDS[(name, c.field)](ds, builder)
            arr = arr[:n]
            if q.seconds:
                mask &= (arr >= 0) & COMPARE[c.op](arr // 1_000_000, to_us(c.value) // 1_000_000)
            else:
                mask &= (arr >= 0) & COMPARE[c.op](arr, to_us(c.value))
        elif c.field in ("id", "ids") and c.op in ("equals", "any"):
            wanted = c.value if isinstance(c.value, list) else [c.value]
            keep = np.zeros(n, dtype=bool)
            for rid in wanted:
                i = builder.index_of(rid)
                if i is not None:
                    keep[i] = True
            mask &= keep
        else:
            generic.append(c)
    flag = hide.get(name)
    if flag and not any(c.field == flag for c in q.conditions):
        generic.append(Condition("equals", flag, "single", False))  # archived / hidden records: only on request
    idx = np.nonzero(mask)[0]
    if generic:
        keep_list = []
        for i in idx.tolist():
            attrs, rels, hidden = builder.build(i)
            rid = builder.id_of(i)
            if all(_matches(field_value(attrs, rels, hidden, rid, c.field), c, q.seconds) for c in generic):
                keep_list.append(i)
        idx = np.array(keep_list, dtype=np.int64)
    keys: Any = None
    if q.sort:
        key = q.sort.lstrip("-")
        desc = q.sort.startswith("-")
        col = TIME_FIELDS.get(key)
        if col is not None:
            values = (created if col == 0 else updated)[idx]
            order = np.lexsort((idx, values))
            keys = values[order]
        else:
            vals = []
            for i in idx.tolist():
                attrs, rels, hidden = builder.build(i)
                v = field_value(attrs, rels, hidden, builder.id_of(i), key)
                vals.append((v is None, "" if v is None else v))
            order = np.array(sorted(range(len(vals)), key=lambda k: (vals[k], idx[k])), dtype=np.int64)
            keys = [vals[k] for k in order.tolist()]
        idx = idx[order] if len(idx) else idx
        if desc:
            idx = idx[::-1]
            keys = keys[::-1]
    return idx, keys


def _trunc(us: int, seconds: bool) -> int:
    return us - us % 1_000_000 if seconds else us


def event_bounds(q: Query) -> tuple[int | None, int | None, list[Condition]]:
    """(lower_us, upper_us, remaining conditions): events with ``lower_us <= datetime < upper_us`` pass the
    time conditions (``q.seconds``: both sides compared in whole seconds); the rest are tested per event."""
    lower: int | None = None
    upper: int | None = None
    rest: list[Condition] = []
    for c in q.conditions:
        if c.field in ("datetime", "timestamp") and c.op in COMPARE:
            if c.field == "datetime":
                t = _trunc(to_us(c.value), q.seconds)
                ge, gt = t, t + (1_000_000 if q.seconds else 1)  # first instant that passes >= t, and > t
            else:  # epoch seconds: compare whole seconds
                ge, gt = math.ceil(c.value) * 1_000_000, (math.floor(c.value) + 1) * 1_000_000
            if c.op in ("greater-or-equal", "greater-than"):
                b = ge if c.op == "greater-or-equal" else gt
                lower = b if lower is None else max(lower, b)
            elif c.op in ("less-than", "less-or-equal"):
                b = ge if c.op == "less-than" else gt
                upper = b if upper is None else min(upper, b)
            else:  # equals: [ge, gt)
                lower = ge if lower is None else max(lower, ge)
                upper = gt if upper is None else min(upper, gt)
        else:
            rest.append(c)
    return lower, upper, rest


def event_matches(events, i: int, conds: list[Condition]) -> bool:
    for c in conds:
        if c.field == "metric_id":
            value: Any = events.metric_id(i)
        elif c.field == "profile_id":
            value = events.profile_id(i)
        else:  # has(profile) / has(metric): every sandbox event has both
            value = True
        if not _matches(value, c):
            return False
    return True
