"""The one generic extractor: plans streams for a table spec and pages through them concurrently.

Per table: each partition (campaigns: channel x archived) is a stream over the interval ``[start, end)``.
Where the server bounds the incremental key on both sides, a stream first probes the interval: if one page
holds everything, that was the only request; otherwise it asks for the newest record and splits the rest
into time windows fetched in parallel (half-open windows, so a record on an edge belongs to exactly one).
Where the server offers only a lower bound or no filter, one stream pages through and rows outside the
interval are dropped on the client. A record without a cursor value belongs to the page that brought it. Pages go to a bounded queue, so memory does not grow with the run.
"""

from __future__ import annotations

import asyncio
import queue
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from ...dates import parse_timestamp
from ..base import Window
from .client import KlaviyoClient
from .decode import PageDecoder, cursor_of
from .spec import TableSpec
from .windows import SECOND, checkpoint_slices, even_windows, fetch_windows, whole

_DONE = object()


@dataclass
class Prefetched:
    """What planning a table's slices fetched, for reading them to reuse: each answer by its URL, the probe's
    first page (taken by the first slice) and the cursor of the newest record when the slices were planned."""

    pages: dict[str, Any] = field(default_factory=dict)  # url -> decoded document (decode.Doc)
    first_page: Any = None  # the plan's probe page (a decode.Doc), until the first slice takes it
    partition: str = ""  # the filter fragment of the partition the plan probed (a table of one partition)
    newest: datetime | None = None

    def take_first_page(self) -> Any:
        page, self.first_page = self.first_page, None
        return page


def klaviyo_time(dt: datetime) -> str:
    """Unquoted ISO-8601 as Klaviyo's filter grammar wants it: UTC, ``Z``, whole seconds, a 4-digit year."""
    d = dt.astimezone(UTC)
    return f"{d.year:04d}-{d.month:02d}-{d.day:02d}T{d.hour:02d}:{d.minute:02d}:{d.second:02d}Z"


@dataclass
class Page:
    records: list[Any]  # typed structs or dicts (see decode.py)
    typed: bool
    consts: dict[str, str]
    where: str  # which request, for error messages
    lo: datetime | None  # the rows this page may contribute: lo <= cursor < hi (checked on the client)
    hi: datetime
    extra: list[Any] = field(default_factory=list)  # the riding table's records (ride.py), as dicts


@dataclass
class Plan:
    spec: TableSpec
    start: datetime | None
    end: datetime
    parallelism: int
    prefetched: Prefetched | None = None  # what planning the slices fetched
    rider: TableSpec | None = None  # an include table whose records come with these pages (ride.py)
    pages: float = 0.0  # the slice plan's estimate of its pages (0: unknown)
    dense: bool = False  # records fill [start, end) (a slice before the last): windows cut from ``pages``, no probe
    last: bool = False  # the last of several slices: records fill it up to the plan's newest record, no probe


def _time_filter(spec: TableSpec, lo: datetime | None, hi: datetime | None) -> list[str]:
    out = []
    if lo is not None and spec.lower_op:
        bound = lo - timedelta(seconds=1) if spec.lower_op == "greater-than" else lo
        out.append(f"{spec.lower_op}({spec.cursor},{klaviyo_time(bound)})")
    if hi is not None and spec.upper_op:
        out.append(f"{spec.upper_op}({spec.cursor},{klaviyo_time(hi)})")
    return out


def _params(
    spec: TableSpec, partition: str, lo: datetime | None, hi: datetime | None, sort: str | None
) -> dict[str, str]:
    parts = ([partition] if partition else []) + _time_filter(spec, lo, hi)
    params: dict[str, str] = {}
    if parts:
        params["filter"] = ",".join(parts)
    if sort:
        params["sort"] = sort
    if spec.page_size:
        params["page[size]"] = str(spec.page_size)
    params.update(spec.extra_params)
    return params


def _cursor_value(record: Any, field: str) -> datetime | None:
    raw = cursor_of(record, field)
    if not raw or not isinstance(raw, str):
        return None
    try:
        return parse_timestamp(raw)
    except ValueError:
        return None


def _before(records: list[Any], field: str, t: datetime) -> list[Any]:
    """The records stamped before ``t``, and those without a stamp: they belong to the page that brought them."""
    out = []
    for r in records:
        v = _cursor_value(r, field)
        if v is None or v < t:
            out.append(r)
    return out


