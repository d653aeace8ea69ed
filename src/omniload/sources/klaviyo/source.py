"""The Klaviyo source behind omniload's :class:`~omniload.sources.base.Source` interface.

``klaviyo://?api_key=pk_...[&base_url=...][&revision=...]`` names it. Each table's reader plans checkpoint
slices (with the newest-record probe, whose pages the first slice reuses), extracts ``[lo, hi)`` through
the generic extractor, drops rows outside each page's window on the client, and yields Arrow tables of
``batch_rows`` rows (or ``BATCH_BYTES``, for wide rows). Child tables (a parent in their spec) are read per
parent record by :mod:`.children`. One rate limiter per bucket is shared by every
reader of the run, so tables of one bucket never overrun it together.
"""

from __future__ import annotations

import re
from datetime import datetime
from typing import Any, Iterator
from urllib.parse import parse_qs, urlsplit

import pyarrow as pa
import pyarrow.compute as pc

from ...errors import UsageError
from ...uri import register_secret
from ..base import ReadEvents, ReadOptions, Source, TableInfo, TableReader, TableStats, Window
from .client import DEFAULT_BASE_URL, REVISION, KlaviyoClient
from .policy import RetryPolicy
from .convert import records_to_arrow, typed_to_arrow
from .children import child_pages
from .decode import PageDecoder
from .extract import Plan, plan_slices, run_plan
from .spec import TableSpec
from .tables import TABLES

BATCH_BYTES = 24 * 2**20  # a batch is handed to dlt at this size too: wide rows (profiles) must not pile up
URI_PARAMS = ("api_key", "base_url", "revision")


def _in_window(table: pa.Table, spec: TableSpec, lo: datetime | None, hi: datetime) -> pa.Table:
    if not spec.cursor or table.num_rows == 0:
        return table
    col = table.column(spec.cursor)
    bounds = pc.min_max(col).as_py()  # one kernel: most pages lie wholly inside their window
    if col.null_count == 0 and bounds["max"] < hi and (lo is None or bounds["min"] >= lo):
        return table
    keep = pc.less(col, pa.scalar(hi, pa.timestamp("us", tz="UTC")))
    if lo is not None:
        keep = pc.and_(keep, pc.greater_equal(col, pa.scalar(lo, pa.timestamp("us", tz="UTC"))))
    else:
        keep = pc.or_kleene(keep, pc.is_null(col))
    return table.filter(pc.fill_null(keep, False))


class KlaviyoReader(TableReader):
    """Reads one Klaviyo table; keeps the pages fetched while planning for the first slice."""

    def __init__(self, source: "KlaviyoSource", spec: TableSpec, options: ReadOptions, events: ReadEvents) -> None:
        self.source, self.spec, self.options, self.events = source, spec, options, events
        self.info = spec.info
        self.stats = TableStats()
        self._prefetched: dict[str, Any] = {}
        self._windows: list[Window] = []

    def _client(self) -> KlaviyoClient:
        return self.source.client(self.options, self.stats)

    def plan(self, start: datetime | None, end: datetime, rows_per_slice: int) -> list[Window]:
        start = start if self.spec.cursor else None
        if self.spec.cursor and self.spec.parent is None:  # a child table is one slice (its parents are the work)
            self._windows = plan_slices(self._client, self.spec, start, end, rows_per_slice, self._prefetched)
        else:
            self._windows = [Window(start, end)]
        return self._windows

    def read(self, window: Window) -> Iterator[pa.Table]:
        spec, opts = self.spec, self.options
        n = self._windows.index(window) if window in self._windows else 0
        total = max(1, len(self._windows))

        def fraction(f: float) -> None:  # slices are about equal in size: progress of the whole table
            self.events.fraction((n + f) / total)

        lo = window.lo if spec.cursor else None
        if spec.parent is not None:
            tables = {**TABLES, **self.source.specs}
            pages = child_pages(self._client, spec, tables, lo, window.hi, max(1, opts.parallelism), fraction)
        else:
            pages = run_plan(self._client, Plan(spec, lo, window.hi, max(1, opts.parallelism), self._prefetched), fraction)
        buffer: list[pa.Table] = []
        rows = size = 0
        decoder = PageDecoder(spec)
        for page in pages:
            if page.typed:
                table = typed_to_arrow(decoder, page.records, page.consts, page.where)
            else:
                table = records_to_arrow(spec, page.records, page.consts, page.where)
            table = _in_window(table, spec, page.lo, page.hi)
            self.events.pages(1, table.num_rows)
            if table.num_rows:
                buffer.append(table)
                rows += table.num_rows
                size += table.nbytes
            if rows >= opts.batch_rows or size >= BATCH_BYTES:
                yield pa.concat_tables(buffer)
                buffer, rows, size = [], 0, 0
        if buffer:
            yield pa.concat_tables(buffer)


