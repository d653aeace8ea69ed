"""PostgreSQL: ``postgresql://user:password@host:5432/database`` (or ``postgres://``); default schema ``public``.

Preflight connects once (a wrong password or a refused connection fails before any work, redacted); "nothing new"
is checked with one query on the fetched keys, so a run with nothing new records no load. Deleted rows are marked
with the SQL of deletes.py, the live keys copied (COPY) into a temporary table. One run at a time loads a table:
an advisory lock on ``schema.table`` (locks.py); dlt's schema updates (its own tables, created by the first load
into a schema) one at a time per schema, under an advisory lock of the schema."""

from __future__ import annotations

import contextlib
import hashlib
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any, ClassVar

from ..errors import DestinationUnreachable
from ..uri import redact
from .base import Destination, Takeover
from .deletes import SqlDeletes, q
from .fill import SqlFill
from .locks import wait_for
from .views import SqlViews


def sql_type(arrow_type) -> str:
    """The type of a key column in a temporary table."""
    import pyarrow as pa

    if pa.types.is_integer(arrow_type):
        return "bigint"
    return "timestamp with time zone" if pa.types.is_timestamp(arrow_type) else "text"


def _lock_key(schema: str, table: str) -> int:
    """The advisory lock of one destination table (see ``table_lock``)."""
    return int.from_bytes(
        hashlib.sha256(f"omniload:{schema}.{table}".lower().encode()).digest()[:8], "big", signed=True
    )


def _schema_key(schema: str) -> int:
    """The advisory lock of one schema's table definitions (see ``_schema_updates_locked``)."""
    return _lock_key(schema, "") ^ 0x5CED  # never a table's key: those hash "schema.table"


def _own_tables_key(schema: str) -> int:
    """The advisory lock of creating omniload's own tables in a schema (``Postgres._create_table``)."""
    return _lock_key(schema, "") ^ 0x0A11  # neither a table's key nor the schema updates' (``_schema_key``)


def _schema_updates_locked(client: Any, connect: Callable[[], Any]) -> Any:
    """dlt's job client ``client``, its schema updates taking turns per schema. A first load into a schema creates
    dlt's own tables there (``_dlt_version``, ``_dlt_loads``, ``_dlt_pipeline_state``; in the staging schema
    ``_dlt_version``) in one transaction with ``CREATE TABLE IF NOT EXISTS``, which PostgreSQL does not make safe
    at once: two runs of different tables (each under its own table lock) into a new schema, or two Dagster
    assets, failed one of them with ``UniqueViolation`` on ``pg_type_typname_nsp_index`` (or a deadlock). Each
    update (dlt's check of what exists and its DDL, committed) holds a session advisory lock of the schema it
    updates (the staging schema's own when dlt updates that), on a connection of its own (``connect``: dlt's
    connection discards its session's locks whenever a query of it fails); the next update then finds the tables
    made. Held for the DDL only (milliseconds), not for the load; a killed run's session takes it along."""
    update = client.update_stored_schema

    def locked(*args: Any, **kwargs: Any) -> Any:
        con = connect()
        try:
            con.autocommit = True
            with con.cursor() as cur:
                cur.execute("select pg_advisory_lock(%s)", (_schema_key(client.sql_client.dataset_name),))
            return update(*args, **kwargs)
        finally:
            con.close()  # ends the session, and with it the lock

    client.update_stored_schema = locked
    return client


