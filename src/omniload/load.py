"""Load one table through dlt: read its cursor from the destination, plan checkpoint slices, run each slice.

Each slice is extracted, loaded and committed (rows and cursor together, in the destination) before the
next one starts. A run that finds nothing new (every fetched row is already in the destination with the same
cursor, or a keyless table's content is unchanged) loads nothing and leaves the destination as it was.
"""

from __future__ import annotations

import hashlib
import os
from datetime import datetime
from typing import Any, Iterator

import pyarrow as pa

from .dates import iso, parse_date

# DuckDB would take 80% of RAM by default; a bounded buffer pool (it spills to disk) keeps a run's memory flat.
DUCKDB_CONFIG = {"memory_limit": os.environ.get("OMNILOAD_DUCKDB_MEMORY_LIMIT", "128MB"), "preserve_insertion_order": False}


_NO_TABLE = object()


def _read_duckdb(dest_path: str, sql: str, params: list | None = None, conn=None) -> Any:
    """Rows of one read-only query on the DuckDB destination; ``_NO_TABLE`` when a table it names does not
    exist yet, None when the file cannot be read (callers then take the safe path: load)."""
    import duckdb

    try:
        con = conn if conn is not None else duckdb.connect(dest_path, read_only=True)
    except duckdb.Error:
        return None
    try:
        return con.execute(sql, params or []).fetchall()
    except duckdb.CatalogException:
        return _NO_TABLE
    except duckdb.Error:
        return None
    finally:
        if conn is None:
            con.close()


def _resource_state(state: dict[str, Any], table: str) -> dict[str, Any]:
    """The resource state of ``table`` inside a dlt pipeline state."""
    for source in (state.get("sources") or {}).values():
        found = (source.get("resources") or {}).get(table)
        if found:
            return dict(found)
    return {}


def _saved_state(dest_path: str, conn, schema: str, pipeline_name: str, table: str) -> dict[str, Any]:
    """What a previous run committed in the destination for ``table`` (cursor, fingerprint), if anything.

    Read with one query, as dlt itself restores state (newest state row of a completed load), so that a table
    with nothing new never has to start a dlt pipeline at all."""
    query = (f'select s.state from "{schema}"."_dlt_pipeline_state" s join "{schema}"."_dlt_loads" l '
             "on l.load_id = s._dlt_load_id where s.pipeline_name = ? and l.status = 0 "
             "order by l.load_id desc limit 1")  # fmt: skip
    rows = _read_duckdb(dest_path, query, [pipeline_name], conn)
    if not isinstance(rows, list) or not rows:
        return {}
    return _resource_state(_decompress_state(rows[0][0]), table)


def _decompress_state(text: str) -> dict[str, Any]:
    """dlt's stored state: zlib-compressed JSON in base64 (our resource values are plain strings)."""
    import base64
    import binascii
    import zlib

    import orjson

    try:
        return orjson.loads(zlib.decompress(base64.b64decode(text, validate=True)))
    except (binascii.Error, zlib.error):
        return orjson.loads(text)


def _fingerprint(batches: list[pa.Table]) -> str:
    digest = hashlib.sha256()
    for batch in batches:
        sink = pa.BufferOutputStream()
        with pa.ipc.new_stream(sink, batch.schema) as writer:
            writer.write_table(batch)
        digest.update(sink.getvalue().to_pybytes())
    return digest.hexdigest()


def _already_loaded(dest_path: str, schema: str, table: str, cursor: str, batches: list[pa.Table]) -> bool:
    """True when every row is already in the destination with the same cursor value (nothing to load)."""
    rows = pa.concat_tables(batches) if batches else None
    if rows is None or rows.num_rows == 0:
        return True
    wanted = dict(zip(rows.column("id").to_pylist(), rows.column(cursor).to_pylist()))
    found = _read_duckdb(dest_path, f'select id, "{cursor}" from "{schema}"."{table}" where id in (select unnest(?))',
                         [list(wanted)])  # fmt: skip
    if not isinstance(found, list):
        return False
    return len(found) == len(wanted) and all(wanted[i] == c for i, c in found)


