"""A slot for dlt's load id in each Arrow batch, where dlt's schema of the table has that column.

dlt's extraction orders a batch's columns as its schema has them and then appends ``_dlt_load_id`` at the end
unless the batch has a column of that name, which it fills in place. Once a later slice adds columns (a property
first seen then, ``properties=columns``), the schema has the load id before them, the extracted files have it
after them, and dlt's normalize step reads and rewrites every file of every later slice to reorder it (measured:
1.4 s of CPU per 1M events). A batch that carries a NULL ``_dlt_load_id`` column is written in the schema's order
at once; dlt replaces the placeholder with the load id in the same step, so nothing else changes.

Whether the schema has the column is asked of dlt once per slice once it has (columns are never taken out of a
schema): dlt reads and validates its stored schema again on every ask (measured: 0.3 µs per row of CPU, asked
for each 50,000-row batch).
"""

from __future__ import annotations

import pyarrow as pa

LOAD_ID = "_dlt_load_id"


class LoadIdSlot:
    """Adds the slot to the batches of one slice of ``table`` (a new one for each slice: dlt's schema of the
    table may have gained the column since)."""

    def __init__(self, pipeline, table: str) -> None:
        self.pipeline, self.table = pipeline, table
        self._has = False  # dlt's schema of the table has the column (once it has, it keeps it)

    def __call__(self, batch: pa.Table) -> pa.Table:
        """``batch`` with a NULL ``_dlt_load_id`` column when dlt's schema of the table has that column (new columns
        of the batch then follow it, as they follow it in the schema)."""
        if LOAD_ID in batch.schema.names:
            return batch
        if not self._has:
            self._has = _in_schema(self.pipeline, self.table)
        if not self._has:  # a new table (or dlt adds no load id): dlt's files follow the batch's order
            return batch
        return batch.append_column(LOAD_ID, pa.nulls(batch.num_rows, pa.string()))


def _in_schema(pipeline, table: str) -> bool:
    if not pipeline.default_schema_name:
        return False
    return LOAD_ID in ((pipeline.default_schema.tables.get(table) or {}).get("columns") or ())
