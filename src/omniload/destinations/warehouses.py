"""Server and warehouse destinations reached through dlt, parsed from their URIs without a network.

| scheme | dlt destination |
|---|---|
| ``postgresql://user:pass@host:port/db`` (``postgres://``) | postgres (see postgres.py) |
| ``bigquery://project?credentials_path=key.json&location=US`` | bigquery |
| ``snowflake://user:pass@account/db?warehouse=W&role=R`` | snowflake |
| ``clickhouse://user:pass@host:port/db?secure=0`` | clickhouse |
| ``mssql://user:pass@host:port/db?driver=...`` | mssql |
| ``redshift://user:pass@host:port/db`` | redshift |
| ``databricks://token:TOKEN@host?http_path=...&catalog=...`` | databricks |
| ``motherduck://db?token=...`` or ``md:db?motherduck_token=...`` | motherduck |
"""

from __future__ import annotations

from typing import Any
from urllib.parse import parse_qs, unquote, urlsplit

from ..errors import UsageError
from ..uri import redact
from .base import Destination
from .postgres import Postgres
from .tombstones import DltDeletes

# scheme -> (dlt destination, python module the dlt client needs, pip extra)
WAREHOUSES = {
    "postgresql": ("postgres", "psycopg2", "postgres"), "postgres": ("postgres", "psycopg2", "postgres"),
    "bigquery": ("bigquery", "google.cloud.bigquery", "bigquery"),
    "snowflake": ("snowflake", "snowflake.connector", "snowflake"),
    "clickhouse": ("clickhouse", "clickhouse_driver", "clickhouse"),
    "mssql": ("mssql", "pyodbc", "mssql"), "redshift": ("redshift", "psycopg2", "redshift"),
    "databricks": ("databricks", "databricks.sql", "databricks"), "motherduck": ("motherduck", "duckdb", "motherduck"),
}  # fmt: skip


class Warehouse(DltDeletes, Destination):
    """A warehouse reached through dlt: deleted rows are marked by dlt merges (tombstones.py)."""


def _query(parts) -> dict[str, str]:
    return {k: v[-1] for k, v in parse_qs(parts.query, keep_blank_values=True).items()}


def _userinfo(parts, scheme: str) -> tuple[str, str, str, int | None, str]:
    if not parts.hostname:
        raise UsageError(f"--dest-uri: {scheme}:// needs a host, e.g. {scheme}://user:password@host:port/database")
    try:
        port = parts.port
    except ValueError:
        raise UsageError(f"--dest-uri: the port in {redact(parts.geturl())} is not a number") from None
    return unquote(parts.username or ""), unquote(parts.password or ""), parts.hostname, port, parts.path.lstrip("/")


def parse(scheme: str, uri: str) -> Destination:
    """A server or warehouse destination; its default schema is its own (public, dbo) or the source's."""
    if scheme == "md":  # md:database?motherduck_token=...
        uri = "motherduck://" + uri[3:].lstrip("/")
        scheme = "motherduck"
    parts = urlsplit(uri)
    q = _query(parts)
    kind, module, extra = WAREHOUSES[scheme]
    package = (module, extra)
    display = redact(uri)
    if kind in ("postgres", "redshift", "clickhouse", "mssql", "snowflake"):
        user, password, host, port, db = _userinfo(parts, scheme)
        if not db and kind != "clickhouse":
            raise UsageError(f"--dest-uri: {scheme}:// needs a database, e.g. {scheme}://user:password@host/database")
        creds: dict[str, Any] = {"username": user, "password": password, "host": host, "database": db or "default"}
        if port:
            creds["port"] = port
        if kind == "snowflake":
            creds = {"username": user, "password": password, "host": host, "database": db,
                     **{k: q[k] for k in ("warehouse", "role") if k in q}}  # fmt: skip
        elif kind == "clickhouse":
            creds["secure"] = int(q.get("secure", "1"))
        elif kind == "mssql" and "driver" in q:
            creds["driver"] = q["driver"]
        schema = {"postgres": "public", "redshift": "public", "mssql": "dbo"}.get(kind)
        return (Postgres if kind == "postgres" else Warehouse)(
            scheme, kind, display, creds, schema=schema, package=package
        )
    if kind == "bigquery":
        project = parts.hostname or ""
        if not project:
            raise UsageError(
                "--dest-uri: bigquery:// needs a project, e.g. bigquery://my-project?credentials_path=key.json"
            )
        creds = {"project_id": project}
        if "credentials_path" in q:
            creds["credentials_path"] = q["credentials_path"]
        options = {"location": q["location"]} if "location" in q else {}
        return Warehouse(scheme, kind, display, creds, options=options, package=package)
    if kind == "databricks":
        if not parts.hostname or "http_path" not in q:
            raise UsageError(
                "--dest-uri: use databricks://token:ACCESS_TOKEN@server-hostname?http_path=...&catalog=..."
            )
        creds = {"server_hostname": parts.hostname, "http_path": q["http_path"], "access_token": unquote(parts.password or ""),
                 "catalog": q.get("catalog", "hive_metastore")}  # fmt: skip
        return Warehouse(scheme, kind, display, creds, package=package)
    # motherduck
    database = parts.hostname or parts.path.lstrip("/")
    token = q.get("token") or q.get("motherduck_token") or ""
    if not database:
        raise UsageError("--dest-uri: use motherduck://database?token=... or md:database?motherduck_token=...")
    return Warehouse(scheme, kind, display, {"database": database, "password": token}, package=package)