class KlaviyoSource(Source):
    """Klaviyo's REST API (JSON:API), revision pinned to ``REVISION`` unless the URI names another."""

    schemes = ("klaviyo",)
    default_schema = "klaviyo"

    def __init__(self, api_key: str, base_url: str = DEFAULT_BASE_URL, revision: str = REVISION,
                 tables: dict[str, TableSpec] | None = None) -> None:  # fmt: skip
        self.api_key, self.base_url, self.revision = api_key, base_url.rstrip("/"), revision
        register_secret(api_key)
        self.specs = tables if tables is not None else TABLES
        self.limiters: dict = {}  # one limiter per rate-limit bucket for the whole run

    @classmethod
    def from_uri(cls, uri: str) -> "KlaviyoSource":
        query = parse_qs(urlsplit(uri).query, keep_blank_values=True)
        unknown = sorted(set(query) - set(URI_PARAMS))
        if unknown:
            raise UsageError(f"--source-uri: unknown parameter '{unknown[0]}'; allowed: {', '.join(URI_PARAMS)}")
        key = (query.get("api_key") or [""])[0].strip()
        if not key:
            raise UsageError("--source-uri: klaviyo:// needs an api_key, e.g. klaviyo://?api_key=pk_...")
        base = (query.get("base_url") or [DEFAULT_BASE_URL])[0].rstrip("/")
        if not re.match(r"^https?://[^/\s]+", base):
            raise UsageError(f"--source-uri: base_url '{base}' is not an http(s) URL")
        revision = (query.get("revision") or [REVISION])[0]
        if not re.match(r"^\d{4}-\d{2}-\d{2}(\.[a-z]+)?$", revision):
            raise UsageError(f"--source-uri: revision '{revision}' is not of the form YYYY-MM-DD")
        return cls(key, base, revision)

    def tables(self) -> dict[str, TableInfo]:
        return {name: spec.info for name, spec in self.specs.items()}

    def preflight(self) -> None:
        """Fail fast, before writing anything, when the API host cannot be reached at all."""
        import socket

        parts = urlsplit(self.base_url)
        host, port = parts.hostname or "", parts.port or (443 if parts.scheme == "https" else 80)
        try:
            socket.create_connection((host, port), timeout=10).close()
        except OSError as exc:
            reason = exc.strerror or type(exc).__name__
            raise UsageError(f"--source-uri: cannot reach {host}:{port} ({reason}); check base_url and the network") from None

    def reader(self, table: str, options: ReadOptions, events: ReadEvents) -> KlaviyoReader:
        return KlaviyoReader(self, self.specs[table], options, events)

    def client(self, options: ReadOptions, stats: TableStats | None = None) -> KlaviyoClient:
        policy = RetryPolicy(max_retry_after=options.max_retry_after)
        return KlaviyoClient(self.api_key, self.base_url, self.revision, policy, connections=max(8, options.parallelism * 2),
                             limiters=self.limiters, stats=stats)  # fmt: skip
