"""Marking deleted rows in a SQL destination that merges in place (DuckDB, PostgreSQL): one transaction per table.

The live keys (every key the source holds now) arrive as one Arrow table; a destination family loads them into
a temporary table its own way (DuckDB registers the Arrow table, PostgreSQL copies it), then the same SQL runs:
the rows not yet marked whose key is not live are collected (``_omniload_gone``), counted against the guard
(too many: nothing is written), and marked (``_omniload_deleted_at``) or deleted (hard); rows marked before
whose key is live again are unmarked. The time of the reconcile is kept in ``_omniload_reconciled``. The
rows of dependent tables (a deleted profile's events) are marked the same way, matched on one column, and
unmarked when their parent comes back (matched on the column and the mark they got with it). The dependent
tables are those whose newest saved dlt state (``_dlt_pipeline_state``) names the dependent's identity.
Within a scope (one account's rows, ``Deletes``), every statement also requires the scope's values.
"""

from __future__ import annotations

import contextlib
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import pyarrow as pa

from .base import Deletes, Scope, scope_label
from .rereads import SqlRereads, q
from .state import loaded_from

DELETED = "_omniload_deleted_at"
RECONCILED = "_omniload_reconciled"


@dataclass
class Deletion:
    """What a reconcile found: rows not marked before, how many of them are gone, and their keys (when done)."""

    total: int
    missing: int
    gone: pa.Table | None = None  # None: refused by the guard, nothing written
    revived: int = 0


class _Undo(Exception):
    """Roll the transaction back and return ``result``."""

    def __init__(self, result: Any) -> None:
        self.result = result


def _keys(key: tuple[str, ...], rows: list[tuple]) -> pa.Table:
    """Fetched rows of key columns as Arrow, typed as they came."""
    return pa.table({c: pa.array([r[n] for r in rows], type=None if rows else pa.string()) for n, c in enumerate(key)})


def _within(scope: Scope, alias: str = "t") -> str:
    """SQL: `` and`` the row holds the scope's values (a literal per value); '' without a scope."""
    return "".join(f" and {alias}.{q(c)} = '{v.replace(chr(39), chr(39) * 2)}'" for c, v in scope)


def _marked(key: tuple[str, ...], rows: list[tuple]) -> pa.Table:
    """Fetched rows of (key columns, mark) as Arrow: the key as it came, the mark as UTC microseconds."""
    return _keys(key, rows).append_column(DELETED, pa.array([r[len(key)] for r in rows], pa.timestamp("us", tz="UTC")))