@dataclass
class Postgres(SqlFill, SqlViews, SqlDeletes, Takeover, Destination):
    column_types: ClassVar[dict[str, str]] = {"double": "double precision", "text": "varchar"}
    param = "%s"
    compress_load_files: bool = False  # COPY reads each file straight back
    stores_nul: bool = False  # text refuses NUL bytes, jsonb the \u0000 escape
    merge_predicates: bool = True

    def _connect(self):
        import psycopg2

        c = self.credentials
        return psycopg2.connect(dbname=c["database"], user=c["username"], password=c["password"], host=c["host"],
                                port=c.get("port", 5432), connect_timeout=10)  # fmt: skip

    @contextlib.contextmanager
    def table_lock(self, schema: str, table: str, on_wait: Callable[[str], None]) -> Iterator[None]:
        """A session advisory lock on ``schema.table``, held on a connection of its own for the table's whole load
        (the server releases it when the run's connection ends, also when the run is killed). Its schemas are
        created here, under the lock, so that runs into other tables of a new schema do not race to create them
        (dlt's ``CREATE SCHEMA`` has no ``IF NOT EXISTS``); each table has its own staging table."""
        import psycopg2
        from psycopg2 import errors, sql

        try:
            con = self._connect()
        except psycopg2.Error as exc:
            raise DestinationUnreachable(
                f"cannot connect to {self.display} to lock {schema}.{table}: {self._reason(exc)}"
            ) from None
        try:
            con.autocommit = True
            with con.cursor() as cur:
                key = _lock_key(schema, table)

                def attempt() -> bool:
                    cur.execute("select pg_try_advisory_lock(%s)", (key,))
                    return bool(cur.fetchone()[0])

                wait_for(attempt, self.lock_wait, f"{schema}.{table}", self.display, on_wait)
                for name in (schema, self.staging_schema(schema)):
                    with contextlib.suppress(errors.UniqueViolation):  # created by another run this moment
                        cur.execute(sql.SQL("create schema if not exists {}").format(sql.Identifier(name)))
            yield
        finally:
            con.close()  # ends the session, and with it the lock

    def dlt_destination(self):
        """dlt's destination, its job clients updating a schema's tables one at a time (``_schema_updates_locked``)."""
        factory = super().dlt_destination()
        make = factory.client
        factory.client = lambda schema, initial_config=None: _schema_updates_locked(
            make(schema, initial_config), self._connect
        )
        return factory

    def _create_table(self, cur: Any, schema: str, name: str, columns: str) -> None:
        """As SQL's, under a transaction lock of the schema's own tables: PostgreSQL does not make ``create table if
        not exists`` safe at once (two runs' first reconcile or re-read into a new schema: one failed with
        ``UniqueViolation`` on ``pg_type_typname_nsp_index``); the second waits, then finds the table made."""
        cur.execute("select pg_advisory_xact_lock(%s)", (_own_tables_key(schema),))
        super()._create_table(cur, schema, name, columns)

    def _quietly(self, work: Callable[[Any], None]) -> None:
        """``work(cursor)`` in one transaction; a failure (no such table, no rights) leaves things as they are."""
        import psycopg2

        try:
            con = self._connect()
        except psycopg2.Error:
            return
        try:
            with con, con.cursor() as cur:
                work(cur)
        except psycopg2.Error:
            pass
        finally:
            con.close()

    def after_load(self, schema: str, table: str) -> None:
        """Empty the table's staging copy (dlt fills it afresh on the next merge; none after an append or replace)."""
        from psycopg2 import sql

        self._quietly(lambda cur: cur.execute(sql.SQL("truncate table {}.{}").format(
            sql.Identifier(self.staging_schema(schema)), sql.Identifier(table))))  # fmt: skip

    def dlt_table(self, schema: str, table: str) -> dict[str, str] | None:
        found: dict[str, str] = {}

        def work(cur) -> None:
            cur.execute("select column_name, data_type from information_schema.columns where table_schema = %s "
                        "and table_name = %s order by ordinal_position", (schema, table))  # fmt: skip
            found.update(cur.fetchall())

        self._quietly(work)
        return found if "_dlt_load_id" in found else None

    def read_table(self, schema: str, table: str, columns: list[str], rows: int) -> Iterator[Any]:
        import pyarrow as pa

        types = self.dlt_table(schema, table) or {}
        cols = ", ".join(f"{q(c)}::text" if types.get(c) in ("json", "jsonb") else q(c) for c in columns)
        con = self._connect()
        try:
            with con, con.cursor(name="_omniload_takeover") as cur:  # a server-side cursor: rows come in batches
                cur.execute(f"select {cols} from {q(schema)}.{q(table)}")
                while chunk := cur.fetchmany(rows):
                    yield pa.table({c: [r[i] for r in chunk] for i, c in enumerate(columns)})
        finally:
            con.close()

    def drop_table(self, schema: str, table: str) -> None:
        con = self._connect()
        try:
            with con, con.cursor() as cur:
                cur.execute(f"drop table {q(schema)}.{q(table)}")
                cur.execute(f"drop table if exists {q(self.staging_schema(schema))}.{q(table)}")
        finally:
            con.close()

    def preflight(self) -> None:
        self.require_packages()
        import psycopg2

        try:
            self._connect().close()
        except psycopg2.Error as exc:
            raise DestinationUnreachable(f"--dest-uri: cannot connect to {self.display}: {self._reason(exc)}") from None

    def _reason(self, exc: Exception) -> str:
        """The first line of a driver error, the password redacted."""
        return redact(str(exc).strip().splitlines()[0]).replace(self.credentials["password"] or "\0", "***")

    def already_loaded(self, schema: str, table: str, key: tuple[str, ...], cursor: str, rows) -> bool:
        """Every fetched (key, cursor) is in the table: one query for the fetched keys."""
        if rows.num_rows == 0:
            return True
        if len(key) != 1:
            return False
        import psycopg2
        from psycopg2 import sql

        wanted = set(zip(rows.column(key[0]).to_pylist(), rows.column(cursor).to_pylist(), strict=False))
        query = sql.SQL("select {k}, {c} from {s}.{t} where {k} = any(%s)").format(
            k=sql.Identifier(key[0]), c=sql.Identifier(cursor), s=sql.Identifier(schema), t=sql.Identifier(table)
        )
        try:
            con = self._connect()
        except psycopg2.Error:
            return False
        try:
            with con.cursor() as cur:
                cur.execute(query, (list({k for k, _ in wanted}),))
                found = set(cur.fetchall())
        except psycopg2.Error:  # no table yet, or unreadable: load
            return False
        finally:
            con.close()
        return wanted <= found

    def _write_connection(self):
        return self._connect()

    def _load_keys(self, con, name: str, keys) -> None:
        """A temporary table of ``keys`` (text, bigint for integer columns, timestamptz for marks), filled with one COPY."""
        import io

        import pyarrow.csv as pacsv

        cols = ", ".join(f"{q(f.name)} {sql_type(f.type)}" for f in keys.schema)
        with con.cursor() as cur:
            cur.execute(f"create temporary table {name} ({cols}) on commit drop")
            buf = io.BytesIO()
            pacsv.write_csv(keys, buf, pacsv.WriteOptions(include_header=False))
            buf.seek(0)
            cur.copy_expert(f"copy {name} from stdin with (format csv)", buf)
            cur.execute(f"analyze {name}")
