"""Klaviyo's Reporting API and metric aggregates as table specs: one row per grouping and period.

These are POST endpoints whose answers are not lists of resources (``data.attributes.results[]``: groupings
and statistics), so they have their own reader (``sources/klaviyo/reports.py``); the spec says the path, the
static part of the request body, the columns and the key, and :data:`REPORTS` how periods map to requests.
Values come from Klaviyo's OpenAPI revision 2026-07-15; ``tests/test_table_specs.py`` checks them.
Reports are not part of ``--source-table all``: the Reporting API allows few requests a day per endpoint
(:data:`DAILY_REPORT_REQUESTS`).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from ....types import FLOAT, INT, TEXT, TS
from ..spec import TableSpec

# Every statistic of campaign and flow reports (the spec's enum); rates and money are doubles, counts integers.
MESSAGE_STATISTICS = (
    "average_order_value", "bounce_rate", "bounced", "bounced_or_failed", "bounced_or_failed_rate", "click_rate",
    "click_to_open_rate", "clicks", "clicks_unique", "conversion_rate", "conversion_uniques", "conversion_value",
    "conversions", "delivered", "delivery_rate", "failed", "failed_rate", "message_segment_count_sum", "open_rate",
    "opens", "opens_unique", "recipients", "revenue_per_recipient", "spam_complaint_rate", "spam_complaints",
    "text_message_credit_usage_amount", "text_message_roi", "text_message_spend", "unsubscribe_rate",
    "unsubscribe_uniques", "unsubscribes",
)  # fmt: skip
FLOAT_STATISTICS = {"average_order_value", "conversion_value", "revenue_per_recipient", "text_message_credit_usage_amount",
                    "text_message_roi", "text_message_spend"}  # fmt: skip
FORM_STATISTICS = ("closed_form", "closed_form_uniques", "qualified_form", "qualified_form_uniques", "submit_rate", "submits",
                   "submitted_form_step", "submitted_form_step_uniques", "viewed_form", "viewed_form_step",
                   "viewed_form_step_uniques", "viewed_form_uniques")  # fmt: skip
SEGMENT_STATISTICS = ("members_added", "members_removed", "net_members_changed", "total_members")
MEASUREMENTS = ("count", "sum_value", "unique")  # metric aggregates
# attributed_conversions: the conversion metric's aggregates by these (the spec's ``by`` enum, less the "$"): the
# flow ("" for a campaign's) and the flow or campaign message a conversion is attributed to ("" for none)
ATTRIBUTED_BY = ("attributed_flow", "attributed_message")


def _stat_type(name: str) -> str:
    return FLOAT if name.endswith("_rate") or name in FLOAT_STATISTICS else INT


# Klaviyo re-attributes conversions for the account's attribution window (5 to 90 days, an account setting that
# no endpoint of the API exposes: /api/accounts has no such field), so a series period younger than this is
# queried again on each run; report_horizon_days= sets the account's own window.
ATTRIBUTION_HORIZON = timedelta(days=30)
DAILY_REPORT_REQUESTS = 225  # Klaviyo's daily limit of each Reporting API endpoint, per account


@dataclass(frozen=True)
class Report:
    """How a report table's periods become requests."""

    days_per_request: int  # values reports: a timeframe of up to a year per request; series: up to the interval's limit
    series: bool  # the answer holds one value per period (``date_times``), not one per request
    conversion: bool  # the request needs a ``conversion_metric_id``
    daily: int | None = DAILY_REPORT_REQUESTS  # Klaviyo's daily request limit of the endpoint (None: none)
    per_metric: bool = False  # metric aggregates: one request per metric and span
    of_conversion: bool = False  # a metric aggregate of the conversion metric only (one request per span)
    horizon: timedelta = ATTRIBUTION_HORIZON  # periods younger than this are queried again (attribution moves them)
    earliest: datetime | None = None  # Klaviyo has no data before this (a request starting earlier is refused)

    @property
    def totals(self) -> bool:
        """A values report: the totals of one timeframe (its rows replaced each run), not periods to advance."""
        return not self.series and not self.per_metric and not self.of_conversion


PERIOD = dict(period_start=TS, period_end=TS, timezone=TEXT)  # local midnights (instants) and the account's zone
_STATS = {s: _stat_type(s) for s in MESSAGE_STATISTICS}
_CAMPAIGN_KEY = ("campaign_id", "campaign_message_id", "send_channel", "conversion_metric_id", "period_start")
_FLOW_KEY = ("flow_id", "flow_message_id", "send_channel", "conversion_metric_id", "period_start")
_FORM_KEY = ("form_id", "form_version_id", "period_start")
_SEGMENT_KEY = ("segment_id", "period_start")  # segment reports have no group_by: always one row per segment
_FORM_BODY = {"statistics": list(FORM_STATISTICS), "group_by": ["form_id", "form_version_id"]}
_SEGMENT_BODY = {"statistics": list(SEGMENT_STATISTICS)}
SEGMENT_DATA_START = datetime(2023, 6, 1, tzinfo=UTC)  # the spec: "Data is unavailable before June 1st, 2023"


