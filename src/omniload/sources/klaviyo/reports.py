"""The reader of report tables: plans a run's requests (periods of whole UTC days), keeps within the daily
request budget, posts one request per span and hands the answers on as Arrow (report_io.py).

Periods: days ``[begin, end)`` with ``end`` the server's today (only whole days are loaded). ``begin`` is
``--interval-start``, else the end of the periods done by the last run minus the re-query horizon (recent
periods change as attributions arrive; older ones are final), else ``DEFAULT_BACKFILL`` before ``end``;
never before the report's ``earliest`` day (segment reports: Klaviyo has no data before 2023-06-01).
Budget: reports allow ``DAILY_REPORT_REQUESTS`` a day per endpoint and account (tables/reports.py). The reader saves what it spent on the
server's day with each slice (``state_update``), plans at most ``budget - spent`` requests, oldest first,
and says how many periods are left for the next day. Each request is its own slice: a stop loses at most one.
"""

from __future__ import annotations

import asyncio
from datetime import datetime, timedelta, timezone
from typing import Any, Iterator

import pyarrow as pa

from ...dates import iso as iso_time
from ...dates import parse_timestamp
from ...errors import ConfigurationError
from ..base import ReadEvents, ReadOptions, TableReader, TableStats, Window
from .report_io import DAY, AnswerDecoder, body, metrics, to_arrow
from .spec import TableSpec
from .tables.reports import REPORTS

DEFAULT_BACKFILL = timedelta(days=30)  # the first run without --interval-start loads this many days
CONVERSION_NAME = "Placed Order"
STATE_KEY = "report"


def day_floor(dt: datetime) -> datetime:
    return dt.astimezone(timezone.utc).replace(hour=0, minute=0, second=0, microsecond=0)


class ReportReader(TableReader):
    def __init__(self, source, spec: TableSpec, options: ReadOptions, events: ReadEvents) -> None:
        self.source, self.spec, self.options, self.events = source, spec, options, events
        self.report = REPORTS[spec.name]
        self.info = spec.info
        self.stats = TableStats()
        self.saved: dict[str, Any] = {}
        self.state: dict[str, Any] = {}
        self.conversion: str | None = None
        self.metric_ids: list[str] = []

    def restore(self, saved: dict) -> None:
        self.saved = dict(saved.get(STATE_KEY) or {})

    def state_update(self) -> dict:
        return {STATE_KEY: dict(self.state)} if self.state else {}

    def _run(self, coro_fn):
        async def main():
            async with self.source.client(self.options, self.stats) as client:
                return await coro_fn(client)

        return asyncio.run(main())

    def begin(self, start: datetime | None, end: datetime) -> datetime:
        done = self.saved.get("done_until")
        horizon = self.source.report_horizon if self.source.report_horizon is not None else self.report.horizon
        resume = parse_timestamp(done) - horizon if done else None
        if start is None:
            return day_floor(resume) if resume is not None else end - DEFAULT_BACKFILL
        if resume is not None and self.saved.get("interval_start") == iso_time(start) and resume > start:
            return day_floor(resume)  # a rerun with the same --interval-start resumes
        return day_floor(start)

    def plan(self, start: datetime | None, end: datetime | None, rows_per_slice: int) -> list[Window]:
        today = day_floor(self.source.cap_end(None, self.events))
        end = min(day_floor(end), today) if end is not None else today
        begin = self.begin(start, end)
        if self.report.earliest is not None and begin < self.report.earliest:
            begin = self.report.earliest  # Klaviyo refuses a timeframe starting before its data does
        spans, lo = [], begin
        while lo < end:
            hi = min(lo + DAY * self.report.days_per_request, end)
            spans.append(Window(lo, hi))
            lo = hi
        day = today.date().isoformat()
        spent = int(self.saved.get("spent", 0)) if self.saved.get("day") == day else 0
        self.state = {**self.saved, "day": day, "spent": spent, "interval_start": iso_time(start) if start else None}
        if self.report.daily is not None:
            budget = self.source.report_budget
            left = max(0, budget - spent)
            if len(spans) > left:
                kept, dropped = spans[:left], spans[left:]
                days = sum((w.hi - w.lo).days for w in dropped)
                total = sum((w.hi - w.lo).days for w in spans)
                self.events.note(f"{days} of {total} periods left for tomorrow's budget (report_budget={budget} requests "
                                 f"a day, {spent} spent today on the server's {day}); the next run resumes there")  # fmt: skip
                spans = kept
        if spans:
            self._prepare()
        self.windows = spans
        return spans

    def _prepare(self) -> None:
        """Find the conversion metric (reports) or the metrics to aggregate, and say which."""
        src = self.source
        needs_list = (self.report.conversion and not src.conversion_metric_id) or (self.report.per_metric and not src.metric_ids)
        known = self._run(metrics) if needs_list else []
        if self.report.conversion:
            if src.conversion_metric_id:
                self.conversion = src.conversion_metric_id
                src.note(self.events, f"conversion metric {self.conversion} (conversion_metric_id=)")
            else:
                found = [mid for mid, name in known if name == CONVERSION_NAME]
                if not found:
                    raise ConfigurationError(f"table '{self.spec.name}': the account has no '{CONVERSION_NAME}' metric to "
                                             "count conversions; name one with conversion_metric_id= in the source URI")  # fmt: skip
                self.conversion = found[0]
                src.note(self.events, f"conversion metric '{CONVERSION_NAME}' ({self.conversion}), found by name; "
                                      "set conversion_metric_id= in the source URI to choose another")  # fmt: skip
        if self.report.per_metric:
            self.metric_ids = list(src.metric_ids) if src.metric_ids else [mid for mid, _ in known]

    def read(self, window: Window) -> Iterator[pa.Table]:
        spec, report = self.spec, self.report
        targets = self.metric_ids if report.per_metric else [None]

        async def fetch(client) -> list[pa.Table]:
            limiter = client.limiter(spec.rate_bucket, spec.burst, spec.steady)
            out = []
            for metric in targets:
                before = self.stats.requests
                url = client.url(spec.path, {})
                try:
                    doc = await client.post(url, spec.name, limiter, AnswerDecoder(), body(spec, window.lo, window.hi, self.conversion, metric))
                finally:
                    self.state["spent"] += self.stats.requests - before
                where = f"{spec.path} {window.lo:%Y-%m-%d}..{window.hi:%Y-%m-%d}" + (f" metric {metric}" if metric else "")
                out.append(to_arrow(spec, report, doc.records[0], window.lo, window.hi, self.conversion, metric, where))
            return out

        tables = self._run(fetch)
        table = pa.concat_tables(tables) if tables else None
        done = self.state.get("done_until")
        if not done or parse_timestamp(done) < window.hi:
            self.state["done_until"] = iso_time(window.hi)
        n = self.windows.index(window) if window in self.windows else 0
        self.events.pages(len(targets), table.num_rows if table is not None else 0)
        self.events.fraction((n + 1) / max(1, len(self.windows)))
        if table is not None and table.num_rows:
            yield table
