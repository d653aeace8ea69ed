"""The Klaviyo source behind omniload's :class:`~omniload.sources.base.Source` interface.

``klaviyo://?api_key=pk_...[&base_url=...][&revision=...]`` names it (options.py reads the URI; report tables
have their own reader in reports.py). Each list table's reader plans checkpoint
slices (with the newest-record probe, whose pages the first slice reuses), extracts ``[lo, hi)`` through
the generic extractor, drops rows outside each page's window on the client, and yields Arrow tables of
``batch_rows`` rows (or ``BATCH_BYTES``, for wide rows). Child tables (a parent in their spec) are read per
parent record by :mod:`.children`; every current key is listed by :mod:`.keys`; a relationship sent as links only
is filled from its owner's side by :mod:`.owners`. One rate limiter per bucket is shared by every
reader of the run, so tables of one bucket never overrun it together. An include table loaded with its parent
(event attributions with events) rides along with the parent's requests (ride.py).
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from contextlib import closing
from dataclasses import replace
from datetime import datetime, timedelta

import pyarrow as pa
import pyarrow.compute as pc

from ...dates import iso, parse_timestamp
from ...errors import NotFound
from ...uri import register_secret
from ..base import ReadEvents, ReadOptions, ScanCost, Source, TableInfo, TableReader, TableStats, View, Window
from ..scoped import ScopedReader, scoped_info
from .children import child_pages, for_parent
from .chosen import FILTERED, MetricCursors, resolve
from .client import KlaviyoClient
from .convert import arrow_schema, derive, records_to_arrow, typed_to_arrow
from .decode import PageDecoder
from .extract import Page, Plan, Prefetched, plan_slices, run_plan
from .fivetran import VIEWS as FIVETRAN_VIEWS
from .keys import read_keys, scan_cost, scannable
from .lift import LIFTS, Lifter, Shared
from .options import KlaviyoConfig, from_uri, opt_in, opt_in_tables
from .owners import Owners
from .parts import Parts
from .policy import RetryPolicy
from .preflight import preflight
from .reports import ReportReader
from .ride import Ride, after, need_from
from .run import KlaviyoRun
from .spec import TableSpec
from .tables import TABLES
from .tables.included import RIDERS
from .windows import whole

ACCOUNT = ("account_id",)  # account_column=true: the column naming the account of every row
BATCH_BYTES = 24 * 2**20  # a batch is handed to dlt at this size too: wide rows (profiles) must not pile up


def _in_window(
    table: pa.Table, spec: TableSpec, lo: datetime | None, hi: datetime, last: datetime | None = None
) -> pa.Table:
    """The rows of a page that belong to its window ``lo <= cursor < hi``, and those without a cursor value (the
    API sent them for this window: they belong nowhere else). ``last``: the run's end, given only in the run's
    last slice, whose window also keeps records stamped after it (in the future): they belong nowhere else
    either. (A record stamped exactly at the end is not in the future: the next run reads it.)"""
    if not spec.cursor or table.num_rows == 0:
        return table
    col = table.column(spec.cursor)
    bounds = pc.min_max(col).as_py()  # one kernel: most pages lie wholly inside their window
    if bounds["max"] is None or (bounds["max"] < hi and (lo is None or bounds["min"] >= lo)):
        return table
    keep = pc.less(col, pa.scalar(hi, pa.timestamp("us", tz="UTC")))
    if last is not None:
        keep = pc.or_(keep, pc.greater(col, pa.scalar(last, pa.timestamp("us", tz="UTC"))))
    if lo is not None:
        keep = pc.and_(keep, pc.greater_equal(col, pa.scalar(lo, pa.timestamp("us", tz="UTC"))))
    return table.filter(pc.or_kleene(keep, pc.is_null(col)))


def _after(table: pa.Table, spec: TableSpec, end: datetime) -> int:
    """How many rows are stamped after ``end``."""
    if not spec.cursor or table.num_rows == 0:
        return 0
    return pc.sum(pc.greater(table.column(spec.cursor), pa.scalar(end, pa.timestamp("us", tz="UTC")))).as_py() or 0


class KlaviyoReader(TableReader):
    """Reads one Klaviyo table; keeps the pages fetched while planning for the first slice."""

    def __init__(self, source: KlaviyoSource, spec: TableSpec, options: ReadOptions, events: ReadEvents) -> None:
        self.source, self.spec, self.options, self.events = source, spec, options, events
        self.info = source.info(spec)
        self.stats = TableStats()
        self._prefetched = Prefetched()
        self._windows: list[Window] = []
        self._end: datetime | None = None  # the run's end
        self._future_after: datetime | None = None  # the run's end when it is the server's now (see plan)
        self._saved: dict = {}
        self.feeds: Ride | None = None  # the ride this (parent) reader fills
        self.riding: Ride | None = None  # the ride this (rider) reader loads from
        self._through: datetime | None = None  # a rider: the end of the interval read so far
        self._parts: Parts | None = None  # a child table read in parts (parts.py)
        self._lifter: Lifter | None = None  # properties=columns (lift.py)
        self._chosen: MetricCursors | None = None  # events of chosen metrics (metrics=, chosen.py)
        # (the interval's start,) when the run goes on from the saved cursor (resuming); None: it does not
        self._resumed: tuple[datetime | None] | None = None
        self._loaded: dict[str, str] = {}  # the destination table's columns and types (loaded_columns)
        self._replacing = False  # this run replaces the table's rows (replacing)

    def resuming(self, first: datetime | None) -> None:
        self._resumed = (first,)

    def loaded_columns(self, types: dict[str, str]) -> None:
        self._loaded = types

    def replacing(self) -> None:
        self._replacing = True

    def restore(self, saved: dict) -> None:
        self._saved = saved
        if self.source.config.lift_properties and self.spec.name in LIFTS:
            shared = self.source.shared.setdefault(("lift", self.spec.name), Shared())  # the run's accounts' one
            self._lifter = Lifter(self.spec.name, self.source.config.property_cap, saved,
                                  lambda text: self.source.note(self.events, text), shared)  # fmt: skip
            self._lifter.reserved = set(self.spec.all_columns) | set(ACCOUNT)
            self._lifter.loaded(self._loaded)
        if self.source.run.chosen_ids is not None and self.spec.name in FILTERED:
            first, resumed = (self._resumed or (None,))[0], self._resumed is not None
            self._chosen = MetricCursors(self.source.run.chosen_ids, saved, first, resumed, not self._replacing)

    def _lifted(self, table: pa.Table) -> pa.Table:
        return self._lifter.apply(table) if self._lifter is not None else table

    def derive(self, rows: pa.Table) -> pa.Table:
        return derive(self.spec, rows)

    def adopt(self, rows: pa.Table) -> pa.Table:
        from .adopt import adopt

        return adopt(self.spec, rows)

    def state_update(self) -> dict:
        """A rider saves how far it has read (``through``, see ride.py) with every slice, even an empty one; a child
        table read in parts its progress (parts.py)."""
        if self._parts is not None:
            return self._parts.state()
        out = self._lifter.state() if self._lifter is not None else {}  # the types of the property columns (lift.py)
        if self._chosen is not None:  # each chosen metric's cursor (chosen.py)
            out.update(self._chosen.state())
        if self.spec.name in RIDERS.values():
            out["through"] = iso(self._through) if self._through is not None else ""
        return out

    def following(self, window: Window) -> Window | None:
        return self._parts.following(window) if self._parts is not None else None

    def _board(self, start: datetime | None) -> None:
        """Take the ride this table is part of: a parent whose rider is still to run feeds one; a rider loads from
        the one its parent filled when it covers what the rider needs (else it reads the API)."""
        run, specs, name = self.source.run, self.source.specs, self.spec.name
        run.planned.add(name)
        rider = RIDERS.get(name)
        # per-metric streams (metrics=) cover no one interval a rider could take: each table reads its own
        if rider in run.opened and rider not in run.planned and rider in specs and self.source.run.chosen_ids is None:
            rspec = specs[rider]
            self.feeds = run.rides[rider] = Ride(rspec, arrow_schema(rspec))
            self.spec = replace(self.spec, extra_params={**self.spec.extra_params, "include": rspec.include})
        ride = run.rides.pop(name, None)
        if ride is not None:
            if ride.covers(need_from(self._saved, start, self.spec.lookback, parse_timestamp)):
                self.riding = ride
            else:
                ride.discard()

    def _client(self) -> KlaviyoClient:
        return self.source.client(self.options, self.stats, self.events.waiting)

    def plan(self, start: datetime | None, end: datetime | None, rows_per_slice: int) -> list[Window]:
        start = whole(start) if self.spec.cursor and start is not None else None
        asked, capped = end, self.source.cap_end(end, self.events)
        end = whole(capped)
        if start is not None and start >= end:
            start = end - timedelta(seconds=1)
        self._end = end
        # read up to the server's now, records stamped after the end are in the future: the last slice keeps them;
        # an --interval-end in the past ends the interval, and what was stamped after it is left for later runs
        self._future_after = end if asked is None or asked > capped else None
        self._board(start)
        if self.riding is not None:  # one slice: the parent's rows, whatever interval they cover
            assert self.riding.hi is not None
            self._windows = [Window(self.riding.lo, self.riding.hi)]
        elif self._chosen is not None:  # one stream per metric, each from its own start
            self._windows = self._chosen.plan(self.spec, start, end, lambda spec, lo, fetched: plan_slices(
                self._client, spec, lo, end, rows_per_slice, fetched))  # fmt: skip
        elif self.spec.cursor and self.spec.parent is None:
            rider = self.feeds.rider if self.feeds is not None else None
            self._windows = plan_slices(self._client, self.spec, start, end, rows_per_slice, self._prefetched, rider)
        elif (
            self.spec.cursor and self.spec.parent is not None and not self.spec.parent.filter
        ):  # parents, some at a time
            self._parts = Parts(self._saved, start, end, rows_per_slice, self.spec.records_per_page)
            self._windows = self._parts.windows
            if self._parts.resumed:
                self.source.note(self.events, f"table '{self.spec.name}': the last run stopped after {len(self._parts.done):,} "
                                              f"parents; reading the others up to {self._parts.hi.isoformat()}, where the "
                                              "next run goes on")  # fmt: skip
        else:
            self._windows = [Window(start, end)]
        return self._windows

    def _gone(self, parent: str, gone: bool) -> None:
        """A parent's children were all read (parts.py counts it done); one that answered 404 is said."""
        if gone:
            spec, kind = self.spec, {**TABLES, **self.source.specs}[self.spec.parent.table].resource_type
            self.source.note(self.events, f"table '{spec.name}': {kind} {parent} answered HTTP 404 (deleted after it was "
                                          "listed): skipped; its records here are gone with it")  # fmt: skip
        if self._parts is not None:
            self._parts.on_done(parent, gone)

    def read(self, window: Window) -> Iterator[pa.Table]:
        spec, opts = self.spec, self.options
        n = self._windows.index(window) if window in self._windows else 0
        weights = [w.rows or 1.0 for w in self._windows] or [1.0]  # slices weigh their estimated records
        before, share, total = sum(weights[:n]), weights[min(n, len(weights) - 1)], sum(weights)
        last = self._end is None or window.hi >= self._end

        def fraction(f: float) -> None:  # progress of the whole table
            self.events.fraction((before + f * share) / total)

        lo = window.lo if spec.cursor else None
        if self.riding is not None:
            for table in self.riding.rows(opts.batch_rows):
                table = after(table, spec.cursor or "", lo)
                self._count(table)
                self.events.pages(0, table.num_rows)
                yield table
            self._through = window.hi
            return
        feeds = self.feeds
        if spec.parent is not None:
            tables = {**TABLES, **self.source.specs}

            def stream(skip: frozenset[str] = frozenset(), hi: datetime = window.hi) -> Iterator[Page]:
                return child_pages(
                    self._client, spec, tables, lo, hi, max(1, opts.parallelism), fraction, self._gone, skip
                )

            parts = self._parts if self._parts is not None and window in self._windows else None
            pages = parts.read(window, stream) if parts is not None else stream()
        else:
            fetched, chosen = self._prefetched, spec
            if self._chosen is not None:
                fetched, chosen = self._chosen.prefetched.get(window, fetched), self._chosen.spec_of(spec, window)
            plan = Plan(chosen, lo, window.hi, max(1, opts.parallelism), fetched, feeds.rider if feeds else None,
                        window.rows / spec.records_per_page, dense=not last, last=last and n > 0)  # fmt: skip
            pages = run_plan(self._client, plan, fraction)
        buffer: list[pa.Table] = []
        rows = size = 0
        decoder = PageDecoder(spec)
        owners = (Owners(self._client, spec, {**TABLES, **self.source.specs}, window.hi, max(1, opts.parallelism))
                  if spec.owner is not None else None)  # fmt: skip
        with closing(pages):  # an abandoned read stops what it started (a child table's workers) at once
            for page in pages:
                if page.typed:
                    table = typed_to_arrow(decoder, page.records, page.consts, page.where)
                else:
                    table = records_to_arrow(spec, page.records, page.consts, page.where)
                if feeds is not None and page.extra:  # the rider's records of this page, cut as the page's rows are
                    extra = records_to_arrow(feeds.rider, page.extra, {}, page.where)
                    feeds.add(_in_window(extra, feeds.rider, page.lo, page.hi, self._future_after if last else None))
                if last:
                    table = _in_window(table, spec, page.lo, page.hi, self._future_after)
                else:  # a record stamped after the run's end seen in an earlier slice cannot be placed
                    self.stats.unplaced += _after(table, spec, self._future_after) if self._future_after else 0
                    table = _in_window(table, spec, page.lo, page.hi)
                self._count(table)
                if owners is not None and table.num_rows:
                    table = owners.fill(table)
                self.events.pages(1, table.num_rows)
                if table.num_rows:
                    buffer.append(table)
                    rows += table.num_rows
                    size += table.nbytes
                if rows >= opts.batch_rows or size >= BATCH_BYTES:
                    yield self._lifted(pa.concat_tables(buffer))
                    buffer, rows, size = [], 0, 0
        if buffer:
            yield self._lifted(pa.concat_tables(buffer))
        if feeds is not None:
            feeds.covered(window.lo, window.hi)
        if self._chosen is not None:
            self._chosen.done(window)
        if spec.name in RIDERS.values():
            self._through = window.hi
        if self.source.run.server.deprecation:
            self.source.note(self.events, f"API revision {self.source.config.revision} is {self.source.run.server.deprecation}; "
                                          "set revision= in the source URI to a newer one")  # fmt: skip

    def reread(self, column: str, parents: list[str], end: datetime) -> Iterator[pa.Table]:
        """The records of ``parents``, one ``equals(column,"…")`` listing each (the endpoint takes one value), or
        a child table's endpoint under each parent (by another column: under every parent), up to ``end``
        (Klaviyo serves a restored profile's events again, with their old datetimes)."""
        if column not in self.spec.reread_by:
            raise NotImplementedError(f"table '{self.spec.name}' cannot be read by '{column}'")
        if column == self.spec.parent_column:  # a child table: its endpoint under each parent, read whole
            yield from self._reread_children(parents, end)
            return
        if self.spec.parent is not None:  # a child table by another column (a membership's profile): every parent's
            # endpoint whole (a list's members cannot be filtered by profile id), the rows of ``parents`` kept
            wanted = pa.array(parents, pa.string())
            for table in self._lean(self.spec).read(Window(None, end)):
                yield self._lifted(table.filter(pc.is_in(table.column(column), value_set=wanted)))
            return
        chunk = max(1, self.options.parallelism)
        for n in range(0, len(parents), chunk):  # partitions are listed side by side
            parts = tuple((f'equals({column},"{p}")', {}) for p in parents[n : n + chunk])
            lean = type(self)(self.source, replace(self.spec, partitions=parts), self.options, self.events)
            lean.stats = self.stats
            for table in lean.read(Window(None, end)):
                if self._chosen is not None:  # metrics=: the events of the metrics read here only
                    table = self._chosen.held(table, self.spec.cursor)
                yield self._lifted(table)

    def _reread_children(self, parents: list[str], end: datetime) -> Iterator[pa.Table]:
        """Every child of ``parents`` up to ``end`` (a restored segment's memberships, those that joined while it was
        deleted among them: served again with their old ``joined_group_at``); a parent deleted again (404) is
        skipped, its rows here go with it at the next reconcile."""
        for parent in parents:
            try:
                for table in self._lean(for_parent(self.spec, parent)).read(Window(None, end)):
                    yield self._lifted(table)
            except NotFound:
                self._gone(parent, True)

    def _lean(self, spec: TableSpec) -> KlaviyoReader:
        """A reader of ``spec`` for a re-read: none of this reader's planning, its requests counted with this one's."""
        lean = type(self)(self.source, spec, self.options, self.events)
        lean.stats = self.stats
        return lean

    def _count(self, table: pa.Table) -> None:
        """Count the rows without a cursor value (the summary says how many were loaded so)."""
        if self.spec.cursor:
            self.stats.no_cursor += table.column(self.spec.cursor).null_count

    def scan_cost(self, rows: int, groups: int) -> ScanCost | None:
        if not scannable(self.spec):
            return None
        return scan_cost(self.spec, {**TABLES, **self.source.specs}, rows, groups)

    def current_keys(self) -> pa.Table:
        return read_keys(self, whole(self.source.cap_end(None, self.events)))


