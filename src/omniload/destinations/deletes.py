"""Marking deleted rows in a SQL destination that merges in place (DuckDB, PostgreSQL): one transaction per table.

The live keys (every key the source holds now) arrive as one Arrow table; a destination family loads them into
a temporary table its own way (DuckDB registers the Arrow table, PostgreSQL copies it), then the same SQL runs:
the rows not yet marked whose key is not live are collected (``_omniload_gone``), counted against the guard
(too many: nothing is written), and marked (``_omniload_deleted_at``) or deleted (hard); rows marked before
whose key is live again are unmarked. The time of the reconcile is kept in ``_omniload_reconciled``. The
rows of dependent tables (a deleted profile's events) are marked the same way, matched on one column.
"""

from __future__ import annotations

import contextlib
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import pyarrow as pa

DELETED = "_omniload_deleted_at"
RECONCILED = "_omniload_reconciled"


@dataclass
class Deletion:
    """What a reconcile found: rows not marked before, how many of them are gone, and their keys (when done)."""

    total: int
    missing: int
    gone: pa.Table | None = None  # None: refused by the guard, nothing written
    revived: int = 0


def q(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


class SqlDeletes:
    """The SQL of marking deletes, for a DB-API connection; subclasses connect and load Arrow key tables."""

    param = "?"  # the driver's placeholder
    time_type = "timestamp with time zone"
    supports_deletes = True

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
        cur.execute(f"select column_name from information_schema.columns where table_schema = {self.param} "
                    f"and table_name = {self.param}", [schema, table])  # fmt: skip
        return {r[0] for r in cur.fetchall()}

    def key_stats(self, schema: str, table: str, key: tuple[str, ...]) -> tuple[int, int] | None:
        """(rows not marked deleted, distinct values of the leading key column of a composite key, else rows);
        None: no such table."""
        con = self._write_connection()
        try:
            cur = self._cursor(con)
            cols = self._columns(cur, schema, table)
            if not cols or not set(key) <= cols:
                return None
            where = f" where {q(DELETED)} is null" if DELETED in cols else ""
            groups = f"count(distinct {q(key[0])})" if len(key) > 1 else "count(*)"  # a single key: as many as rows
            cur.execute(f"select count(*), {groups} from {q(schema)}.{q(table)}{where}")
            rows, groups = cur.fetchone()
            return int(rows), int(groups)
        finally:
            self._close(con)

    def last_reconciled(self, schema: str, table: str) -> datetime | None:
        con = self._write_connection()
        try:
            cur = self._cursor(con)
            if not self._columns(cur, schema, RECONCILED):
                return None
            cur.execute(f"select max(reconciled_at) from {q(schema)}.{q(RECONCILED)} where table_name = {self.param}", [table])
            return cur.fetchone()[0]
        finally:
            self._close(con)

    def mark_deleted(self, schema: str, table: str, key: tuple[str, ...], live: pa.Table, hard: bool, at: datetime,
                     max_share: float | None) -> Deletion | None:  # fmt: skip
        """Mark (or delete) the rows whose key is not in ``live``; None: no such table. With ``max_share``,
        refuse (write nothing) when more than that share of the unmarked rows would go."""
        match = " and ".join(f"l.{q(c)} = t.{q(c)}" for c in key)
        return self._reconcile(schema, table, key, live.select(list(key)), f"not exists (select 1 from _omniload_keys l where {match})",
                               hard, at, max_share, record=True)  # fmt: skip

    def mark_matching(self, schema: str, table: str, key: tuple[str, ...], column: str, values: pa.Table, hard: bool,
                      at: datetime) -> Deletion | None:  # fmt: skip
        """Mark (or delete) the rows whose ``column`` is one of ``values`` (a one-column table); None: no such table."""
        keys = values.rename_columns([column])
        return self._reconcile(schema, table, key, keys, f"exists (select 1 from _omniload_keys l where l.{q(column)} = t.{q(column)})",
                               hard, at, None, record=False, need=(column,))  # fmt: skip

    def _reconcile(self, schema: str, table: str, key: tuple[str, ...], keys: pa.Table, gone_when: str, hard: bool,
                   at: datetime, max_share: float | None, record: bool, need: tuple[str, ...] = ()) -> Deletion | None:  # fmt: skip
        con = self._write_connection()
        try:
            self._begin(con)
            cur = self._cursor(con)
            cols = self._columns(cur, schema, table)
            if not cols or not set(key) | set(need) <= cols:
                con.rollback()
                return None
            t, p = f"{q(schema)}.{q(table)}", self.param
            if DELETED not in cols and not hard:
                cur.execute(f"alter table {t} add column {q(DELETED)} {self.time_type}")
                cols.add(DELETED)
            unmarked = f"t.{q(DELETED)} is null" if DELETED in cols else "true"
            self._load_keys(con, "_omniload_keys", keys)
            kcols = ", ".join(f"t.{q(c)}" for c in key)
            cur.execute(f"create temporary table _omniload_gone as select distinct {kcols} from {t} t where {unmarked} and {gone_when}")
            cur.execute(f"select count(*) from {t} t where {unmarked}")
            total = int(cur.fetchone()[0])
            cur.execute("select count(*) from _omniload_gone")
            missing = int(cur.fetchone()[0])
            if max_share is not None and missing > max_share * total:
                con.rollback()
                return Deletion(total, missing)
            in_gone = "exists (select 1 from _omniload_gone g where " + " and ".join(f"g.{q(c)} = t.{q(c)}" for c in key) + ")"
            revived = 0
            if hard:
                cur.execute(f"delete from {t} t where {in_gone if not record else gone_when}")
            else:
                cur.execute(f"update {t} t set {q(DELETED)} = {p} where {in_gone}", [at])
                if record:  # a key listed again: not deleted after all
                    back = f"t.{q(DELETED)} is not null and not ({gone_when})"
                    cur.execute(f"select count(*) from {t} t where {back}")
                    revived = int(cur.fetchone()[0])
                    cur.execute(f"update {t} t set {q(DELETED)} = null where {back}")
            if record:
                cur.execute(f"create table if not exists {q(schema)}.{q(RECONCILED)} (table_name text, reconciled_at {self.time_type})")
                cur.execute(f"insert into {q(schema)}.{q(RECONCILED)} values ({p}, {p})", [table, at])
            cur.execute(f"select {', '.join(q(c) for c in key)} from _omniload_gone")
            found = cur.fetchall()
            gone = pa.table({c: pa.array([r[n] for r in found], type=None if found else pa.string()) for n, c in enumerate(key)})
            cur.execute("drop table _omniload_gone")
            cur.execute("drop table _omniload_keys")
            con.commit()
            return Deletion(total, missing, gone, revived)
        except BaseException:
            with contextlib.suppress(Exception):
                con.rollback()
            raise
        finally:
            self._close(con)

    def _close(self, con: Any) -> None:
        con.close()
