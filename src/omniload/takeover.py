"""Take over a table another dlt pipeline made (ingestr's, say: issue #27) on the first run into it.

A destination table omniload has no saved state for, that dlt made (it has ``_dlt_load_id``), holds rows in
another tool's column layout, with dlt's own columns as that tool's settings made them (``_dlt_id NOT NULL``,
which omniload's Arrow loads do not fill). Its rows are read back in batches, converted by the source
(``TableReader.adopt``: the source knows the other tool's layout), spooled to a Parquet file, the old table is
dropped and the rows are loaded as the table's first slice, in omniload's layout, with the newest cursor value
they hold as the saved cursor: the run then goes on incrementally from there (less the lookback), reading
nothing older. A table without a cursor is read whole on every run anyway: its old table is dropped and the run
replaces it. Rows the source cannot convert (a column they do not hold), or ``--columns``/``--mask`` (the rows
hold what the other tool made of them): the old table is dropped and every record read again, with a note.
A scoped table (one account's rows, ``TableInfo.scope``) is never taken over: one that holds the scope's columns
is the source's own, loaded by its other instances (other accounts); one without them was refused before.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from .dates import iso
from .sources.base import CannotAdopt, Window

BATCH_ROWS = 10_000


def take_over(load: Any) -> bool:
    """Take over the destination table of ``load`` (a :class:`~omniload.load.TableLoad`) when another dlt pipeline
    made it; True when rows were taken over (the saved state is then what their load committed)."""
    dest, schema, table, info = load.dest.takeover, load.target.schema, load.target.table, load.info
    if dest is None:  # the destination cannot read back or drop another tool's tables: nothing is taken over
        return False
    with load.dest_lock:
        columns = dest.dlt_table(schema, table)
    if columns is None or info.scope:
        return False  # no table, or a scoped one: load.check_origin refused one without the scope's columns
    name = f"table '{info.name}': {schema}.{table} was made by another dlt pipeline (ingestr?)"
    why = None
    if not info.cursor:
        why = "this table is read whole on every run"
    elif (t := load.settings.transform) is not None and (t.columns or t.renames or t.masks):
        why = "with --columns or --mask its rows cannot be taken as they are"
    spool = os.path.join(load.workdir, f"takeover-{schema}-{table}.parquet")
    newest, rows = None, 0
    if why is None:
        try:
            newest, rows = _spool(load, [c for c in columns if not c.startswith("_dlt_")], spool)
        except CannotAdopt as exc:
            why = f"its rows cannot be converted: {exc}"
    with load.dest_lock:
        dest.drop_table(schema, table)
    if why is not None:
        load.on_note(f"{name}: {why}; it is replaced by a full read")
        return False
    if rows:
        load.loading_as_is = True  # converted rows: no transform, no row hash
        try:
            window = Window(None, newest)
            load.run_dlt(window, [], _batches(spool), None, "replace", None)
        finally:
            load.loading_as_is = False
            os.remove(spool)
    load.forget_saved_state()
    load.on_note(f"{name}: took over its {rows:,} rows; reading on from its newest {info.cursor}"
                 f" {iso(newest) if newest else '(none)'}, less the lookback")  # fmt: skip
    return bool(rows)


def _spool(load: Any, columns: list[str], path: str) -> tuple[Any, int]:
    """The table's rows, converted, into a Parquet file: the newest cursor value and the number of rows."""
    dest, cursor = load.dest.takeover, load.info.cursor
    newest, rows, writer = None, 0, None
    try:
        with load.dest_lock:
            for batch in dest.read_table(load.target.schema, load.target.table, columns, BATCH_ROWS):
                converted = load.reader.adopt(batch)
                if writer is None:
                    writer = pq.ParquetWriter(path, converted.schema)
                writer.write_table(converted)
                rows += converted.num_rows
                top = pc.max(converted.column(cursor)).as_py()
                if top is not None and (newest is None or top > newest):
                    newest = top
    finally:
        if writer is not None:
            writer.close()
    return newest, rows


def _batches(path: str) -> Iterator[pa.Table]:
    for batch in pq.ParquetFile(path).iter_batches(BATCH_ROWS):
        yield pa.Table.from_batches([batch])
