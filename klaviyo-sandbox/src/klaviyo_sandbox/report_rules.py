"""What the report endpoints accept, read from the packaged rules file (:mod:`.rules`, generated from Klaviyo's
OpenAPI file, never copied), and the check of one request body against it: a body Klaviyo would refuse is a
:class:`QueryError` (400 ``invalid``).

Rules per path: the resource type, the required attributes, the allowed statistics (measurements), group-bys
and intervals, the rate limits (burst, steady, daily) and the scope. The sandbox models daily series in the
account's timezone (a custom timeframe's offset ignored) or a metric aggregate's ``timezone`` (account_time.py), the
default groupings (forms also by version; segments always by segment) and no report filter; a body asking for
more is refused with a detail saying so.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta, tzinfo
from functools import cached_property, lru_cache
from typing import Any

from .account_time import day_bounds, wall_clock, zone_named
from .query import QueryError
from .rules import rules_file

PATHS = ("/api/campaign-values-reports", "/api/flow-values-reports", "/api/flow-series-reports", "/api/form-values-reports",
         "/api/form-series-reports", "/api/segment-values-reports", "/api/segment-series-reports", "/api/metric-aggregates")  # fmt: skip
# the groupings the sandbox models (the default when a body names none), those a group_by must include, and
# those a family groups by with no group_by attribute at all (segments)
DEFAULT_GROUPS = {"campaign": ["campaign_id", "campaign_message_id", "send_channel"],
                  "flow": ["flow_id", "flow_message_id", "send_channel"], "form": ["form_id"]}  # fmt: skip
MODELLED_GROUPS = {**DEFAULT_GROUPS, "form": ["form_id", "form_version_id"]}
REQUIRED_GROUPS = {"campaign": ["campaign_id", "campaign_message_id"], "flow": ["flow_id", "flow_message_id"],
                   "form": ["form_id"]}  # fmt: skip
IMPLICIT_GROUPS = {"segment": ["segment_id"]}
SEGMENT_DATA_START = datetime(2023, 6, 1, tzinfo=UTC)  # "Data is unavailable before June 1st, 2023"
MAX_SPAN = {
    "hourly": timedelta(days=7),
    "daily": timedelta(days=60),
    "weekly": timedelta(weeks=52),
    "monthly": timedelta(weeks=52),
}
YEAR = timedelta(days=365)
AGGREGATE_BY = ("$attributed_flow", "$attributed_message")  # the metric aggregates' ``by`` the sandbox models
_BOUND = re.compile(r"^(greater-or-equal|less-than)\(datetime,([^)]+)\)$")


@dataclass(frozen=True)
class ReportRules:
    path: str
    resource_type: str
    required: tuple[str, ...]
    statistics: tuple[str, ...]  # or measurements
    group_by: tuple[str, ...]
    intervals: tuple[str, ...]
    burst: int
    steady: int
    daily: int | None
    scope: str

    @property
    def family(self) -> str:
        return self.path.split("/")[2].split("-")[0]  # campaign, flow, form, segment, metric

    @property
    def series(self) -> bool:
        return "series" in self.path


@dataclass
class ReportQuery:
    rules: ReportRules
    start: datetime
    end: datetime
    statistics: list[str]
    conversion_metric_id: str | None = None
    metric_id: str | None = None
    group_by: list[str] = field(default_factory=list)
    zone: tzinfo = UTC  # the days' zone: the account's (reports) or the ``timezone`` (metric aggregates)

    @cached_property
    def bounds(self) -> list[int]:
        """The starts of the query's local days, then its end (microseconds)."""
        return day_bounds(self.start, self.end, self.zone)


@lru_cache(maxsize=1)
def report_rules() -> dict[str, ReportRules]:
    reports = rules_file()["reports"]
    return {path: ReportRules(path, r["resource_type"], tuple(r["required"]), tuple(r["statistics"]), tuple(r["group_by"]),
                              tuple(r["intervals"]), r["burst"], r["steady"], r["daily"], r["scope"])
            for path, r in reports.items() if path in PATHS}  # fmt: skip


def _time(value: Any, what: str, zone: tzinfo = UTC, keep_offset: bool = False) -> datetime:
    """A datetime of a body; one without an offset is ``zone``'s wall-clock time."""
    try:
        dt = datetime.fromisoformat(str(value).replace("Z", "+00:00"))
    except ValueError:
        raise QueryError(f"'{value}' is not a valid datetime for {what}.", what) from None
    if dt.tzinfo is None:
        return dt.replace(tzinfo=zone)
    return dt if keep_offset else dt.astimezone(UTC)


def _timeframe(tf: Any, now: datetime, zone: tzinfo) -> tuple[datetime, datetime]:
    """The timeframe's bounds: a key's days, or a custom start and end read as wall-clock times in ``zone``."""
    if not isinstance(tf, dict):
        raise QueryError("timeframe must be an object with a key, or a start and an end.", "timeframe")
    if "key" in tf:
        now = now.astimezone(zone)
        today = now.replace(hour=0, minute=0, second=0, microsecond=0)
        days = {
            "today": 0,
            "yesterday": 1,
            "last_7_days": 7,
            "last_30_days": 30,
            "last_90_days": 90,
            "last_365_days": 365,
        }
        if tf["key"] not in days:
            raise QueryError(f"The sandbox does not model the timeframe key '{tf['key']}'.", "timeframe")
        n = days[tf["key"]]
        return (today, now) if n == 0 else (today - timedelta(days=n), today if n == 1 else now)
    if "start" not in tf or "end" not in tf:
        raise QueryError("A custom timeframe needs a start and an end.", "timeframe")
    return tuple(wall_clock(_time(tf[k], "timeframe", keep_offset=True), zone) for k in ("start", "end"))  # type: ignore[return-value]