class Coverage:
    """How much of the interval's time the fetched pages have covered (pages come sorted by the cursor):
    the progress fraction behind the ETA."""

    def __init__(self) -> None:
        self._spans: dict[tuple, list[float]] = {}

    def add(self, key: tuple, lo: datetime | None, hi: datetime | None) -> None:
        if lo is not None and hi is not None and key not in self._spans:
            self._spans[key] = [max((hi - lo).total_seconds(), 1e-6), 0.0]

    def advance(self, key: tuple, lo: datetime, cursor: datetime | None) -> None:
        span = self._spans.get(key)
        if span is not None and cursor is not None:
            span[1] = min(span[0], max(span[1], (cursor - lo).total_seconds()))

    def finish(self, key: tuple) -> None:
        if key in self._spans:
            self._spans[key][1] = self._spans[key][0]

    def fraction(self) -> float | None:
        total = sum(s[0] for s in self._spans.values())
        return sum(s[1] for s in self._spans.values()) / total if total else None


class Extractor:
    """Runs a plan on its own event loop thread and hands pages to the caller through a bounded queue."""

    def __init__(self, client_factory: Callable[[], KlaviyoClient], plan: Plan,
                 on_fraction: Callable[[float], None] | None = None) -> None:  # fmt: skip
        self.client_factory = client_factory
        self.plan = plan
        self.on_fraction = on_fraction
        self.coverage = Coverage()
        self.queue: queue.Queue = queue.Queue(maxsize=max(8, plan.parallelism * 2))
        self._stop = threading.Event()

    def pages(self) -> Iterator[Page]:
        thread = threading.Thread(
            target=lambda: asyncio.run(self._main()), name=f"extract-{self.plan.spec.name}", daemon=True
        )
        thread.start()
        try:
            while True:
                item = self.queue.get()
                if item is _DONE:
                    break
                if isinstance(item, BaseException):
                    raise item
                yield item
        finally:
            self._stop.set()
            if threading.current_thread() is not thread:  # the collector may close this generator in that thread
                thread.join(timeout=30)

    async def _put(self, item: Any) -> None:
        while not self._stop.is_set():
            try:
                self.queue.put_nowait(item)
                return
            except queue.Full:
                await asyncio.sleep(0.005)
        raise asyncio.CancelledError

    async def _main(self) -> None:
        try:
            async with self.client_factory() as client:
                await self._run(client)
            await self._put(_DONE)
        except asyncio.CancelledError:
            pass
        except BaseException as exc:  # noqa: BLE001 - forwarded to the consumer thread
            if not self._stop.is_set():
                self.queue.put(exc)

    async def _run(self, client: KlaviyoClient) -> None:
        spec = self.plan.spec
        self.limiter = client.limiter(spec.rate_bucket, spec.burst, spec.steady)
        self.decoder = PageDecoder(spec, self.plan.rider)
        streams = [self._stream(client, part, consts) for part, consts in spec.partitions]
        await self._gather(streams)

    async def _gather(self, coros: list) -> None:
        tasks = [asyncio.ensure_future(c) for c in coros]
        try:
            await asyncio.gather(*tasks)
        finally:
            for t in tasks:
                t.cancel()

    async def _pages(self, client: KlaviyoClient, params: dict[str, str], consts: dict[str, str],
                     lo: datetime | None, hi: datetime, first: dict | None = None) -> None:  # fmt: skip
        """Follow ``links.next`` verbatim from the first page of a query, sending every page on."""
        spec = self.plan.spec
        url = client.url(spec.path, params)
        doc = first
        n = 0
        key = (str(consts), lo, hi)
        tracked = spec.cursor is not None and spec.sort == spec.cursor
        win_lo = lo
        while True:
            if doc is None:
                doc = await client.get(url, spec.name, self.limiter, self.decoder)
            n += 1
            await self._put(Page(doc.records, doc.typed, consts, f"page {n} of {url}", lo, hi, doc.extra))
            if tracked and doc.records:
                win_lo = win_lo or _cursor_value(doc.records[0], spec.cursor)
                if win_lo is not None:
                    self.coverage.add(key, win_lo, hi)  # no-op for windows registered when they were cut
                    self.coverage.advance(key, win_lo, _cursor_value(doc.records[-1], spec.cursor))
            nxt = doc.next
            if not nxt:
                self.coverage.finish(key)
                self._report()
                return
            self._report()
            url, doc = client.follow(nxt), None

    def _report(self) -> None:
        fraction = self.coverage.fraction()
        if self.on_fraction is not None and fraction is not None:
            self.on_fraction(fraction)

    async def _stream(self, client: KlaviyoClient, partition: str, consts: dict[str, str]) -> None:
        plan, spec = self.plan, self.plan.spec
        if not spec.splittable or plan.parallelism <= 1:
            await self._pages(
                client, _params(spec, partition, plan.start, plan.end, spec.sort), consts, plan.start, plan.end
            )
            return
        if plan.dense and plan.pages >= 2 and await self._dense(client, partition, consts):
            return
        newest = plan.prefetched.newest if plan.last and plan.prefetched is not None else None
        top = whole(newest) + SECOND if newest is not None else None
        if top is not None and plan.start is not None and plan.start < top < plan.end and plan.pages >= 2:
            # the plan's newest record ends the even windows; a last window holds what came since
            windows = even_windows(plan.start, top, plan.pages, plan.parallelism, plan.end)
            await self._windows(client, partition, consts, windows)
            return
        probe_params = _params(spec, partition, plan.start, plan.end, spec.sort)
        probe, t0, t1, t_max = await _probe(client, spec, probe_params, self.limiter, self.decoder, plan.prefetched,
                                            eager=plan.pages >= 2)  # fmt: skip
        t1 = whole(t1) if t1 is not None else None  # windows start on a whole second (see windows.py)
        if t0 is None or t1 is None or t_max is None or t_max <= t1 or (plan.start is not None and t1 <= plan.start):
            await self._pages(client, probe_params, consts, plan.start, plan.end, first=probe)
            return
        # Keep the probe's records before t1; everything from t1 on comes from the windows.
        kept = _before(probe.records, spec.cursor, t1)
        where = f"page 1 of {client.url(spec.path, probe_params)}"
        await self._put(
            Page(kept, probe.typed, consts, where, plan.start, t1, probe.extra)
        )  # extra: cut to t1 by the reader
        await self._windows(client, partition, consts, fetch_windows(t0, t1, t_max, plan.end, plan.parallelism),
                            whole(t_max) + SECOND)  # fmt: skip

    async def _dense(self, client: KlaviyoClient, partition: str, consts: dict[str, str]) -> bool:
        """A slice its records fill (a checkpoint slice before the last): windows cut evenly over it, no probe.
        The first slice starts with the first page the plan's probe read (the same query from the same start),
        the windows after that page's last second. False: no lower bound to cut from (probe as usual)."""
        plan, spec = self.plan, self.plan.spec
        lo, pages = plan.start, plan.pages
        # the plan probed one partition's query: its page is this slice's only for that partition
        first = (plan.prefetched.take_first_page()
                 if plan.prefetched is not None and partition == plan.prefetched.partition else None)  # fmt: skip
        last = (
            _cursor_value(first.records[-1], spec.cursor)
            if first is not None and first.records and first.next
            else None
        )
        if last is not None and whole(last) < plan.end and (lo is None or lo < whole(last)):
            lo = whole(last)
            kept = _before(first.records, spec.cursor, lo)
            await self._put(Page(kept, first.typed, consts, "page 1 of the plan's probe", plan.start, lo, first.extra))
            pages -= 1
        if lo is None:
            return False
        await self._windows(client, partition, consts, even_windows(lo, plan.end, max(pages, 1.0), plan.parallelism))
        return True

    async def _windows(self, client: KlaviyoClient, partition: str, consts: dict[str, str],
                       windows: list[tuple[datetime, datetime]], newest: datetime | None = None) -> None:  # fmt: skip
        """Page ``windows`` with ``parallelism`` workers (progress counts each up to ``newest``, if known)."""
        plan, spec = self.plan, self.plan.spec
        work: asyncio.Queue = asyncio.Queue()
        for w in windows:
            work.put_nowait(w)
            self.coverage.add((str(consts), w[0], w[1]), w[0], min(w[1], newest) if newest else w[1])

        async def worker() -> None:
            while True:
                try:
                    lo, hi = work.get_nowait()
                except asyncio.QueueEmpty:
                    return
                if lo < hi:
                    await self._pages(client, _params(spec, partition, lo, hi, spec.sort), consts, lo, hi)

        await self._gather([worker() for _ in range(plan.parallelism)])


