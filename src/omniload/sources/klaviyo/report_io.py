"""Requests and answers of Klaviyo's Reporting API and metric aggregates: the request body of one span,
the account's metrics (to find the conversion metric) and timezone, and an answer's results as Arrow rows.

Days are the account's (``/api/accounts`` ``timezone``): the Reporting API ignores a timeframe's offset and uses
that zone, so a span is sent as the account's wall-clock times; metric aggregates get the zone as ``timezone``
and their datetime filter as wall-clock times in it (the spec's form, without an offset). Each row's
``period_start``/``period_end`` are the local midnights (instants) and ``timezone`` the zone.

An answer is one document (``data.attributes``): values reports hold ``results[]`` of groupings and one number
per statistic; series reports a list per statistic, one value per ``date_times[]`` entry; metric aggregates
``data[]`` with one list per measurement, one value per ``dates[]`` entry. Each becomes one row per grouping
and period, in the spec's schema; a value of the wrong kind raises :class:`BadData`.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, tzinfo
from typing import Any
from zoneinfo import ZoneInfo

import orjson
import pyarrow as pa

from ...dates import parse_timestamp
from ...errors import BadData
from ...types import FLOAT, INT, TEXT, TS, TYPES, arrow_schema
from .decode import Doc, PageDecoder
from .spec import TableSpec
from .tables import TABLES
from .tables.reports import Report

DAY = timedelta(days=1)


def iso(dt: datetime) -> str:
    return dt.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S+00:00")


def body(
    spec: TableSpec, lo: datetime, hi: datetime, conversion: str | None, metric: str | None, zone: ZoneInfo
) -> bytes:
    """The JSON request body for the span ``[lo, hi)`` of days in ``zone``."""
    attrs: dict[str, Any] = dict(spec.body or {})
    lo, hi = lo.astimezone(zone), hi.astimezone(zone)
    if metric is not None:  # metric aggregates: the span is a datetime filter, wall-clock times in ``timezone``
        attrs.update(metric_id=metric, timezone=zone.key, filter=[f"greater-or-equal(datetime,{lo:%Y-%m-%dT%H:%M:%S})",
                                                                  f"less-than(datetime,{hi:%Y-%m-%dT%H:%M:%S})"])  # fmt: skip
    else:
        attrs["timeframe"] = {"start": lo.isoformat(), "end": hi.isoformat()}
    if conversion is not None and metric is None:  # a metric aggregate of the conversion metric names it as metric_id
        attrs["conversion_metric_id"] = conversion
    return orjson.dumps({"data": {"type": spec.resource_type, "attributes": attrs}})


class AnswerDecoder:
    """Reads a report answer into a dict; anything else (an HTML page, a cut body) is None, and retried."""

    def decode(self, raw: bytes) -> Doc | None:
        try:
            doc = orjson.loads(raw)
        except orjson.JSONDecodeError:
            return None
        attrs = (
            doc.get("data", {}).get("attributes")
            if isinstance(doc, dict) and isinstance(doc.get("data"), dict)
            else None
        )
        return Doc([attrs], None, False) if isinstance(attrs, dict) else None


async def metrics(client) -> list[tuple[str, str]]:
    """(id, name) of every metric of the account, in the API's order, paced as the metrics table."""
    spec = TABLES["metrics"]
    decoder, limiter = PageDecoder(spec), client.limiter(spec.rate_bucket, spec.burst, spec.steady)
    url, out = client.url(spec.path, {}), []
    while url:
        doc = await client.get(url, spec.name, limiter, decoder)
        for r in doc.records:
            if isinstance(r, dict):
                out.append((r.get("id"), (r.get("attributes") or {}).get("name")))
            else:
                out.append((r.id, r.attributes.name if r.attributes is not None else None))
        url = client.follow(doc.next) if doc.next else None
    return out


async def account_zone(client, limiter) -> ZoneInfo:
    """The account's timezone (``/api/accounts``: the key's one account)."""
    spec = TABLES["accounts"]
    doc = await client.get(client.url(spec.path, {}), spec.name, limiter, PageDecoder(spec))
    r = doc.records[0] if doc.records else None
    attrs = (r.get("attributes") or {}) if isinstance(r, dict) else getattr(r, "attributes", None)
    name = attrs.get("timezone") if isinstance(attrs, dict) else getattr(attrs, "timezone", None)
    try:
        return ZoneInfo(name)
    except (TypeError, ValueError, KeyError) as exc:
        raise BadData(f"/api/accounts: the account's timezone is {name!r}, not an IANA zone") from exc


def _value(spec: TableSpec, col: str, typ: str, v: Any, where: str) -> Any:
    if v is None:
        return None
    if typ == TEXT:
        return str(v)
    if typ == TS:
        return parse_timestamp(v) if isinstance(v, str) else v
    if not isinstance(v, (int, float)) or isinstance(v, bool):
        raise BadData(f"table '{spec.name}': statistic '{col}' is {v!r}, not a number ({where})")
    if typ == INT:
        return int(round(v))
    return float(v) if typ == FLOAT else v


def to_arrow(spec: TableSpec, report: Report, answer: dict, lo: datetime, hi: datetime, conversion: str | None,
             metric: str | None, where: str, zone: tzinfo) -> pa.Table:  # fmt: skip
    """One row per grouping and period of an answer for ``[lo, hi)``; a period ends at the next local midnight."""
    rows: list[dict[str, Any]] = []
    if metric is not None:
        dates = [parse_timestamp(d).astimezone(zone) for d in answer.get("dates") or []]
        by = [b.lstrip("$") for b in (spec.body or {}).get("by") or ()]
        for item in answer.get("data") or []:
            dims = dict(zip(by, item.get("dimensions") or (), strict=False))
            for k, start in enumerate(dates):
                row = {"metric_id": metric, **dims, "period_start": start, "period_end": start + DAY}
                for name, values in (item.get("measurements") or {}).items():
                    row[name] = values[k] if isinstance(values, list) and k < len(values) else None
                rows.append(row)
    elif report.series:
        dates = [parse_timestamp(d).astimezone(zone) for d in answer.get("date_times") or []]
        for item in answer.get("results") or []:
            for k, start in enumerate(dates):
                row = {**(item.get("groupings") or {}), "period_start": start, "period_end": start + DAY}
                for name, values in (item.get("statistics") or {}).items():
                    row[name] = values[k] if isinstance(values, list) and k < len(values) else None
                rows.append(row)
    else:
        for item in answer.get("results") or []:
            rows.append(
                {
                    **(item.get("groupings") or {}),
                    **(item.get("statistics") or {}),
                    "period_start": lo,
                    "period_end": hi,
                }
            )
    cols = spec.all_columns
    data: dict[str, list[Any]] = {c: [] for c in cols}
    for row in rows:
        row["timezone"] = str(zone)
        if conversion is not None:
            row["conversion_metric_id"] = conversion
        row["id"] = "|".join(
            iso(row[k]) if isinstance(row.get(k), datetime) else str(row.get(k)) for k in spec.primary_key
        )
        for col, typ in cols.items():
            data[col].append(_value(spec, col, typ, row.get(col), where))
    return pa.Table.from_arrays([pa.array(data[c], TYPES[t].arrow) for c, t in cols.items()], schema=arrow_schema(cols))
