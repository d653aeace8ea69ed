"""Klaviyo as a plain ``dlt`` source, for dlt users' own pipelines::

    import dlt
    from omniload.sources.klaviyo import klaviyo_source

    pipeline = dlt.pipeline("klaviyo", destination="duckdb", dataset_name="klaviyo")
    pipeline.run(klaviyo_source(api_key="pk_...", tables=["events", "profiles"]))

Each table is one resource yielding Arrow tables in its declared schema, with its primary key, write
disposition and column types (a property column another pipeline made in the destination keeps its type, read back
before the table is planned). Its reader is driven through the same steps as the CLI's (:mod:`omniload.reading`):
the resource state (which dlt stores in the destination) is restored, the slices are planned from the saved
cursor less the table's lookback (``start`` bounds the first run), each slice is read and its cursor and the
reader's own state saved. Every reader of the run is opened before any reads, so an include table loaded with
its parent (event attributions with events) rides along with the parent's requests as in the CLI (ride.py): its
resource waits, yielding nothing, until the parent's has read everything.

The source is configured as the CLI's is: ``api_key``, ``base_url``, ``revision`` and ``options`` (the source
URI's other options by name, e.g. ``{"report_budget": 50, "metric_ids": ["AbC123"], "properties": "columns"}``)
make one :class:`~.options.KlaviyoConfig` through the same checks (options.py); ``layout`` is the CLI's alone
(the views are made by omniload's runs), so it is one of the unknown options here, ignored with a warning.
"""

from __future__ import annotations

import warnings
from collections.abc import Iterable, Iterator, Mapping
from datetime import datetime

import dlt
import pyarrow as pa

from ... import reading
from ...types import TYPES, column_hints
from ..base import CHECKPOINT_ROWS, ReadEvents, ReadOptions, TableInfo, TableReader
from .client import DEFAULT_BASE_URL, REVISION
from .options import URI_PARAMS, parse
from .source import KlaviyoSource
from .tables.included import RIDERS


def _stored(table: str) -> dict[str, str]:
    """The columns ``table`` has in the pipeline's destination now and their types, as dlt reads them back (another
    account's pipeline may have added some: properties=columns keeps their types); {} when it cannot tell."""
    try:
        with dlt.current.pipeline().destination_client() as client:
            _, columns = client.get_storage_table(table)
    except Exception:  # noqa: BLE001 - no destination yet, or not a SQL one: the reader goes by its saved state
        return {}
    return {name: c["data_type"] for name, c in columns.items() if c.get("data_type") in TYPES}


def _rows(
    source: KlaviyoSource, reader: TableReader, start: datetime | None, finished: set[str]
) -> Iterator[pa.Table | None]:
    info = reader.info
    try:
        parent = next((source.specs[p].info.dest_name for p, r in RIDERS.items() if r == info.name), None)
        if parent is not None and parent in dlt.current.source().selected_resources:
            while parent not in finished:  # the parent's reader fills this one's ride: let dlt read it first
                yield None
        if source.run.server.date is None:
            source.preflight([info.name])  # learn the server's clock: filters may not name a time after it
        source.choose([info.name])  # metrics=: resolved for events too when another table preflighted
        reader.loaded_columns(_stored(info.dest_name))
        state = dlt.current.resource_state()
        saved = dict(state)
        lo = reading.resume_point(saved, info.lookback) if info.cursor else None
        if lo is not None:
            reader.resuming(start)
        newest = None  # across the parts of a slice: the cursor is saved with the last part only
        for window in reading.with_parts(reader, reading.plan(reader, saved, lo if lo is not None else start, None,
                                                              CHECKPOINT_ROWS)):  # fmt: skip
            for batch in reader.read(window):
                newest = reading.newest(batch, info.cursor, newest)
                yield batch
            if reader.following(window) is None:
                reading.advance(state, newest, window, state.get("last_value"))
                newest = None
            state.update(reader.state_update())
    finally:
        finished.add(info.dest_name)


@dlt.source(name="klaviyo")
def klaviyo_source(api_key: str = dlt.secrets.value, tables: Iterable[str] | None = None,
                   base_url: str = DEFAULT_BASE_URL, revision: str = REVISION, start: datetime | None = None,
                   parallelism: int = ReadOptions.parallelism, account_column: bool = False,
                   options: Mapping[str, object] | None = None):  # fmt: skip
    """One Arrow-yielding resource per Klaviyo table (all tables unless ``tables`` names some). ``account_column``:
    every row carries the account's id (``account_id``, first in every primary key; a table loaded whole each run
    replaces only its account's rows), so several accounts' pipelines can load the same tables (the URI's
    ``account_column=true``). ``options``: the source URI's other options (see the module docstring)."""
    params = {**(options or {}), "api_key": api_key, "base_url": base_url, "revision": revision}
    if account_column:
        params["account_column"] = "true"
    config = parse(params, "klaviyo_source()", tuple(p for p in URI_PARAMS if p != "layout"))
    for note in config.notes:
        warnings.warn(note, stacklevel=2)
    source = KlaviyoSource(config)
    infos = source.tables()
    names = list(tables) if tables is not None else [n for n, i in infos.items() if i.in_all]
    unknown = [n for n in names if n not in infos]
    if unknown:
        raise ValueError(f"unknown Klaviyo tables {unknown}; known: {', '.join(infos)}")
    options = ReadOptions(parallelism=parallelism)
    readers = {name: source.reader(name, options, ReadEvents()) for name in names}  # all opened before any plans
    finished: set[str] = set()  # the resources whose reads ended
    for name in names:
        info: TableInfo = infos[name]
        merge = info.strategy == "merge"
        hints = column_hints(info.columns, info.primary_key, info.cursor, merge)
        write = info.strategy
        if (
            config.account_column and write == "replace"
        ):  # its account's rows only: deleted, then inserted (delete-insert)
            write = "merge"
            hints["account_id"]["merge_key"] = True
        resource = dlt.resource(_rows, name=info.dest_name, write_disposition=write,
                                primary_key=list(info.primary_key), columns=hints)  # fmt: skip
        yield resource(source, readers[name], start, finished)
