"""Filling columns of rows already loaded, in SQL (DuckDB, PostgreSQL): a column a source computes from a stored one
(Klaviyo's well-known event property columns, from ``event_properties``) that is new since a table's last load is
added, then set from the values the source computed on the stored rows (load.py reads them back in batches and has
the reader derive them): ``COMMIT_ROWS`` rows at a time, in one transaction each, loaded into a temporary table the
destination's own way (``_load_keys``, as deletes.py does), then one ``UPDATE ... FROM`` on the key. Setting a row
twice gives the same values, so a fill cut short is simply done again by the next run (the table's saved columns
change only with the load after it). Files, Delta and Iceberg have no UPDATE here: their tables are read again instead.
A table loaded with ``properties=columns`` has had the well-known columns since its first load (its JSON column keeps
only what is in no column, lift.py), so none is ever filled from a JSON column that lacks them."""

from __future__ import annotations

from collections.abc import Iterator
from typing import ClassVar

import pyarrow as pa

from .base import Fill
from .deletes import q

FILL_TABLE = "_omniload_fill"
# rows set per transaction: an UPDATE holds its changes until it commits, and DuckDB's buffer pool (128 MB by default,
# duckdb.py) then spills: 1M events in one UPDATE took 54 s, in transactions of 100,000 rows 7 s
COMMIT_ROWS = 100_000


class SqlFill(Fill):
    column_types: ClassVar[dict[str, str]] = {}  # omniload type -> the column type dlt gives it here

    def add_columns(self, schema: str, table: str, types: dict[str, str]) -> None:
        with self._transaction() as (_, cur):  # type: ignore[attr-defined]
            have = self._columns(cur, schema, table)  # type: ignore[attr-defined]
            for column, typ in types.items():
                if column not in have:
                    cur.execute(f"alter table {q(schema)}.{q(table)} add column {q(column)} {self.column_types[typ]}")

    def fill_columns(self, schema: str, table: str, key: tuple[str, ...], batches: Iterator[pa.Table]) -> None:
        pending: list[pa.Table] = []
        rows = 0
        for batch in batches:
            pending.append(batch)
            rows += batch.num_rows
            if rows >= COMMIT_ROWS:
                self._fill(schema, table, key, pa.concat_tables(pending))
                pending, rows = [], 0
        if pending:
            self._fill(schema, table, key, pa.concat_tables(pending))

    def _fill(self, schema: str, table: str, key: tuple[str, ...], rows: pa.Table) -> None:
        """One transaction: ``rows`` into a temporary table, then one ``UPDATE ... FROM`` on the key."""
        with self._transaction() as (con, cur):  # type: ignore[attr-defined]
            cur.execute(f"select column_name, data_type from information_schema.columns where table_schema = "
                        f"{self.param} and table_name = {self.param}", [schema, table])  # type: ignore[attr-defined]  # fmt: skip
            types = dict(cur.fetchall())
            self._load_keys(con, FILL_TABLE, rows)  # type: ignore[attr-defined]
            t = f"{q(schema)}.{q(table)}"
            sets = ", ".join(f"{q(c)} = cast(s.{q(c)} as {types[c]})" for c in rows.column_names if c not in key)
            match = " and ".join(f"{t}.{q(k)} = s.{q(k)}" for k in key)
            cur.execute(f"update {t} set {sets} from {FILL_TABLE} s where {match}")
            cur.execute(f"drop table {FILL_TABLE}")
