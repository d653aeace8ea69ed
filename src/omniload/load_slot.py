"""A slot for dlt's load id in each Arrow batch, where dlt's schema of the table has that column.

dlt's extraction orders a batch's columns as its schema has them and then appends ``_dlt_load_id`` at the end
unless the batch has a column of that name, which it fills in place. Once a later slice adds columns (a property
first seen then, ``properties=columns``), the schema has the load id before them, the extracted files have it
after them, and dlt's normalize step reads and rewrites every file of every later slice to reorder it (measured:
1.4 s of CPU per 1M events). A batch that carries a NULL ``_dlt_load_id`` column is written in the schema's order
at once; dlt replaces the placeholder with the load id in the same step, so nothing else changes.
"""

from __future__ import annotations

import pyarrow as pa

LOAD_ID = "_dlt_load_id"


def with_load_id_slot(batch: pa.Table, pipeline, table: str) -> pa.Table:
    """``batch`` with a NULL ``_dlt_load_id`` column when dlt's schema of ``table`` has that column (new columns of
    the batch then follow it, as they follow it in the schema)."""
    if LOAD_ID in batch.schema.names or not pipeline.default_schema_name:
        return batch
    columns = list((pipeline.default_schema.tables.get(table) or {}).get("columns") or ())
    if LOAD_ID not in columns:  # a new table (or dlt adds no load id): dlt's files follow the batch's order
        return batch
    return batch.append_column(LOAD_ID, pa.nulls(batch.num_rows, pa.string()))