class KlaviyoSource(Source):
    """Klaviyo's REST API (JSON:API), revision pinned to ``REVISION`` unless the URI names another. Its
    configuration is one frozen :class:`~.options.KlaviyoConfig` (options.py), the run's shared state one
    :class:`~.run.KlaviyoRun` (run.py); the tables (``specs``) are the configuration's, computed once here."""

    schemes = ("klaviyo",)
    default_schema = "klaviyo"

    def __init__(self, config: KlaviyoConfig) -> None:
        register_secret(config.api_key)
        self.config = config
        self.specs: dict[str, TableSpec] = opt_in_tables(opt_in(TABLES, config), config)  # the opt-ins asked for
        self.run = KlaviyoRun()  # what the run's readers share (run.py)
        self.notes = list(config.notes)  # said before the run
        self.shared: dict = {}  # what the readers agree on with other accounts' of the run (share_tables)

    @classmethod
    def from_uri(cls, uri: str) -> KlaviyoSource:
        return cls(from_uri(uri))

    def share_tables(self, shared: dict) -> None:
        """Several accounts load the same tables in this run: every row carries its account's id (the one change of
        the configuration, asked by the engine before any reader opens); ``shared``: the accounts' one dict (each
        table's property column types, lift.py)."""
        self.config = replace(self.config, account_column=True)
        self.shared = shared

    def label(self) -> str:
        """The account's id once the preflight asked (else the key's environment variable, when named)."""
        return self.run.account_id or (f"api_key_env={self.config.key_env}" if self.config.key_env else "")

    def views(self) -> list[View]:
        return list(FIVETRAN_VIEWS) if self.config.layout == "fivetran" else []

    def tables(self) -> dict[str, TableInfo]:
        infos = {name: self.info(spec) for name, spec in self.specs.items()}
        if self.config.account_column:
            infos = {name: scoped_info(info, ACCOUNT, self._account()) for name, info in infos.items()}
        return infos

    def _account(self) -> tuple[str] | None:
        """The account's id, as the scope's values (None: not known before the preflight)."""
        return (self.run.account_id,) if self.run.account_id is not None else None

    def info(self, spec: TableSpec) -> TableInfo:
        """The table's info as this source offers it, in ``tables()`` and in its reader alike: the spec's, with the
        table's weight (which needs the source's other tables: its parents)."""
        return replace(spec.info, weight=self._weight(spec))

    def _weight(self, spec: TableSpec) -> float:
        """Minutes per 60 requests of the table's own bucket, times a hundredfold for each level of parents
        it is read under (one request per parent record): child endpoints of slow buckets come first."""
        weight, parent = 60.0 / spec.steady, spec.parent
        while parent is not None:
            weight *= 100
            up = self.specs.get(parent.table) or TABLES.get(parent.table)
            parent = up.parent if up is not None else None
        return weight

    def preflight(self, tables: list[str] | None = None) -> None:
        """Fail fast, before writing anything, when the API cannot be reached, refuses the key, or the key may
        read none of ``tables`` (preflight.py); the answer's ``Date`` says the server's clock."""
        preflight(self, tables, {**TABLES, **self.specs})
        self.choose(tables)

    def choose(self, tables: list[str] | None) -> None:
        """``metrics=``: the chosen metrics' ids, resolved once per run, before the first of ``tables`` that reads
        events plans (the plain dlt source preflights with its first table only: each table asks here too)."""
        if self.config.chosen_metrics and self.run.chosen_ids is None and set(FILTERED) & set(tables or ()):
            self.run.chosen_ids = self._resolve({**TABLES, **self.specs}["metrics"])

    def _resolve(self, metrics: TableSpec) -> list[str]:
        async def main() -> list[str]:
            async with self.client(ReadOptions(parallelism=1)) as client:
                return await resolve(client, metrics, list(self.config.chosen_metrics))

        return asyncio.run(main())

    def cap_end(self, end: datetime | None, events: ReadEvents) -> datetime:
        """``end`` (None: now), but never past the server's now: a later filter datetime is refused (Klaviyo answers
        400 "End date may not be in the future"). The server's now comes from the ``Date`` header, floored to the
        second and older than the server's clock by the time a request arrives: no margin is needed beyond it."""
        cap = self.run.server.now()
        if end is None or end <= cap:
            return end or cap
        self.note(
            events, f"--interval-end {end.isoformat()} is after the API's clock; reading up to {whole(cap).isoformat()}"
        )
        return cap

    def note(self, events: ReadEvents, message: str) -> None:
        """Say ``message`` once per run."""
        if message not in self.run.noted:
            self.run.noted.add(message)
            events.note(message)

    def reader(self, table: str, options: ReadOptions, events: ReadEvents) -> TableReader:
        spec = self.specs[table]
        self.run.opened.add(table)
        if spec.cursor_kind == "period":  # reports: POST one period at a time, within the daily budget
            reader: TableReader = ReportReader(self, spec, options, events)
        else:
            reader = KlaviyoReader(self, spec, options, events)
        return ScopedReader(reader, ACCOUNT, self._account) if self.config.account_column else reader

    def client(self, options: ReadOptions, stats: TableStats | None = None, on_retry=None) -> KlaviyoClient:
        policy = RetryPolicy(max_retry_after=options.max_retry_after)
        cfg = self.config
        return KlaviyoClient(cfg.api_key, cfg.base_url, cfg.revision, policy, connections=max(8, options.parallelism * 2),
                             limiters=self.run.limiters, stats=stats, server=self.run.server, on_retry=on_retry)  # fmt: skip