class SqlDeletes(SqlRereads, Deletes):
    """The SQL of marking deletes, for a DB-API connection; subclasses connect and load Arrow key tables."""

    param = "?"  # the driver's placeholder
    time_type = "timestamp with time zone"

    # -- per family -----------------------------------------------------------------------------------
    def _write_connection(self) -> Any:
        raise NotImplementedError

    def _load_keys(self, con: Any, name: str, keys: pa.Table) -> None:
        """Create temporary table ``name`` holding ``keys`` (its columns, as text or integers)."""
        raise NotImplementedError

    def _begin(self, con: Any) -> None:
        """Start the one transaction of a reconcile (psycopg2 starts one by itself)."""

    def _cursor(self, con: Any) -> Any:
        """Where statements run, inside the connection's transaction."""
        return con.cursor()

    # -- shared ---------------------------------------------------------------------------------------
    def _columns(self, cur, schema: str, table: str) -> set[str]:
        return set(self._ordered_columns(cur, schema, table))

    def _ordered_columns(self, cur, schema: str, table: str) -> dict[str, None]:
        """The columns of ``schema.table`` in the table's order (empty: no such table)."""
        cur.execute(f"select column_name from information_schema.columns where table_schema = {self.param} "
                    f"and table_name = {self.param} order by ordinal_position", [schema, table])  # fmt: skip
        return dict.fromkeys(r[0] for r in cur.fetchall())

    def key_stats(self, schema: str, table: str, key: tuple[str, ...], scope: Scope = ()) -> tuple[int, int] | None:
        """(rows not marked deleted, distinct values of the leading key column of a composite key, else rows);
        None: no such table. Within ``scope``: its rows, the key after the scope's columns."""
        con = self._write_connection()
        try:
            cur = self._cursor(con)
            cols = self._columns(cur, schema, table)
            if not cols or not set(key) <= cols:
                return None
            where = f" where {q(DELETED)} is null" if DELETED in cols else " where true"
            own = [c for c in key if c not in dict(scope)]
            groups = f"count(distinct {q(own[0])})" if len(own) > 1 else "count(*)"  # a single key: as many as rows
            cur.execute(f"select count(*), {groups} from {q(schema)}.{q(table)} t{where}{_within(scope)}")
            rows, groups = cur.fetchone()
            return int(rows), int(groups)
        finally:
            self._close(con)

    def last_reconciled(self, schema: str, table: str, scope: Scope = ()) -> datetime | None:
        con = self._write_connection()
        try:
            cur = self._cursor(con)
            if not self._columns(cur, schema, RECONCILED):
                return None
            cur.execute(
                f"select max(reconciled_at) from {q(schema)}.{q(RECONCILED)} where table_name = {self.param}",
                [scope_label(table, scope)],
            )
            return cur.fetchone()[0]
        finally:
            self._close(con)

    def loaded_from(self, schema: str, origin: str) -> list[str]:
        """The tables of ``schema`` loaded from source table ``origin`` (their newest saved state says so)."""
        con = self._write_connection()
        try:
            cur = self._cursor(con)
            if not self._columns(cur, schema, "_dlt_pipeline_state") or not self._columns(cur, schema, "_dlt_loads"):
                return []
            cur.execute(f"select pipeline_name, state from (select s.pipeline_name, s.state, row_number() over "
                        f"(partition by s.pipeline_name order by l.load_id desc) as n from {q(schema)}._dlt_pipeline_state s "
                        f"join {q(schema)}._dlt_loads l on l.load_id = s._dlt_load_id where l.status = 0) newest where n = 1")  # fmt: skip
            return loaded_from(cur.fetchall(), schema, origin)
        finally:
            self._close(con)

    def marks(self, schema: str, table: str, key: tuple[str, ...], scope: Scope = ()) -> pa.Table | None:
        """The key and ``_omniload_deleted_at`` of the rows marked deleted; None: no such table or no mark yet."""
        con = self._write_connection()
        try:
            cur = self._cursor(con)
            cols = self._columns(cur, schema, table)
            if DELETED not in cols or not set(key) <= cols:
                return None
            cur.execute(
                f"select {', '.join(q(c) for c in (*key, DELETED))} from {q(schema)}.{q(table)} t "
                f"where {q(DELETED)} is not null{_within(scope)}"
            )
            return _marked(key, cur.fetchall())
        finally:
            self._close(con)

    @contextlib.contextmanager
    def _transaction(self):
        """A connection and its cursor, in one transaction: committed when the block ends, else rolled back."""
        con = self._write_connection()
        try:
            self._begin(con)
            yield con, self._cursor(con)
            con.commit()
        except BaseException:
            with contextlib.suppress(Exception):
                con.rollback()
            raise
        finally:
            self._close(con)

    def revived(self, schema: str, table: str, key: tuple[str, ...], prior: pa.Table, scope: Scope = ()) -> pa.Table:
        """The rows of ``prior`` (key, mark) whose key is held unmarked now, with the mark they had."""
        with self._transaction() as (con, cur):
            cols = self._columns(cur, schema, table)
            if not set(key) <= cols:
                return prior.slice(0, 0)
            unmarked = f"t.{q(DELETED)} is null" if DELETED in cols else "true"  # a table loaded afresh: no marks
            self._load_keys(con, "_omniload_keys", prior)
            match = " and ".join(f"l.{q(c)} = t.{q(c)}" for c in key)
            cur.execute(f"select {', '.join(f'l.{q(c)}' for c in (*key, DELETED))} from _omniload_keys l where exists "
                        f"(select 1 from {q(schema)}.{q(table)} t where {match} and {unmarked})")  # fmt: skip
            found = _marked(key, cur.fetchall())
            cur.execute("drop table _omniload_keys")
            return found

    def unmark_matching(
        self, schema: str, table: str, key: tuple[str, ...], column: str, marks: pa.Table, scope: Scope = ()
    ) -> pa.Table | None:
        """Unmark the rows whose (``column``, mark) is a row of ``marks``: those marked along with a parent that
        came back. Returns their keys and the marks they had; None: no such table."""
        with self._transaction() as (con, cur):
            cols = self._columns(cur, schema, table)
            if DELETED not in cols or not {*key, column} <= cols:
                return None
            t = f"{q(schema)}.{q(table)}"
            self._load_keys(con, "_omniload_keys", marks)
            cur.execute(f"create temporary table _omniload_back as select distinct {', '.join(f't.{q(c)}' for c in (*key, DELETED))} "
                        f"from {t} t where exists (select 1 from _omniload_keys l where l.{q(column)} = t.{q(column)} "
                        f"and l.{q(DELETED)} = t.{q(DELETED)}){_within(scope)}")  # fmt: skip
            match = " and ".join(f"b.{q(c)} = t.{q(c)}" for c in key)
            cur.execute(
                f"update {t} t set {q(DELETED)} = null where exists (select 1 from _omniload_back b where {match})"
            )
            cur.execute(f"select {', '.join(q(c) for c in (*key, DELETED))} from _omniload_back")
            found = _marked(key, cur.fetchall())
            cur.execute("drop table _omniload_back")
            cur.execute("drop table _omniload_keys")
            return found

    def mark_deleted(self, schema: str, table: str, key: tuple[str, ...], live: pa.Table, hard: bool, at: datetime,
                     max_share: float | None, scope: Scope = ()) -> Deletion | None:  # fmt: skip
        """Mark (or delete) the rows whose key is not in ``live``; None: no such table. With ``max_share``,
        refuse (write nothing) when more than that share of the unmarked rows would go."""
        match = " and ".join(f"l.{q(c)} = t.{q(c)}" for c in key)
        return self._reconcile(schema, table, key, live.select(list(key)), f"not exists (select 1 from _omniload_keys l where {match})",
                               hard, at, max_share, record=True, scope=scope)  # fmt: skip

    def mark_matching(self, schema: str, table: str, key: tuple[str, ...], column: str, values: pa.Table, hard: bool,
                      at: datetime, scope: Scope = ()) -> Deletion | None:  # fmt: skip
        """Mark (or delete) the rows whose ``column`` is one of ``values`` (a one-column table); None: no such table."""
        keys = values.rename_columns([column])
        return self._reconcile(schema, table, key, keys, f"exists (select 1 from _omniload_keys l where l.{q(column)} = t.{q(column)})",
                               hard, at, None, record=False, need=(column,), scope=scope)  # fmt: skip

    def _reconcile(self, schema: str, table: str, key: tuple[str, ...], keys: pa.Table, gone_when: str, hard: bool,
                   at: datetime, max_share: float | None, record: bool, need: tuple[str, ...] = (),
                   scope: Scope = ()) -> Deletion | None:  # fmt: skip
        try:
            with self._transaction() as (con, cur):
                cols = self._columns(cur, schema, table)
                if not cols or not set(key) | set(need) <= cols:
                    raise _Undo(None)
                t, p = f"{q(schema)}.{q(table)}", self.param
                if DELETED not in cols and not hard:
                    cur.execute(f"alter table {t} add column {q(DELETED)} {self.time_type}")
                    cols.add(DELETED)
                unmarked = (f"t.{q(DELETED)} is null" if DELETED in cols else "true") + _within(scope)
                self._load_keys(con, "_omniload_keys", keys)
                kcols = ", ".join(f"t.{q(c)}" for c in key)
                cur.execute(
                    f"create temporary table _omniload_gone as select distinct {kcols} from {t} t where {unmarked} and {gone_when}"
                )
                cur.execute(f"select count(*) from {t} t where {unmarked}")
                total = int(cur.fetchone()[0])
                cur.execute("select count(*) from _omniload_gone")
                missing = int(cur.fetchone()[0])
                if max_share is not None and missing > max_share * total:
                    raise _Undo(Deletion(total, missing))
                in_gone = (
                    "exists (select 1 from _omniload_gone g where "
                    + " and ".join(f"g.{q(c)} = t.{q(c)}" for c in key)
                    + ")"
                )
                revived = 0
                if hard:
                    cur.execute(f"delete from {t} t where {in_gone if not record else gone_when}{_within(scope)}")
                else:
                    cur.execute(f"update {t} t set {q(DELETED)} = {p} where {in_gone}", [at])
                    if record:  # a key listed again: not deleted after all
                        back = f"t.{q(DELETED)} is not null and not ({gone_when}){_within(scope)}"
                        cur.execute(f"select count(*) from {t} t where {back}")
                        revived = int(cur.fetchone()[0])
                        cur.execute(f"update {t} t set {q(DELETED)} = null where {back}")
                if record:
                    self._create_table(cur, schema, RECONCILED, f"table_name text, reconciled_at {self.time_type}")
                    cur.execute(
                        f"insert into {q(schema)}.{q(RECONCILED)} values ({p}, {p})", [scope_label(table, scope), at]
                    )
                cur.execute(f"select {', '.join(q(c) for c in key)} from _omniload_gone")
                found = cur.fetchall()
                gone = _keys(key, found)
                cur.execute("drop table _omniload_gone")
                cur.execute("drop table _omniload_keys")
            return Deletion(total, missing, gone, revived)
        except _Undo as undo:  # rolled back: nothing written
            return undo.result

    def _close(self, con: Any) -> None:
        con.close()