async def _probe(client: KlaviyoClient, spec: TableSpec, params: dict[str, str], limiter, decoder: PageDecoder,
                 prefetched: Prefetched | None, eager: bool = False) -> tuple[Any, datetime | None, datetime | None, datetime | None]:  # fmt: skip
    """The first page of a query and, when more pages follow, the newest record's cursor: (page, t0, t1, t_max)
    with t0/t1 the cursors of the page's first and last record. Both answers are kept in ``prefetched`` (or
    taken from it), so planning slices and extracting the first one never ask twice."""
    cache = prefetched.pages if prefetched is not None else {}
    url = client.url(spec.path, params)
    newest_params = {**params, "sort": f"-{spec.sort}"}
    if spec.page_size:
        newest_params["page[size]"] = "1"
    newest_url = client.url(spec.path, newest_params)

    async def get(u: str) -> Any:
        return cache.get(u) or await client.get(u, spec.name, limiter, decoder)

    if eager and url not in cache:  # many pages expected: both at once, one round trip before the windows start
        probe, newest = await asyncio.gather(get(url), get(newest_url))
    else:  # the first page may be the only one (an incremental run): ask for the newest only when more follow
        probe = await get(url)
        newest = await get(newest_url) if probe.next and probe.records else None
    cache[url] = probe
    if newest is not None:
        cache[newest_url] = newest
    if not probe.next or not probe.records:
        return probe, None, None, None
    t_max = _cursor_value(newest.records[0], spec.cursor) if newest.records else None
    return probe, _cursor_value(probe.records[0], spec.cursor), _cursor_value(probe.records[-1], spec.cursor), t_max


