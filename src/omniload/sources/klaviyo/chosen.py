"""Events of chosen metrics only (``metrics=Placed Order,Opened Email``): names resolved, one stream per metric,
a saved cursor per metric.

Klaviyo filters ``GET /api/events`` on ``metric_id`` with ``equals`` only (the spec's ``x-klaviyo-filters``:
``any`` is refused with 400), so each chosen metric is its own partition of the events spec,
``equals(metric_id,"<id>")`` beside the time bounds. Names are resolved through ``GET /api/metrics`` (fixed pages
of 200, the metrics bucket) once per run: a name held by several metrics (Klaviyo allows one name from different
integrations) takes all of them; a name or id held by none refuses the run (exit 2, nothing written).

Each metric keeps how far it was read (``metrics_through``: metric id -> the end of its last committed slice),
saved with the table's rows. A run that goes on from the saved cursor reads a metric read before as an unfiltered
run would (from the loader's start: the saved cursor less the lookback; from further back when the metric's own
read stopped earlier), and a metric not read before from the table's interval start: adding a metric backfills
that metric only; a metric no longer chosen keeps its rows and its cursor (a restored profile's events read again
take its events up to it too). A run that does not resume (a first load, another ``--interval-start``,
``replace``) reads every chosen metric from its start and keeps the others' cursors (their rows stay, unless the
run replaces the table's: a later run adding one back goes on from its cursor, not from this run's start).
``event_attributions`` (include=attributions on the same endpoint) is filtered alike, with cursors of its own, and
reads its own streams (it cannot ride along with per-metric streams, ride.py). Metrics planned alike share one
slice when the plan has one slice each (an incremental run: one commit); otherwise each metric's slices are read
and committed on their own, in turn.
"""

from __future__ import annotations

from dataclasses import replace
from datetime import datetime
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc

from ...dates import iso, parse_timestamp
from ...errors import UsageError
from ...types import TEXT
from ..base import Window
from .decode import PageDecoder
from .extract import Prefetched
from .spec import TableSpec

FILTERED = ("events", "event_attributions")  # the tables read from GET /api/events: both filtered alike
STATE_KEY = "metrics_through"  # metric id -> iso time: that metric's events before it were read and committed


def parse(raw: str) -> list[str]:
    """The names or ids of ``metrics=`` (comma-separated), each once, in the order given."""
    out: list[str] = []
    for item in raw.split(","):
        item = item.strip()
        if item and item not in out:
            out.append(item)
    return out


def partitions(ids: list[str]) -> tuple[tuple[str, dict[str, str]], ...]:
    """One partition (filter fragment) per metric: Klaviyo's events filter takes ``equals(metric_id,...)`` only."""
    return tuple((f'equals(metric_id,"{i}")', {}) for i in ids)


def _field(record: Any, name: str) -> Any:
    if isinstance(record, dict):
        return record.get(name) if name == "id" else (record.get("attributes") or {}).get(name)
    if name == "id":
        return record.id
    return getattr(record.attributes, name, None) if record.attributes is not None else None


async def resolve(client, metrics: TableSpec, wanted: list[str]) -> list[str]:
    """The metric ids ``wanted`` names (names or ids), listing ``GET /api/metrics`` (name only); a name or id no
    metric holds is a :class:`UsageError`."""
    spec = replace(metrics, columns={"name": TEXT}, cursor=None, extra_params={"fields[metric]": "name"})
    limiter = client.limiter(spec.rate_bucket, spec.burst, spec.steady)
    decoder = PageDecoder(spec)
    url: str | None = client.url(spec.path, dict(spec.extra_params))
    by_name: dict[str, list[str]] = {}
    ids: list[str] = []
    while url:
        doc = await client.get(url, "metrics", limiter, decoder)
        for record in doc.records:
            rid, name = _field(record, "id"), _field(record, "name")
            ids.append(rid)
            by_name.setdefault(name, []).append(rid)
        url = client.follow(doc.next) if doc.next else None
    out: list[str] = []
    for item in wanted:
        found = by_name.get(item) or ([item] if item in ids else [])
        if not found:
            known = ", ".join(sorted(n for n in by_name if n)[:8])
            raise UsageError(f"--source-uri: metrics: '{item[:60]}' is neither the name nor the id of a metric of the "
                             f"account ({len(ids):,} metrics in /api/metrics, such as {known}); give names or ids "
                             "as Klaviyo shows them, comma-separated")  # fmt: skip
        out += [i for i in found if i not in out]
    return out


