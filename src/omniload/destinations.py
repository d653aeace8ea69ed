"""Destination URIs: parse each scheme into a dlt destination, check it before any work, redact its secrets.

| scheme | dlt destination | notes |
|---|---|---|
| ``duckdb:///rel.duckdb``, ``duckdb:////abs.duckdb``, ``duckdb:///:memory:`` | duckdb | the embedded default |
| ``postgresql://user:pass@host:port/db`` (``postgres://``) | postgres | |
| ``parquet:///dir``, ``csv:///dir``, ``jsonl:///dir`` | filesystem | one folder per table |
| ``bigquery://project?credentials_path=key.json&location=US`` | bigquery | |
| ``snowflake://user:pass@account/db?warehouse=W&role=R`` | snowflake | |
| ``clickhouse://user:pass@host:port/db?secure=0`` | clickhouse | |
| ``mssql://user:pass@host:port/db?driver=...`` | mssql | |
| ``redshift://user:pass@host:port/db`` | redshift | |
| ``databricks://token:TOKEN@host?http_path=...&catalog=...`` | databricks | |
| ``motherduck://db?token=...`` or ``md:db?motherduck_token=...`` | motherduck | |

Files cannot be merged in place: file destinations append every version of a record (newest by
``_dlt_load_id``), and replace tables are rewritten.
"""

from __future__ import annotations

import importlib.util
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, unquote, urlsplit

from .errors import UsageError
from .uri import redact

FILE_FORMATS = {"parquet": "parquet", "csv": "csv", "jsonl": "jsonl"}
# scheme -> (dlt destination, python module the dlt client needs, pip extra)
WAREHOUSES = {
    "postgresql": ("postgres", "psycopg2", "postgres"), "postgres": ("postgres", "psycopg2", "postgres"),
    "bigquery": ("bigquery", "google.cloud.bigquery", "bigquery"),
    "snowflake": ("snowflake", "snowflake.connector", "snowflake"),
    "clickhouse": ("clickhouse", "clickhouse_driver", "clickhouse"),
    "mssql": ("mssql", "pyodbc", "mssql"), "redshift": ("redshift", "psycopg2", "redshift"),
    "databricks": ("databricks", "databricks.sql", "databricks"), "motherduck": ("motherduck", "duckdb", "motherduck"),
}  # fmt: skip
SCHEMES = ("duckdb", *FILE_FORMATS, *WAREHOUSES, "md")


@dataclass(frozen=True)
class Destination:
    scheme: str  # as written by the user
    kind: str  # dlt destination name
    display: str  # the URI with secrets redacted
    credentials: Any = None  # what the dlt factory takes
    path: str = ""  # duckdb file or ":memory:"; folder for file destinations
    file_format: str | None = None
    default_schema: str = "main"
    options: dict[str, Any] = field(default_factory=dict)

    @property
    def is_duckdb(self) -> bool:
        return self.kind == "duckdb"

    def require_packages(self) -> None:
        spec = WAREHOUSES.get(self.scheme if self.scheme != "md" else "motherduck")
        if spec and importlib.util.find_spec(spec[1].split(".")[0]) is None:
            raise UsageError(f"--dest-uri: {self.kind} needs extra packages; install them with: pip install 'omniload[{spec[2]}]'")

    def factory(self, credentials_override: Any = None):
        """The dlt destination object (imports dlt)."""
        import dlt

        creds = credentials_override if credentials_override is not None else self.credentials
        if self.kind == "filesystem":
            return dlt.destinations.filesystem(bucket_url=Path(self.path).resolve().as_uri())
        return getattr(dlt.destinations, self.kind)(credentials=creds, **self.options)


def _query(parts) -> dict[str, str]:
    return {k: v[-1] for k, v in parse_qs(parts.query, keep_blank_values=True).items()}


def _duckdb(uri: str) -> Destination:
    rest = uri.split("://", 1)[1]
    if not rest.startswith("/") or rest == "/":
        raise UsageError("--dest-uri: use duckdb:///relative.duckdb, duckdb:////abs/path.duckdb or duckdb:///:memory:")
    path = rest[1:].split("?", 1)[0]
    if path != ":memory:":
        p = Path(path)
        if p.is_dir():
            raise UsageError(f"--dest-uri: '{path}' is a directory; give a DuckDB file path such as {path.rstrip('/')}/data.duckdb")
        parent = p.parent if str(p.parent) else Path(".")
        if not parent.is_dir():
            raise UsageError(f"--dest-uri: folder '{parent}' does not exist; create it or choose another path")
        if not os.access(parent, os.W_OK) or (p.exists() and not os.access(p, os.W_OK)):
            raise UsageError(f"--dest-uri: '{path}' is not writable")
        path = str(p)
    return Destination("duckdb", "duckdb", f"duckdb:///{path}", path=path)