async def _plan_slices(client: KlaviyoClient, spec: TableSpec, start: datetime | None, end: datetime,
                       rows_per_slice: int, prefetched: Prefetched, rider: TableSpec | None) -> list[Window]:  # fmt: skip
    limiter = client.limiter(spec.rate_bucket, spec.burst, spec.steady)
    prefetched.partition = spec.partitions[0][0]  # a table of one partition (plan_slices): its own filter
    # a backfill from the beginning asks for the newest record beside the first page (one round trip, not two)
    probe, t0, t1, t_max = await _probe(client, spec, _params(spec, prefetched.partition, start, end, spec.sort), limiter,
                                        PageDecoder(spec, rider), prefetched, eager=start is None)  # fmt: skip
    prefetched.first_page = probe  # the first slice's first page, whatever its end (Extractor._dense)
    prefetched.newest = t_max
    if t0 is None or t1 is None or t_max is None:
        return [Window(start, end)]
    return checkpoint_slices(start, end, len(probe.records), t0, t1, t_max, rows_per_slice)


def plan_slices(client_factory: Callable[[], KlaviyoClient], spec: TableSpec, start: datetime | None, end: datetime,
                rows_per_slice: int, prefetched: Prefetched, rider: TableSpec | None = None) -> list[Window]:  # fmt: skip
    """Cut ``[start, end)`` into time slices of about ``rows_per_slice`` records, each loaded and committed on
    its own, so that a crash loses at most one slice of work. Only for tables the server filters on both sides.
    The pages fetched while planning are kept in ``prefetched`` (reused by the first slice)."""

    async def main() -> list[Window]:
        async with client_factory() as client:
            return await _plan_slices(client, spec, start, end, rows_per_slice, prefetched, rider)

    if not spec.splittable or len(spec.partitions) > 1:
        return [Window(start, end)]
    return asyncio.run(main())


def run_plan(client_factory, plan: Plan, on_fraction: Callable[[float], None] | None = None) -> Iterator[Page]:
    """Pages of ``plan`` (the clients count their requests in the reader's stats)."""
    yield from Extractor(client_factory, plan, on_fraction).pages()


__all__ = ["Extractor", "Page", "Plan", "klaviyo_time", "plan_slices", "run_plan"]