def check(rules: ReportRules, doc: Any, now: datetime, zone: tzinfo = UTC) -> ReportQuery:
    """The query a body asks for, or a QueryError naming what Klaviyo would refuse; ``zone``: the account's."""
    data = doc.get("data") if isinstance(doc, dict) else None
    if (
        not isinstance(data, dict)
        or data.get("type") != rules.resource_type
        or not isinstance(data.get("attributes"), dict)
    ):
        raise QueryError(
            f'The body must be {{"data": {{"type": "{rules.resource_type}", "attributes": {{...}}}}}}.', "data"
        )
    attrs = data["attributes"]
    for name in rules.required:
        if attrs.get(name) in (None, "", []):
            raise QueryError(f"'{name}' is a required field.", name)
    key = "measurements" if rules.family == "metric" else "statistics"
    stats = attrs[key]
    if not isinstance(stats, list) or any(s not in rules.statistics for s in stats):
        bad = next((s for s in stats if s not in rules.statistics), stats) if isinstance(stats, list) else stats
        raise QueryError(f"'{bad}' is not a valid choice for {key}.", key)
    if rules.family == "metric":
        return _metric_query(rules, attrs, stats)
    start, end = _timeframe(attrs["timeframe"], now, zone)
    if start >= end or end - start > YEAR:
        raise QueryError("The timeframe must start before it ends and be at most 1 year long.", "timeframe")
    if rules.series:
        if attrs["interval"] not in rules.intervals:
            raise QueryError(f"'{attrs['interval']}' is not a valid choice for interval.", "interval")
        if end - start > MAX_SPAN[attrs["interval"]]:
            raise QueryError(f"The timeframe is too long for the {attrs['interval']} interval.", "timeframe")
        if attrs["interval"] != "daily":
            raise QueryError("The sandbox models the daily interval only.", "interval")
    if rules.family == "segment" and start < SEGMENT_DATA_START:
        raise QueryError("Segment data is unavailable before June 1st, 2023.", "timeframe")
    return ReportQuery(rules, start, end, stats, conversion_metric_id=attrs.get("conversion_metric_id"),
                       group_by=_groups(rules, attrs), zone=zone)  # fmt: skip


def _groups(rules: ReportRules, attrs: dict) -> list[str]:
    family = rules.family
    if family in IMPLICIT_GROUPS:
        if "group_by" in attrs:
            raise QueryError("'group_by' is not a valid attribute of this report.", "group_by")
        groups = IMPLICIT_GROUPS[family]
    else:
        groups = attrs.get("group_by") or DEFAULT_GROUPS[family]
        if not isinstance(groups, list) or any(g not in rules.group_by for g in groups):
            bad = next((g for g in groups if g not in rules.group_by), groups) if isinstance(groups, list) else groups
            raise QueryError(f"'{bad}' is not a valid choice for group_by.", "group_by")
        if set(REQUIRED_GROUPS[family]) - set(groups):
            raise QueryError(f"group_by must include {' and '.join(REQUIRED_GROUPS[family])}.", "group_by")
    if set(groups) - set(MODELLED_GROUPS.get(family, groups)) or attrs.get("filter"):
        raise QueryError("The sandbox models the default groupings and no filter.", "group_by")
    return list(groups)


def _metric_query(rules: ReportRules, attrs: dict, stats: list[str]) -> ReportQuery:
    zone = zone_named(attrs.get("timezone") or "UTC")
    if zone is None:
        raise QueryError(f"'{attrs.get('timezone')}' is not a valid timezone.", "timezone")
    bounds: dict[str, datetime] = {}
    for f in attrs["filter"] if isinstance(attrs["filter"], list) else []:
        m = _BOUND.match(str(f).strip())
        if m:
            bounds[m.group(1)] = _time(m.group(2), "filter", zone)
        else:
            raise QueryError(f"The sandbox models datetime bounds only, not '{f}'.", "filter")
    if set(bounds) != {"greater-or-equal", "less-than"}:
        raise QueryError("The filter must bound datetime with greater-or-equal and less-than.", "filter")
    start, end = bounds["greater-or-equal"], bounds["less-than"]
    if start >= end or end - start > YEAR:
        raise QueryError("The datetime range must start before it ends and be at most 1 year long.", "filter")
    by = attrs.get("by") or []
    if not isinstance(by, list) or any(b not in AGGREGATE_BY for b in by):
        raise QueryError(f"The sandbox models 'by' of {' and '.join(AGGREGATE_BY)} only.", "by")
    if (attrs.get("interval") or "day") != "day":
        raise QueryError("The sandbox models daily intervals only.", "interval")
    return ReportQuery(rules, start, end, stats, metric_id=attrs["metric_id"], zone=zone, group_by=list(by))