def load_table(config, dest, memory_conn, target, opts, end: datetime, workdir: str, progress, stats: dict) -> None:
    import pyarrow.compute as pc

    from .sources.klaviyo.extract import plan_slices
    from .sources.klaviyo.source import column_hints, extract_table
    from .sources.klaviyo.tables import TABLES

    spec = TABLES[target.source]
    disposition = opts.incremental_strategy or spec.strategy
    if disposition == "delete+insert":
        disposition = "merge"
    pipeline_name = f"omniload__{target.schema}__{target.table}"
    if dest.kind == "filesystem" and disposition == "merge":
        disposition = "append"  # files cannot be merged in place: every version is kept (see destinations.py)
    pipeline = None
    if opts.full_refresh:
        saved: dict[str, Any] = {}
    elif dest.is_duckdb:
        saved = _saved_state(dest.path, memory_conn, target.schema, pipeline_name, target.table)
    else:
        pipeline = _pipeline(dest, memory_conn, pipeline_name, target.schema, workdir)
        saved = _synced_state(pipeline, target.table)
    last = saved.get("last_value") if spec.cursor else None
    start = opts.interval_start or (parse_date(last, "state") if last else None)
    client_factory = lambda: config.client(connections=max(8, opts.extract_parallelism * 2))  # noqa: E731
    slices, prefetched = [(start, end)], {}
    if spec.cursor:
        slices, prefetched = plan_slices(client_factory, spec, start, end, opts.checkpoint_rows, stats)

    def batches_for(n: int, lo: datetime | None, hi: datetime) -> Iterator[pa.Table]:
        def fraction(f: float) -> None:  # slices are about equal in size: progress of the whole table
            progress.fraction(target.source, (n + f) / len(slices))

        return extract_table(config, spec, lo, hi, opts.extract_parallelism,
                             lambda p, r: progress.page(target.source, p, r), opts.batch_rows, stats, prefetched,
                             fraction)  # fmt: skip

    def resource_for(lo: datetime | None, hi: datetime, head: list[pa.Table], rest: Iterator[pa.Table], fingerprint=None,
                     how: str = disposition):  # fmt: skip
        import dlt

        @dlt.resource(name=target.table, write_disposition=how, primary_key=spec.primary_key,
                      columns=column_hints(spec))  # fmt: skip
        def resource():
            state = dlt.current.resource_state()
            previous = None if opts.full_refresh else state.get("last_value")
            newest = None
            for batches in (head, rest):
                for batch in batches:
                    if spec.cursor and batch.num_rows:
                        m = pc.max(batch.column(spec.cursor)).as_py()
                        if m is not None and (newest is None or m > newest):
                            newest = m
                    yield batch
            if newest is not None:  # the newest value loaded, never past this slice's end
                newest = min(newest, hi)
                if not previous or newest > parse_date(previous, "state"):
                    state["last_value"] = iso(newest)
            if fingerprint:
                state["fingerprint"] = fingerprint

        return resource

    for n, (lo, hi) in enumerate(slices):
        refresh = "drop_resources" if opts.full_refresh and n == 0 else None
        rest = batches_for(n, lo, hi)
        head: list[pa.Table] = []
        fingerprint = None
        if len(slices) == 1 and not opts.full_refresh and memory_conn is None:
            # Peek: a small result may be nothing new, and then there is nothing to load or commit.
            head = [b for b in (next(rest, None), next(rest, None)) if b is not None]
            if len(head) < 2:
                if spec.cursor and dest.is_duckdb and _already_loaded(dest.path, target.schema, target.table, spec.cursor, head):
                    progress.nothing_new(target.source)
                    return
                if not spec.cursor:
                    fingerprint = _fingerprint(head)
                    if fingerprint == saved.get("fingerprint"):
                        progress.nothing_new(target.source)
                        return
        if pipeline is None:
            pipeline = _pipeline(dest, memory_conn, pipeline_name, target.schema, workdir)
        how = disposition
        if how == "replace" and n > 0:
            how = "append"  # the first slice replaced the table; the others add to it
        if how == "merge" and spec.immutable and dest.is_duckdb and memory_conn is None and not refresh:
            # Immutable records (events) newer than everything loaded cannot match a loaded row: append them.
            newest = _newest_loaded(dest.path, target.schema, target.table, spec.cursor)
            if newest is _NO_TABLE or (lo is not None and newest is not None and newest < lo):
                how = "append"
        file_format = dest.file_format or ("parquet" if dest.is_duckdb else None)
        pipeline.run(resource_for(lo, hi, head, rest, fingerprint, how)(), refresh=refresh, loader_file_format=file_format)


def _newest_loaded(dest_path: str, schema: str, table: str, cursor: str) -> Any:
    """The largest cursor value in the destination table; ``_NO_TABLE`` when the table does not exist yet."""
    rows = _read_duckdb(dest_path, f'select max("{cursor}") from "{schema}"."{table}"')
    return rows[0][0] if isinstance(rows, list) else rows


def _pipeline(dest, memory_conn, name: str, schema: str, workdir: str):
    import dlt

    if dest.is_duckdb:
        from dlt.destinations.impl.duckdb.configuration import DuckDbCredentials

        creds = memory_conn if memory_conn is not None else DuckDbCredentials(dest.path, global_config=DUCKDB_CONFIG)
        destination = dest.factory(creds)
    else:
        destination = dest.factory()
    return dlt.pipeline(pipeline_name=name, destination=destination, dataset_name=schema, pipelines_dir=workdir,
                        progress=None)  # fmt: skip


def _synced_state(pipeline, table: str) -> dict[str, Any]:
    """The table's saved resource state, restored by dlt from any destination."""
    pipeline.sync_destination()
    return _resource_state(pipeline.state, table)
