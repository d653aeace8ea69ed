"""The reader of report tables: plans a run's requests (periods of whole days of the account's timezone), keeps
within the daily request budget, posts one request per span and hands the answers on as Arrow (report_io.py).

Days: the account's (``/api/accounts``, read once per source), as Klaviyo's Reporting API counts them; a day is
23 or 25 hours across a DST change. ``--interval-start``/``--interval-end`` name days: their UTC date, taken as
that day in the account's zone (Klaviyo too ignores a timeframe's offset). The budget counts the server's UTC day.

Values reports are the totals of one timeframe: ``[--interval-start, --interval-end or today)``, without
``--interval-start`` the ``DEFAULT_BACKFILL`` before today; one request per year of it (Klaviyo's longest
timeframe), each row carrying its timeframe as ``period_start``/``period_end``; each run replaces the table.

Series periods: days ``[begin, end)`` with ``end`` the server's today (only whole days are loaded). ``begin`` is
``--interval-start``, else the end of the periods done by the last run or the re-query horizon before ``end``,
whichever is earlier (recent periods change as attributions arrive; older ones are final), else
``DEFAULT_BACKFILL`` before ``end``; never before the report's ``earliest`` day (segment reports: Klaviyo has no
data before 2023-06-01). Budget: reports allow ``DAILY_REPORT_REQUESTS`` a day per endpoint and account (tables/reports.py). The reader saves what
it spent on the server's day with each slice (``state_update``), plans at most ``budget - spent`` requests (the
periods never loaded first, so a budget below the horizon still catches up) and says how many periods are left
and when the table will be current. Each request is its own slice: a stop loses at most one.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from datetime import UTC, datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import pyarrow as pa

from ...dates import iso as iso_time
from ...dates import parse_timestamp
from ...errors import ConfigurationError
from ..base import ReadEvents, ReadOptions, TableReader, TableStats, Window
from .report_io import DAY, AnswerDecoder, account_zone, body, metrics, to_arrow
from .spec import TableSpec
from .tables import TABLES
from .tables.reports import REPORTS

DEFAULT_BACKFILL = timedelta(days=30)  # the first run without --interval-start loads this many days
CONVERSION_NAME = "Placed Order"
STATE_KEY = "report"


def day_floor(dt: datetime, zone: ZoneInfo) -> datetime:
    """The local midnight at or before the instant ``dt``."""
    return dt.astimezone(zone).replace(hour=0, minute=0, second=0, microsecond=0)


def named_day(dt: datetime, zone: ZoneInfo) -> datetime:
    """The day a user's bound names: its UTC date, that day's midnight in ``zone``."""
    return datetime.combine(dt.astimezone(UTC).date(), time(), zone)


class ReportReader(TableReader):
    def __init__(self, source, spec: TableSpec, options: ReadOptions, events: ReadEvents) -> None:
        self.source, self.spec, self.options, self.events = source, spec, options, events
        self.report = REPORTS[spec.name]
        self.info = source.info(spec)
        self.stats = TableStats()
        self.saved: dict[str, Any] = {}
        self.state: dict[str, Any] = {}
        self.conversion: str | None = None
        self.metric_ids: list[str] = []
        self.zone = ZoneInfo("UTC")

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
        """The first period to ask for: the end of the periods done, or the re-query horizon before ``end`` when
        that is earlier (periods younger than the horizon are asked again; older ones are final)."""
        done = self.saved.get("done_until")
        horizon = self.source.config.report_horizon
        horizon = horizon if horizon is not None else self.report.horizon
        resume = min(parse_timestamp(done), end - horizon) if done else None
        if start is None:
            return day_floor(resume, self.zone) if resume is not None else end - DEFAULT_BACKFILL
        if resume is not None and self.saved.get("interval_start") == iso_time(start) and resume > start:
            return day_floor(resume, self.zone)  # a rerun with the same --interval-start resumes
        return named_day(start, self.zone)

    def plan(self, start: datetime | None, end: datetime | None, rows_per_slice: int) -> list[Window]:
        self.zone = self._account_zone()
        now = self.source.cap_end(None, self.events)
        today = day_floor(now, self.zone)
        end = min(named_day(end, self.zone), today) if end is not None else today
        totals = self.report.totals  # a values report: one timeframe, not periods to advance
        begin = (
            (named_day(start, self.zone) if start is not None else end - DEFAULT_BACKFILL)
            if totals
            else self.begin(start, end)
        )
        if self.report.earliest is not None and begin < named_day(self.report.earliest, self.zone):
            begin = named_day(
                self.report.earliest, self.zone
            )  # Klaviyo refuses a timeframe starting before its data does
        spans, lo = [], begin
        while lo < end:
            hi = min(lo + DAY * self.report.days_per_request, end)
            spans.append(Window(lo, hi))
            lo = hi
        day = now.astimezone(UTC).date().isoformat()  # the budget's day: the server's UTC day
        spent = int(self.saved.get("spent", 0)) if self.saved.get("day") == day else 0
        self.state = {**self.saved, "day": day, "spent": spent, "interval_start": iso_time(start) if start else None}
        if self.report.daily is not None:
            spans = self._whole_timeframe(spans, spent, day) if totals else self._within_budget(spans, spent, day)
        if spans:
            self._prepare()
            self._say_cost(spans)
        self.windows = spans
        return spans

    def _within_budget(self, spans: list[Window], spent: int, day: str) -> list[Window]:
        """The spans this run may ask for: at most ``report_budget - spent``, the periods never loaded first (oldest
        first), then the re-queries of younger periods; a note says what is left and when the table is current."""
        budget = self.source.config.report_budget
        left = max(0, budget - spent)
        if len(spans) <= left:
            return spans
        done = self.saved.get("done_until")
        fresh = [w for w in spans if not done or w.hi > parse_timestamp(done)]
        again = [w for w in spans if w not in fresh]
        kept = fresh[:left] + again[: max(0, left - len(fresh))]
        where = f"report_budget={budget} requests a day, {spent} spent today on the server's {day}"
        behind = sum((w.hi - w.lo).days for w in fresh[left:])
        if behind:
            # days of data a day's budget gains on the clock: at least 59 (a series request spans 60 days)
            per_day = budget * self.report.days_per_request - 1
            total = sum((w.hi - w.lo).days for w in fresh)
            self.events.note(f"{behind} of {total} periods left for tomorrow's budget ({where}); the next runs resume "
                             f"there and are current in about {-(-behind // per_day)} day(s)")  # fmt: skip
        else:
            skipped = sum((w.hi - w.lo).days for w in again[max(0, left - len(fresh)) :])
            self.events.note(f"{skipped} recent periods not queried again ({where}); their numbers may still change "
                             "until a later run has budget for them")  # fmt: skip
        return sorted(kept, key=lambda w: w.lo)

    def _whole_timeframe(self, spans: list[Window], spent: int, day: str) -> list[Window]:
        """A values report's requests (one per year of the timeframe), all or none: its rows replace the table's,
        so a part would lose the rest; a note says so when the day's budget cannot pay for them all."""
        budget = self.source.config.report_budget
        left = max(0, budget - spent)
        if len(spans) <= left:
            return spans
        if len(spans) > budget:  # no day's budget pays for it: waiting would never load it
            raise ConfigurationError(f"table '{self.spec.name}': its timeframe needs {len(spans)} requests (one per year), "
                                     f"more than report_budget={budget} allows a day; raise report_budget or shorten "
                                     "--interval-start")  # fmt: skip
        self.events.note(f"the timeframe needs {len(spans)} request(s), {left} left of report_budget={budget} on the "
                         f"server's {day}: nothing asked, the table keeps the last run's totals; the next day's run asks")  # fmt: skip
        return []

    def _say_cost(self, spans: list[Window]) -> None:
        """A note of the run's requests and their time at the endpoint's steady limit (the server's ``RateLimit-*``
        headers slow it further where they state less), when that is over a minute."""
        per = len(self.metric_ids) if self.report.per_metric else 1
        requests = len(spans) * per
        minutes = (requests - self.spec.burst) / self.spec.steady if requests > self.spec.burst else 0.0
        if minutes >= 1:
            took = f"{minutes:.0f} min" if minutes < 120 else f"{minutes / 60:.1f} h"
            self.events.note(f"{requests} requests planned ({len(spans)} span(s) of up to {self.report.days_per_request} "
                             f"days), about {took} at {self.spec.steady}/min; progress lines show the ETA")  # fmt: skip

    def _account_zone(self) -> ZoneInfo:
        """The account's timezone, read once per run (``/api/accounts``), with a note."""
        zone = self.source.run.account_zone
        if zone is None:
            spec = TABLES["accounts"]
            zone = self._run(lambda c: account_zone(c, c.limiter(spec.rate_bucket, spec.burst, spec.steady)))
            self.source.run.account_zone = zone
            self.source.note(self.events, f"report days in the account's timezone {zone.key} (/api/accounts)")
        return zone

    def _prepare(self) -> None:
        """Find the conversion metric (reports) or the metrics to aggregate, and say which."""
        src, cfg = self.source, self.source.config
        needs_list = (self.report.conversion and not cfg.conversion_metric_id) or (
            self.report.per_metric and not cfg.metric_ids
        )
        known = self._run(metrics) if needs_list else []
        if self.report.conversion:
            if cfg.conversion_metric_id:
                self.conversion = cfg.conversion_metric_id
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
            self.metric_ids = list(cfg.metric_ids) if cfg.metric_ids else [mid for mid, _ in known]

    def read(self, window: Window) -> Iterator[pa.Table]:
        spec, report = self.spec, self.report
        targets = self.metric_ids if report.per_metric else [self.conversion] if report.of_conversion else [None]

        async def fetch(client) -> list[pa.Table]:
            limiter = client.limiter(spec.rate_bucket, spec.burst, spec.steady)
            out = []
            for metric in targets:
                before = self.stats.requests
                url = client.url(spec.path, {})
                try:
                    doc = await client.post(url, spec.name, limiter, AnswerDecoder(),
                                            body(spec, window.lo, window.hi, self.conversion, metric, self.zone))  # fmt: skip
                finally:
                    self.state["spent"] += self.stats.requests - before
                where = f"{spec.path} {window.lo:%Y-%m-%d}..{window.hi:%Y-%m-%d}" + (
                    f" metric {metric}" if metric else ""
                )
                out.append(
                    to_arrow(
                        spec, report, doc.records[0], window.lo, window.hi, self.conversion, metric, where, self.zone
                    )
                )
            return out

        tables = self._run(fetch)
        table = pa.concat_tables(tables) if tables else None
        done = self.state.get("done_until")
        if not report.totals and (not done or parse_timestamp(done) < window.hi):
            self.state["done_until"] = iso_time(window.hi)
        n = self.windows.index(window) if window in self.windows else 0
        self.events.fraction((n + 1) / max(1, len(self.windows)))  # before the page count: its line shows the ETA
        self.events.pages(len(targets), table.num_rows if table is not None else 0)
        if table is not None and table.num_rows:
            yield table
