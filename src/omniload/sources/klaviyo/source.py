"""The Klaviyo source for dlt: one resource per table spec, yielding Arrow batches and keeping its cursor.

The resource reads its incremental cursor from dlt's resource state (which dlt stores in the destination),
extracts ``[start, end)`` through the generic extractor, drops rows outside each page's window on the client,
and yields Arrow tables of ``batch_rows`` rows (or ``BATCH_BYTES``, for wide rows). The cursor it saves is the newest value loaded,
never later than the run's end, so a record stamped in the future cannot move it past unloaded data.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Callable, Iterator

import pyarrow as pa
import pyarrow.compute as pc

from .client import KlaviyoClient, RetryPolicy
from .convert import records_to_arrow, typed_to_arrow
from .decode import PageDecoder
from .extract import Plan, run_plan
from .tables import BOOL, FLOAT, INT, JSON, TS, TableSpec

DLT_TYPES = {"text": "text", INT: "bigint", FLOAT: "double", BOOL: "bool", TS: "timestamp", JSON: "json"}
BATCH_BYTES = 24 * 2**20  # a batch is handed to dlt at this size too: wide rows (profiles) must not pile up


@dataclass
class KlaviyoConfig:
    api_key: str
    base_url: str
    revision: str
    policy: RetryPolicy
    limiters: dict = field(default_factory=dict)  # one limiter per rate-limit bucket for the whole run

    def client(self, connections: int = 32) -> KlaviyoClient:
        return KlaviyoClient(self.api_key, self.base_url, self.revision, self.policy, connections=connections,
                             limiters=self.limiters)  # fmt: skip


def column_hints(spec: TableSpec) -> dict[str, dict[str, Any]]:
    hints: dict[str, dict[str, Any]] = {}
    for col, typ in spec.all_columns.items():
        hint: dict[str, Any] = {"name": col, "data_type": DLT_TYPES[typ], "nullable": col != "id"}
        if typ == TS:
            hint["timezone"] = True
            hint["precision"] = 6
        if col == spec.cursor and spec.strategy == "merge":
            hint["dedup_sort"] = "desc"  # two versions of one record in a load: keep the newest
        hints[col] = hint
    return hints


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


def extract_table(config: KlaviyoConfig, spec: TableSpec, start: datetime | None, end: datetime, parallelism: int,
                  on_progress: Callable[[int, int], None], batch_rows: int = 50_000,
                  stats: dict[str, int] | None = None, prefetched: dict | None = None,
                  on_fraction: Callable[[float], None] | None = None) -> Iterator[pa.Table]:  # fmt: skip
    """Arrow batches of ``spec``'s records with cursor in ``[start, end)`` (all records for replace tables)."""
    plan = Plan(spec, start if spec.cursor else None, end, max(1, parallelism), prefetched)
    buffer: list[pa.Table] = []
    rows = size = 0
    decoder = PageDecoder(spec)
    stats = {} if stats is None else stats
    for page in run_plan(lambda: config.client(connections=max(8, parallelism * 2)), plan, stats, on_fraction):
        if page.typed:
            table = typed_to_arrow(decoder, page.records, page.consts, page.where)
        else:
            table = records_to_arrow(spec, page.records, page.consts, page.where)
        table = _in_window(table, spec, page.lo, page.hi)
        on_progress(1, table.num_rows)
        if table.num_rows:
            buffer.append(table)
            rows += table.num_rows
            size += table.nbytes
        if rows >= batch_rows or size >= BATCH_BYTES:
            yield pa.concat_tables(buffer)
            buffer, rows, size = [], 0, 0
    if buffer:
        yield pa.concat_tables(buffer)
