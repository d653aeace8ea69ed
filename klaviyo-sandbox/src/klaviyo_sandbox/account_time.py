"""The days the sandbox's reports count in: the account's timezone, as Klaviyo's.

The Reporting API computes days in the account's timezone (``/api/accounts`` ``timezone``) and ignores the offset
of a ``CustomTimeframe`` (the spec: "Offset is ignored and the company timezone is used"): ``2026-03-01T00:00:00Z``
means midnight of March 1st in the account's zone. Metric aggregates count days in their ``timezone`` parameter
and read a filter's datetime without an offset (the form the spec documents) as that zone's wall-clock time.
A day is a local day, 23 or 25 hours long across a DST change; a series answer's ``date_times`` (``dates``) are
the local midnights, with their offset.
"""

from __future__ import annotations

from bisect import bisect_right
from datetime import datetime, timedelta, tzinfo
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError


def account_zone(state) -> ZoneInfo:
    """The zone of the API key's account (the sandbox has one account per key)."""
    return ZoneInfo(state.builders["accounts"].build(0)[0]["timezone"])


def zone_named(name: str) -> ZoneInfo | None:
    """The IANA zone ``name`` (case-sensitive, as Klaviyo validates it), or None."""
    try:
        return ZoneInfo(name) if isinstance(name, str) and name else None
    except (ZoneInfoNotFoundError, ValueError):
        return None


def wall_clock(dt: datetime, zone: tzinfo) -> datetime:
    """The instant of ``dt``'s wall-clock time in ``zone``, its own offset ignored."""
    return dt.replace(tzinfo=None).replace(tzinfo=zone)


def to_us(dt: datetime) -> int:
    return int(dt.timestamp() * 1_000_000)


def day_bounds(start: datetime, end: datetime, zone: tzinfo) -> list[int]:
    """The starts of the local days of ``[start, end)`` and then ``end``, in microseconds (a part day counts)."""
    lo = start.astimezone(zone)
    out = [to_us(lo)]
    k = 1
    while to_us(lo + timedelta(days=k)) < to_us(end):  # wall-clock days: 23 or 25 hours across a DST change
        out.append(to_us(lo + timedelta(days=k)))
        k += 1
    return out + [to_us(end)]


def day_of(bounds: list[int], t_us: int) -> int:
    """The day (index into ``bounds``) that ``t_us`` falls in."""
    return bisect_right(bounds, t_us) - 1


def local_iso(us: int, zone: tzinfo) -> str:
    """``YYYY-MM-DDTHH:MM:SS±HH:MM`` of an instant in ``zone``."""
    return datetime.fromtimestamp(us // 1_000_000, tz=zone).isoformat()