def _files(scheme: str, uri: str) -> Destination:
    rest = uri.split("://", 1)[1]
    if not rest.startswith("/") or rest == "/":
        raise UsageError(f"--dest-uri: use {scheme}:///relative/dir or {scheme}:////abs/dir")
    path = rest[1:].split("?", 1)[0]
    p = Path(path)
    if p.exists() and not p.is_dir():
        raise UsageError(f"--dest-uri: '{path}' is a file; {scheme}:// needs a folder")
    parent = p if p.exists() else p.parent if str(p.parent) else Path(".")
    if not parent.is_dir() or not os.access(parent, os.W_OK):
        raise UsageError(f"--dest-uri: folder '{parent}' does not exist or is not writable")
    return Destination(scheme, "filesystem", f"{scheme}:///{path}", path=str(p), file_format=FILE_FORMATS[scheme],
                       default_schema="klaviyo")  # fmt: skip


def _userinfo(parts, scheme: str) -> tuple[str, str, str, int | None, str]:
    if not parts.hostname:
        raise UsageError(f"--dest-uri: {scheme}:// needs a host, e.g. {scheme}://user:password@host:port/database")
    try:
        port = parts.port
    except ValueError:
        raise UsageError(f"--dest-uri: the port in {redact(parts.geturl())} is not a number") from None
    return unquote(parts.username or ""), unquote(parts.password or ""), parts.hostname, port, parts.path.lstrip("/")


def _warehouse(scheme: str, uri: str) -> Destination:
    if scheme == "md":  # md:database?motherduck_token=...
        uri = "motherduck://" + uri[3:].lstrip("/")
        scheme = "motherduck"
    parts = urlsplit(uri)
    q = _query(parts)
    kind = WAREHOUSES[scheme][0]
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
        schema = {"postgres": "public", "redshift": "public", "mssql": "dbo"}.get(kind, "klaviyo")
        return Destination(scheme, kind, display, creds, default_schema=schema)
    if kind == "bigquery":
        project = parts.hostname or ""
        if not project:
            raise UsageError("--dest-uri: bigquery:// needs a project, e.g. bigquery://my-project?credentials_path=key.json")
        creds = {"project_id": project}
        if "credentials_path" in q:
            creds["credentials_path"] = q["credentials_path"]
        options = {"location": q["location"]} if "location" in q else {}
        return Destination(scheme, kind, display, creds, default_schema="klaviyo", options=options)
    if kind == "databricks":
        if not parts.hostname or "http_path" not in q:
            raise UsageError("--dest-uri: use databricks://token:ACCESS_TOKEN@server-hostname?http_path=...&catalog=...")
        creds = {"server_hostname": parts.hostname, "http_path": q["http_path"], "access_token": unquote(parts.password or ""),
                 "catalog": q.get("catalog", "hive_metastore")}  # fmt: skip
        return Destination(scheme, kind, display, creds, default_schema="klaviyo")
    # motherduck
    database = parts.hostname or parts.path.lstrip("/")
    token = q.get("token") or q.get("motherduck_token") or ""
    if not database:
        raise UsageError("--dest-uri: use motherduck://database?token=... or md:database?motherduck_token=...")
    return Destination(scheme, kind, display, {"database": database, "password": token}, default_schema="klaviyo")


def parse_destination(uri: str) -> Destination:
    lowered = uri.lower()
    if lowered.startswith("md:"):
        return _warehouse("md", uri)
    scheme = lowered.split("://", 1)[0] if "://" in uri else ""
    if scheme not in SCHEMES:
        shown = scheme or redact(uri)
        raise UsageError(f"--dest-uri: unknown scheme '{shown}'; allowed: {', '.join(s + '://' for s in SCHEMES if s != 'md')}, md:")
    if scheme == "duckdb":
        return _duckdb(uri)
    if scheme in FILE_FORMATS:
        return _files(scheme, uri)
    return _warehouse(scheme, uri)
