"""Views over loaded tables, for the SQL destinations reached through their own connection (DuckDB, PostgreSQL):
the columns a table holds now, and ``create or replace view`` in one transaction (dropped first when its columns
changed, which ``create or replace`` refuses on PostgreSQL)."""

from __future__ import annotations

from .base import Views
from .deletes import q


class SqlViews(Views):
    def table_columns(self, schema: str, table: str) -> set[str]:
        with self._transaction() as (_, cur):  # type: ignore[attr-defined]
            return self._columns(cur, schema, table)  # type: ignore[attr-defined]

    def replace_view(self, schema: str, name: str, select: str) -> None:
        with self._transaction() as (_, cur):  # type: ignore[attr-defined]
            cur.execute(f"drop view if exists {q(schema)}.{q(name)}")
            cur.execute(f"create view {q(schema)}.{q(name)} as {select}")
