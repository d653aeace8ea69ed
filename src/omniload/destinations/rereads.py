"""The parents whose dependent rows are to be read again, kept in the destination: a parent that was deleted and
came back (a restored profile) has rows the source hid while it was deleted and served again afterwards with
their old cursor values, older than any lookback (its events). The reconcile that finds it back keeps its key
here, per dependent table; the dependent table's next load reads those parents' rows (``TableReader.reread``),
commits them, then forgets them. Kept in the destination, so a kill between the two loses nothing (the rows are
read again: a merge keeps one row per record). SQL destinations (DuckDB, PostgreSQL) keep them in the table
``_omniload_reread``; those marked through dlt (tombstones.py) in the dlt state of a pipeline of their own per
dependent table (``<its pipeline>__rereads``: apart from the table's own state, which its load rewrites)."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from typing import Any

from .base import Scope, scope_label
from .state import pipeline_name, resource_state

REREAD = "_omniload_reread"


def q(name: str) -> str:
    """A quoted SQL identifier (deletes.py's too)."""
    return '"' + name.replace('"', '""') + '"'


class SqlRereads:
    """For :class:`deletes.SqlDeletes`: ``_omniload_reread`` (table_name, parent_column, parent_key)."""

    keeps_rereads = True

    def _create_table(self, cur: Any, schema: str, name: str, columns: str) -> None:
        """``create table if not exists schema.name (columns)`` in the caller's transaction (this file's table and
        deletes.py's). A destination whose sessions may race on it overrides it (PostgreSQL: two first
        reconciles or re-reads into a new schema at once, postgres.py)."""
        cur.execute(f"create table if not exists {q(schema)}.{q(name)} ({columns})")

    def add_rereads(self, schema: str, table: str, column: str, parents: list[str], scope: Scope = ()) -> None:
        if not parents:
            return
        p, name = self.param, scope_label(table, scope)
        with self._transaction() as (_, cur):
            self._create_table(cur, schema, REREAD, "table_name text, parent_column text, parent_key text")
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


class DltRereads:
    """For :class:`tombstones.DltDeletes`: ``{column: [parents]}`` in the resource state (``_omniload_reread``) of
    the pipeline ``<the table's pipeline>__rereads``. Its writers are a parent's run (adding) and the dependent
    table's run (dropping what it read again), each outside the other's table lock: each read-modify-write of that
    state holds the destination's lock of ``<table>__rereads`` (a lock file where the destination has table locks;
    none on S3 and warehouses), else a parent added while the dependent's run dropped others was lost, and its rows
    stayed marked."""

    keeps_rereads = True

    @contextlib.contextmanager
    def _rereads_locked(self, schema: str, table: str) -> Iterator[None]:
        with self.table_lock(schema, f"{table}__rereads", lambda message: None):
            yield

    def _reread_pipe(self, schema: str, table: str, scope: Scope) -> Any:
        return self._synced(pipeline_name(schema, table, scope) + "__rereads", schema)

    def _kept(self, p: Any) -> dict[str, list[str]]:
        return dict(resource_state(p.state, REREAD).get("parents") or {})

    def _keep(self, p: Any, parents: dict[str, list[str]]) -> None:
        import dlt

        @dlt.resource(name=REREAD, write_disposition="append")
        def kept():
            dlt.current.resource_state()["parents"] = parents
            yield from ()

        p.extract(kept(), loader_file_format=self.file_format)
        p.normalize()
        p.load()
        self._loaded(p)

    def add_rereads(self, schema: str, table: str, column: str, parents: list[str], scope: Scope = ()) -> None:
        if not parents:
            return
        with self._rereads_locked(schema, table):
            p = self._reread_pipe(schema, table, scope)
            kept = self._kept(p)
            held = set(kept.get(column) or [])
            if not set(parents) <= held:
                self._keep(p, {**kept, column: sorted(held | set(parents))})

    def rereads(self, schema: str, table: str, column: str, scope: Scope = ()) -> list[str]:
        return sorted(self._kept(self._reread_pipe(schema, table, scope)).get(column) or [])

    def drop_rereads(self, schema: str, table: str, column: str, parents: list[str], scope: Scope = ()) -> None:
        if not parents:
            return
        with self._rereads_locked(schema, table):
            p = self._reread_pipe(schema, table, scope)
            kept = self._kept(p)
            left = sorted(set(kept.get(column) or []) - set(parents))
            if left != sorted(kept.get(column) or []):
                self._keep(p, {**kept, column: left})
