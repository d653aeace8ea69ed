"""Filling columns of rows already loaded, in SQL (DuckDB, PostgreSQL): a column a source computes from a stored one
(Klaviyo's well-known event property columns, from ``event_properties``) that is new since a table's last load is
added, then set from the values the source computed on the stored rows (load.py reads them back in batches and has
the reader derive them): in one transaction, each batch is loaded into a temporary table the destination's own way
(``_load_keys``, as deletes.py does; the database spills it, so memory stays bounded), then one ``UPDATE ... FROM``
on the key sets every row (one scan of the table, not one per batch). Setting a row twice gives the same values, so a
fill cut short is simply done again by the next run (the table's saved columns change only with the load after it). Files, Delta and Iceberg have no UPDATE here: their tables are read again instead."""

from __future__ import annotations

from collections.abc import Iterator
from typing import ClassVar

import pyarrow as pa

from .deletes import q

FILL_TABLE = "_omniload_fill"


class SqlFill:
    fills_columns: ClassVar[bool] = True
    column_types: ClassVar[dict[str, str]] = {}  # omniload type -> the column type dlt gives it here

    def add_columns(self, schema: str, table: str, types: dict[str, str]) -> None:
        with self._transaction() as (_, cur):  # type: ignore[attr-defined]
            have = self._columns(cur, schema, table)  # type: ignore[attr-defined]
            for column, typ in types.items():
                if column not in have:
                    cur.execute(f"alter table {q(schema)}.{q(table)} add column {q(column)} {self.column_types[typ]}")

    def fill_columns(self, schema: str, table: str, key: tuple[str, ...], batches: Iterator[pa.Table]) -> None:
        with self._transaction() as (con, cur):  # type: ignore[attr-defined]
            cur.execute(f"select column_name, data_type from information_schema.columns where table_schema = "
                        f"{self.param} and table_name = {self.param}", [schema, table])  # type: ignore[attr-defined]  # fmt: skip
            types = dict(cur.fetchall())
            columns: list[str] = []
            for n, rows in enumerate(batches):
                if n == 0:
                    self._load_keys(con, FILL_TABLE, rows)  # type: ignore[attr-defined]
                    columns = [c for c in rows.column_names if c not in key]
                    continue
                self._load_keys(con, f"{FILL_TABLE}_next", rows)  # type: ignore[attr-defined]
                cur.execute(f"insert into {FILL_TABLE} select * from {FILL_TABLE}_next")
                cur.execute(f"drop table {FILL_TABLE}_next")
            if not columns:
                return
            t = f"{q(schema)}.{q(table)}"
            sets = ", ".join(f"{q(c)} = cast(s.{q(c)} as {types[c]})" for c in columns)
            match = " and ".join(f"{t}.{q(k)} = s.{q(k)}" for k in key)
            cur.execute(f"update {t} set {sets} from {FILL_TABLE} s where {match}")
            cur.execute(f"drop table {FILL_TABLE}")
