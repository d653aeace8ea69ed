"""Klaviyo as a plain ``dlt`` source, for dlt users' own pipelines::

    import dlt
    from omniload.sources.klaviyo import klaviyo_source

    pipeline = dlt.pipeline("klaviyo", destination="duckdb", dataset_name="klaviyo")
    pipeline.run(klaviyo_source(api_key="pk_...", tables=["events", "profiles"]))

Each table is one resource yielding Arrow tables in its declared schema, with its primary key, write
disposition and column types. Incremental tables keep their cursor in the resource state (which dlt stores in
the destination), so the next run reads only what is newer; ``start`` bounds the first run.
"""

from __future__ import annotations

from datetime import datetime
from typing import Iterable, Iterator

import dlt
import pyarrow as pa

from ...dates import iso, parse_timestamp
from ...types import column_hints
from ..base import ReadEvents, ReadOptions, TableInfo, Window
from .client import DEFAULT_BASE_URL, REVISION
from .source import KlaviyoSource


def _rows(source: KlaviyoSource, info: TableInfo, start: datetime | None, options: ReadOptions) -> Iterator[pa.Table]:
    import pyarrow.compute as pc

    state = dlt.current.resource_state()
    saved = state.get("last_value") if info.cursor else None
    lo = parse_timestamp(saved) if saved else start
    if source.server.date is None:
        source.preflight()  # learn the server's clock: filters may not name a time after it
    reader = source.reader(info.name, options, ReadEvents())
    end = source.cap_end(None, ReadEvents())
    newest = None
    for batch in reader.read(Window(lo, end)):
        if info.cursor and batch.num_rows:
            m = pc.max(batch.column(info.cursor)).as_py()
            newest = m if newest is None or (m is not None and m > newest) else newest
        yield batch
    if newest is not None:
        state["last_value"] = iso(min(newest, end))


@dlt.source(name="klaviyo")
def klaviyo_source(api_key: str = dlt.secrets.value, tables: Iterable[str] | None = None,
                   base_url: str = DEFAULT_BASE_URL, revision: str = REVISION, start: datetime | None = None,
                   parallelism: int = 8):  # fmt: skip
    """One Arrow-yielding resource per Klaviyo table (all tables unless ``tables`` names some)."""
    source = KlaviyoSource(api_key, base_url, revision)
    infos = source.tables()
    names = list(tables) if tables is not None else [n for n, i in infos.items() if i.in_all]
    unknown = [n for n in names if n not in infos]
    if unknown:
        raise ValueError(f"unknown Klaviyo tables {unknown}; known: {', '.join(infos)}")
    options = ReadOptions(parallelism=parallelism)
    for name in names:
        info = infos[name]
        merge = info.strategy == "merge"
        resource = dlt.resource(_rows, name=info.dest_name, write_disposition=info.strategy,
                                primary_key=list(info.primary_key),
                                columns=column_hints(info.columns, info.primary_key, info.cursor, merge))  # fmt: skip
        yield resource(source, info, start, options)