class MetricCursors:
    """Where each chosen metric's events are read from in a run, and how far each was read (saved per slice)."""

    def __init__(self, ids: list[str], saved: dict, first: datetime | None, resumed: bool, kept: bool = True) -> None:
        self.ids = ids
        through: dict[str, str] = dict(saved.get(STATE_KEY) or {})
        # a run that does not go on from the saved cursor starts every chosen metric afresh; the others' rows stay
        # (unless ``kept`` is False: the run replaces the table's rows), and so does how far each was read
        self.through = through if resumed else {m: t for m, t in through.items() if m not in ids and kept}
        self.last = saved.get("last_value") if resumed else None
        self.first, self.resumed = first, resumed
        self.windows: list[tuple[Window, tuple[str, ...]]] = []
        self.prefetched: dict[Window, Prefetched] = {}  # what planning a slice's metrics fetched, for reading it
        self.pages: dict[str, Any] = {}  # every answer planning fetched, by URL (each names its metric): asked once

    def starts(self, start: datetime | None) -> dict[datetime | None, list[str]]:
        """Each metric's start, metrics of one start together: the loader's ``start`` for a metric read up to
        the saved cursor, further back for one whose read stopped before it (by the same lookback), the table's
        interval start for a metric never read."""
        groups: dict[datetime | None, list[str]] = {}
        for m in self.ids:
            s = start
            if self.resumed and m not in self.through:
                s = self.first
            elif self.resumed and self.last and start is not None:
                last, through = parse_timestamp(self.last), parse_timestamp(self.through[m])
                if through < last:
                    s = min(start, through - (last - start))
            groups.setdefault(s, []).append(m)
        return groups

    def plan(self, spec: TableSpec, start: datetime | None, end: datetime, plan_one) -> list[Window]:
        """The slices of every metric (``plan_one(spec, start, prefetched)``: one metric's slices), each tagged by
        its ``part`` (its number), with what its planning fetched."""
        planned: list[tuple[Window, tuple[str, ...], Prefetched]] = []
        for s, ids in self.starts(start).items():
            fetched = {m: Prefetched(pages=self.pages) for m in ids}
            each = {m: plan_one(replace(spec, partitions=partitions([m])), s, fetched[m]) for m in ids}
            if all(len(w) == 1 for w in each.values()):  # small: the group's metrics in one slice
                rows = sum(w[0].rows for w in each.values())
                planned.append((Window(s, end, rows), tuple(ids), Prefetched(pages=self.pages)))
            else:
                planned += [(w, (m,), fetched[m]) for m in ids for w in each[m]]
        self.windows = [(replace(w, part=n), ids) for n, (w, ids, _) in enumerate(planned)]
        self.prefetched = {w: f for (w, _), (_, _, f) in zip(self.windows, planned, strict=True)}
        return [w for w, _ in self.windows]

    def spec_of(self, spec: TableSpec, window: Window) -> TableSpec:
        """``spec`` filtered on the metrics of ``window``."""
        return replace(spec, partitions=partitions(list(self._ids(window))))

    def _ids(self, window: Window) -> tuple[str, ...]:
        for w, ids in self.windows:
            if w == window:
                return ids
        return tuple(self.ids)

    def done(self, window: Window) -> None:
        """``window`` was read whole: its metrics' events before its end are read."""
        for m in self._ids(window):
            self.through[m] = iso(window.hi)

    def state(self) -> dict:
        return {STATE_KEY: dict(self.through)}

    def held(self, table: pa.Table, cursor: str) -> pa.Table:
        """The rows of ``table`` (events read again, by profile) the table holds: the chosen metrics', and those of a
        metric no longer chosen up to where it was read (its rows stay, and come back with a restored profile)."""
        metric = table.column("metric_id")
        keep = pc.is_in(metric, pa.array(self.ids, pa.string()))
        for m, through in self.through.items():
            if m not in self.ids:
                before = pc.less(
                    table.column(cursor), pa.scalar(parse_timestamp(through), pa.timestamp("us", tz="UTC"))
                )
                keep = pc.or_(keep, pc.and_(pc.equal(metric, m), before))
        return table.filter(keep)
