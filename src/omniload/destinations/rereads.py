"""The parents whose dependent rows are to be read again, kept in a SQL destination (DuckDB, PostgreSQL): a
parent that was deleted and came back (a restored profile) has rows the source hid while it was deleted and
served again afterwards with their old cursor values, older than any lookback (its events). The reconcile that
finds it back keeps its key here, per dependent table, in ``_omniload_reread``; the dependent table's next load
reads those parents' rows (``TableReader.reread``), commits them, then forgets them. Kept in the destination,
so a kill between the two loses nothing (the rows are read again: a merge keeps one row per record)."""

from __future__ import annotations

from .base import Scope, scope_label

REREAD = "_omniload_reread"


def q(name: str) -> str:
    """A quoted SQL identifier (deletes.py's too)."""
    return '"' + name.replace('"', '""') + '"'


class SqlRereads:
    """For :class:`deletes.SqlDeletes`: ``_omniload_reread`` (table_name, parent_column, parent_key)."""

    keeps_rereads = True

    def add_rereads(self, schema: str, table: str, column: str, parents: list[str], scope: Scope = ()) -> None:
        if not parents:
            return
        p, name = self.param, scope_label(table, scope)
        with self._transaction() as (_, cur):
            cur.execute(f"create table if not exists {q(schema)}.{q(REREAD)} "
                        "(table_name text, parent_column text, parent_key text)")  # fmt: skip
            held = set(self._held_rereads(cur, schema, name, column))
            for key in sorted(set(parents) - held):
                cur.execute(f"insert into {q(schema)}.{q(REREAD)} values ({p}, {p}, {p})", [name, column, key])

    def rereads(self, schema: str, table: str, column: str, scope: Scope = ()) -> list[str]:
        with self._transaction() as (_, cur):
            return sorted(self._held_rereads(cur, schema, scope_label(table, scope), column))

    def drop_rereads(self, schema: str, table: str, column: str, parents: list[str], scope: Scope = ()) -> None:
        if not parents:
            return
        p, name = self.param, scope_label(table, scope)
        with self._transaction() as (_, cur):
            if not self._columns(cur, schema, REREAD):
                return
            for key in parents:
                cur.execute(f"delete from {q(schema)}.{q(REREAD)} where table_name = {p} and parent_column = {p} "
                            f"and parent_key = {p}", [name, column, key])  # fmt: skip

    def _held_rereads(self, cur, schema: str, name: str, column: str) -> list[str]:
        if not self._columns(cur, schema, REREAD):
            return []
        p = self.param
        cur.execute(f"select distinct parent_key from {q(schema)}.{q(REREAD)} where table_name = {p} "
                    f"and parent_column = {p}", [name, column])  # fmt: skip
        return [r[0] for r in cur.fetchall()]