def _report(name: str, path: str, rtype: str, key: tuple[str, ...], body: dict, stats: dict[str, str], burst: int = 1,
            steady: int = 2, bucket: str = "") -> TableSpec:  # fmt: skip
    """A report's spec; a values report (no ``interval``) has no cursor: it is replaced by each run's timeframe."""
    cols = {k: TEXT for k in key if k not in PERIOD}
    values = "interval" not in body
    return TableSpec(name, path, rtype, {**cols, **PERIOD, **stats}, burst, steady, None,
                     cursor=None if values else "period_start", method="POST", body=body,
                     cursor_kind="period",
                     primary_key=(*key, "period_end") if values else key, lookback=timedelta(0), bucket=bucket)  # fmt: skip


REPORT_SPECS: list[TableSpec] = [
    _report("campaign_values_report", "/api/campaign-values-reports", "campaign-values-report", _CAMPAIGN_KEY,
            {"statistics": list(MESSAGE_STATISTICS), "group_by": ["campaign_id", "campaign_message_id", "send_channel"]},
            _STATS),
    _report("flow_values_report", "/api/flow-values-reports", "flow-values-report", _FLOW_KEY,
            {"statistics": list(MESSAGE_STATISTICS), "group_by": ["flow_id", "flow_message_id", "send_channel"]}, _STATS),
    _report("flow_series_report", "/api/flow-series-reports", "flow-series-report", _FLOW_KEY,
            {"statistics": list(MESSAGE_STATISTICS), "group_by": ["flow_id", "flow_message_id", "send_channel"],
             "interval": "daily"}, _STATS),
    _report("form_values_report", "/api/form-values-reports", "form-values-report", _FORM_KEY, _FORM_BODY,
            {s: _stat_type(s) for s in FORM_STATISTICS}),
    _report("form_series_report", "/api/form-series-reports", "form-series-report", _FORM_KEY,
            {**_FORM_BODY, "interval": "daily"}, {s: _stat_type(s) for s in FORM_STATISTICS}),
    _report("segment_values_report", "/api/segment-values-reports", "segment-values-report", _SEGMENT_KEY,
            _SEGMENT_BODY, {s: INT for s in SEGMENT_STATISTICS}),
    _report("segment_series_report", "/api/segment-series-reports", "segment-series-report", _SEGMENT_KEY,
            {**_SEGMENT_BODY, "interval": "daily"}, {s: INT for s in SEGMENT_STATISTICS}),
    _report("attributed_conversions", "/api/metric-aggregates", "metric-aggregate",
            ("conversion_metric_id", "attributed_flow", "attributed_message", "period_start"),
            {"measurements": list(MEASUREMENTS), "interval": "day", "page_size": 500,
             "by": [f"${c}" for c in ATTRIBUTED_BY]}, {"count": INT, "sum_value": FLOAT, "unique": INT}, burst=3, steady=60,
            bucket="metric_aggregates"),  # the same endpoint and limits as metric_aggregates
    _report("metric_aggregates", "/api/metric-aggregates", "metric-aggregate", ("metric_id", "period_start"),
            {"measurements": list(MEASUREMENTS), "interval": "day", "page_size": 500},  # timezone: the account's
            {"count": INT, "sum_value": FLOAT, "unique": INT}, burst=3, steady=60),
]  # fmt: skip

REPORTS: dict[str, Report] = {
    "campaign_values_report": Report(365, series=False, conversion=True),  # a timeframe: at most a year
    "flow_values_report": Report(365, series=False, conversion=True),
    "flow_series_report": Report(60, series=True, conversion=True),  # daily interval: at most 60 days
    "form_values_report": Report(365, series=False, conversion=False),
    "form_series_report": Report(60, series=True, conversion=False),
    "segment_values_report": Report(365, series=False, conversion=False, earliest=SEGMENT_DATA_START),
    "segment_series_report": Report(60, series=True, conversion=False, earliest=SEGMENT_DATA_START),
    "metric_aggregates": Report(60, series=True, conversion=False, daily=None, per_metric=True),
    "attributed_conversions": Report(60, series=True, conversion=True, daily=None, of_conversion=True),
}
