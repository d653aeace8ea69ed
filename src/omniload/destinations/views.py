"""Views over loaded tables, for the SQL destinations reached through their own connection (DuckDB, PostgreSQL):
the columns a table holds now, in its order, and ``create or replace view`` in one transaction. PostgreSQL keeps
such a view only when its columns stay as they were, new ones added at the end (which a view listing a table's
columns in the table's order does as the table gains columns), and refuses to drop a view other views read (such
as the dbt models built on it); otherwise it is dropped and created again."""

from __future__ import annotations

from ..errors import DestinationFailed
from .base import Views
from .deletes import q


class SqlViews(Views):
    def table_columns(self, schema: str, table: str) -> dict[str, None]:
        with self._transaction() as (_, cur):  # type: ignore[attr-defined]
            return self._ordered_columns(cur, schema, table)  # type: ignore[attr-defined]

    def replace_view(self, schema: str, name: str, select: str) -> None:
        view = f"{q(schema)}.{q(name)}"
        try:
            with self._transaction() as (_, cur):  # type: ignore[attr-defined]
                cur.execute(f"create or replace view {view} as {select}")
            return
        except Exception:  # noqa: BLE001 - PostgreSQL: its columns changed otherwise than at the end
            pass
        try:
            with self._transaction() as (_, cur):  # type: ignore[attr-defined]
                cur.execute(f"drop view if exists {view}")
                cur.execute(f"create view {view} as {select}")
        except Exception as exc:  # noqa: BLE001 - one line: which view, why, what to do
            reason = (str(exc).strip().splitlines() or [""])[0][:200]
            raise DestinationFailed(f"view {schema}.{name} in {self.display} cannot be replaced ({type(exc).__name__}: "  # type: ignore[attr-defined]
                                    f"{reason}): its columns changed and other views read it (such as dbt models built "
                                    "on it); drop those, run again, then build them again") from None  # fmt: skip
