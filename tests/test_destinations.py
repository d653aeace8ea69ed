"""Destinations beyond DuckDB: a real PostgreSQL server, local files, and warehouse URIs mapped to dlt."""

from __future__ import annotations

import importlib.util
import json
import re
import subprocess
from datetime import UTC
from pathlib import Path

import pyarrow.csv as pacsv
import pyarrow.parquet as pq
import pytest

from omniload.destinations import parse_destination
from omniload.destinations.warehouses import WAREHOUSES
from omniload.errors import UsageError
from omniload.sources.klaviyo.tables.core import CORE

from .conftest import http_post, run_cli, source_uri
from .helpers import assert_rows_equal_truth, by_id, expected_rows
from .pg import PASSWORD

TABLES = {
    t.name: t for t in CORE
}  # the 15 list endpoints (every table of `all`: test_ingest.py, test_table_families.py)


def _pg_rows(server, database: str, schema: str, table: str) -> dict[str, dict]:
    con = server.connect(database)
    try:
        with con.cursor() as cur:
            cur.execute(f'select * from "{schema}"."{table}"')
            return by_id(cur, table)
    finally:
        con.close()


def test_postgres_list_tables_then_incremental(postgres, make_sandbox, tmp_path):
    sb = make_sandbox(scale="tiny", rate_limits="off", seed=11)
    postgres.create_database("kl_all")
    uri = postgres.uri("kl_all")
    args = ["--dest-table", "klaviyo.*"]
    code = ingest_to(sb, ",".join(TABLES), uri, *args)
    assert code == 0
    for name in TABLES:
        assert_rows_equal_truth(_pg_rows(postgres, "kl_all", "klaviyo", name.replace("-", "_")), sb, name)
    con = postgres.connect("kl_all")
    with con.cursor() as cur:
        cur.execute(
            "select column_name, data_type from information_schema.columns where table_schema='klaviyo' and table_name='events'"
        )
        types = dict(cur.fetchall())
    con.close()
    assert types["datetime"] == "timestamp with time zone" and types["event_properties"] == "jsonb"
    assert types["timestamp"] == "bigint"
    http_post(sb.base_url, "/__sandbox/clock/advance?seconds=172800")
    assert ingest_to(sb, ",".join(TABLES), uri, *args) == 0
    for name in TABLES:
        assert_rows_equal_truth(_pg_rows(postgres, "kl_all", "klaviyo", name.replace("-", "_")), sb, name)


def ingest_to(sb, tables: str, dest_uri: str, *extra: str) -> int:
    from omniload.cli import main

    return main(["ingest", "--source-uri", source_uri(sb), "--source-table", tables, "--dest-uri", dest_uri,
                 "--progress", "log", *extra])  # fmt: skip


def test_postgres_default_schema_is_public_and_bad_password_is_redacted(postgres, sandbox):
    postgres.create_database("kl_pub")
    assert ingest_to(sandbox, "tags", postgres.uri("kl_pub")) == 0
    assert_rows_equal_truth(_pg_rows(postgres, "kl_pub", "public", "tags"), sandbox, "tags")
    wrong = "Wr0ng-pass-XYZ"
    proc = run_cli(
        "ingest",
        "--source-uri",
        source_uri(sandbox),
        "--source-table",
        "tags",
        "--dest-uri",
        postgres.uri("kl_pub", wrong),
    )
    assert proc.returncode == 2 and "cannot connect to postgresql://omni:***@127.0.0.1" in proc.stderr
    assert wrong not in proc.stderr + proc.stdout and PASSWORD not in proc.stderr


def _read_files(folder: Path, fmt: str) -> list[dict]:
    files = [p for p in folder.rglob(f"*.{fmt}*") if p.is_file()]
    assert files, f"no {fmt} files under {folder}"
    out: list[dict] = []
    for f in files:
        if fmt == "parquet":
            out += pq.read_table(f).to_pylist()
        elif fmt == "csv":
            out += pacsv.read_csv(f).to_pylist()
        else:
            import gzip

            opener = gzip.open if f.suffix == ".gz" else open
            with opener(f, "rt") as fh:
                out += [json.loads(line) for line in fh if line.strip()]
    return out


@pytest.mark.parametrize("fmt", ["parquet", "csv", "jsonl"])
def test_file_destinations_one_folder_per_table(sandbox, tmp_path, fmt):
    out = tmp_path / "lake"
    assert ingest_to(sandbox, "events,tags", f"{fmt}:///{out}", "--dest-table", "kl.*") == 0
    for name in ("events", "tags"):
        folder = out / "kl" / name
        assert folder.is_dir(), sorted(str(p) for p in out.rglob("*"))[:20]
        got = _read_files(folder, fmt)
        want = expected_rows(sandbox, name)
        assert sorted(r["id"] for r in got) == sorted(want)
        assert not list(folder.rglob("*.gz"))  # plain files, readable by anything
    # a second run with nothing new adds no rows; keyless tags are unchanged, so not rewritten
    assert ingest_to(sandbox, "events,tags", f"{fmt}:///{out}", "--dest-table", "kl.*") == 0
    assert len({r["id"] for r in _read_files(out / "kl" / "tags", fmt)}) == len(expected_rows(sandbox, "tags"))


WAREHOUSE_CASES = [
    ("bigquery://my-project?credentials_path=/secrets/key.json&location=EU", "bigquery",
     {"project_id": "my-project", "credentials_path": "/secrets/key.json"}, "bigquery"),
    ("snowflake://loader:p%40ss@acme-xy123/RAW?warehouse=LOAD_WH&role=LOADER", "snowflake",
     {"username": "loader", "password": "p@ss", "host": "acme-xy123", "database": "RAW", "warehouse": "LOAD_WH", "role": "LOADER"}, "snowflake"),
    ("clickhouse://default:pw@ch.example.com:9440/analytics?secure=1", "clickhouse",
     {"username": "default", "password": "pw", "host": "ch.example.com", "port": 9440, "database": "analytics", "secure": 1}, "clickhouse"),
    ("mssql://sa:pw@sql.example.com:1433/dw?driver=ODBC+Driver+18+for+SQL+Server", "mssql",
     {"username": "sa", "password": "pw", "host": "sql.example.com", "port": 1433, "database": "dw", "driver": "ODBC Driver 18 for SQL Server"}, "mssql"),
    ("redshift://admin:pw@rs.example.com:5439/dev", "redshift",
     {"username": "admin", "password": "pw", "host": "rs.example.com", "port": 5439, "database": "dev"}, "redshift"),
    ("databricks://token:dapiSECRET@adb-1.azuredatabricks.net?http_path=/sql/1.0/warehouses/abc&catalog=main", "databricks",
     {"server_hostname": "adb-1.azuredatabricks.net", "http_path": "/sql/1.0/warehouses/abc", "access_token": "dapiSECRET", "catalog": "main"}, "databricks"),
    ("motherduck://analytics?token=mdSECRET", "motherduck", {"database": "analytics", "password": "mdSECRET"}, "motherduck"),
    ("md:analytics?motherduck_token=mdSECRET", "motherduck", {"database": "analytics", "password": "mdSECRET"}, "motherduck"),
]  # fmt: skip


@pytest.mark.parametrize(
    "uri,kind,creds,extra",
    WAREHOUSE_CASES,
    ids=[c[1] + ("-md" if c[0].startswith("md:") else "") for c in WAREHOUSE_CASES],
)
def test_warehouse_uris_map_to_dlt_without_a_network(uri, kind, creds, extra):
    dest = parse_destination(uri)
    assert dest.kind == kind and dest.credentials == creds
    for secret in ("p@ss", "pw@", "dapiSECRET", "mdSECRET"):
        assert secret not in dest.display
    module = WAREHOUSES[uri.split(":", 1)[0] if not uri.startswith("md:") else "motherduck"][1]
    if importlib.util.find_spec(module.split(".")[0]) is None:  # this machine lacks the client: a clear error
        with pytest.raises(UsageError, match=re.escape(f"pip install 'omniload[{extra}]'")):
            dest.require_packages()
    else:  # the client is installed: the URI maps onto a working dlt destination
        dest.require_packages()
        assert dest.dlt_destination().destination_name == kind


def test_missing_extra_package_is_a_clear_usage_error(sandbox, monkeypatch, capsys):
    from omniload.cli import main

    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec", lambda name, *a: None if name == "snowflake" else real(name, *a))
    code = main(["ingest", "--source-uri", source_uri(sandbox), "--source-table", "tags",
                 "--dest-uri", "snowflake://u:topsecret@acct/db?warehouse=w"])  # fmt: skip
    out = capsys.readouterr()
    assert code == 2 and "pip install 'omniload[snowflake]'" in out.err
    assert "topsecret" not in out.err + out.out


@pytest.mark.parametrize("uri,fragment", [
    ("postgresql:///db", "needs a host"), ("postgresql://u:p@h", "needs a database"),
    ("bigquery://", "needs a project"), ("databricks://token:x@host", "http_path"), ("sftp://x", "unknown scheme 'sftp'"),
])  # fmt: skip
def test_bad_destination_uris(uri, fragment):
    with pytest.raises(UsageError, match=fragment):
        parse_destination(uri)


def test_a_run_with_nothing_new_writes_nothing_on_parquet_and_postgres(postgres, sandbox, tmp_path):
    folder = tmp_path / "pq"
    folder.mkdir()
    assert ingest_to(sandbox, "events,metrics", f"parquet:///{folder}") == 0
    files = sorted(p.name for p in folder.rglob("*.parquet"))
    assert ingest_to(sandbox, "events,metrics", f"parquet:///{folder}") == 0
    assert sorted(p.name for p in folder.rglob("*.parquet")) == files
    got = by_id(_FakeCursor(pq.read_table(folder / "klaviyo" / "events").to_pylist()), "events")
    assert len(got) == len(expected_rows(sandbox, "events"))
    postgres.create_database("kl_noop")
    uri = postgres.uri("kl_noop")
    assert ingest_to(sandbox, "events,metrics", uri) == 0
    loads = _pg_count(postgres, "kl_noop", "select count(*) from public._dlt_loads")
    assert ingest_to(sandbox, "events,metrics", uri) == 0
    assert _pg_count(postgres, "kl_noop", "select count(*) from public._dlt_loads") == loads


class _FakeCursor:
    """Rows as a DB-API cursor, for ``by_id``."""

    def __init__(self, records: list[dict]) -> None:
        self.description = [(k,) for k in (records[0] if records else {})]
        self._rows = [tuple(r.values()) for r in records]

    def fetchall(self):
        return self._rows


def _pg_count(server, database: str, query: str) -> int:
    con = server.connect(database)
    try:
        with con.cursor() as cur:
            cur.execute(query)
            return cur.fetchone()[0]
    finally:
        con.close()


def _sqlite_rows(path: Path, table: str) -> dict[str, dict]:
    """Rows of a SQLite table; SQLite keeps timestamps as UTC text without a zone."""
    import sqlite3
    from datetime import datetime

    con = sqlite3.connect(path)
    try:
        got = by_id(con.execute(f'select * from "{table}"'), table)
    finally:
        con.close()
    for row in got.values():
        for col, value in row.items():
            if isinstance(value, str) and re.fullmatch(r"\d{4}-\d\d-\d\d \d\d:\d\d:\d\d(\.\d+)?", value):
                row[col] = datetime.fromisoformat(value).replace(tzinfo=UTC)
    return got


def test_sqlite_equals_truth_then_incremental(make_sandbox, tmp_path):
    sb = make_sandbox(scale="tiny", rate_limits="off", seed=12)
    db = tmp_path / "k.db"
    tables = "events,profiles,tags,campaigns"
    proc = run_cli("ingest", "--source-uri", source_uri(sb), "--source-table", tables, "--dest-uri", f"sqlite:///{db}")
    assert proc.returncode == 0, proc.stderr
    for name in tables.split(","):
        assert_rows_equal_truth(_sqlite_rows(db, name), sb, name)
    http_post(sb.base_url, "/__sandbox/clock/advance?seconds=86400")
    assert ingest_to(sb, tables, f"sqlite:///{db}") == 0
    for name in tables.split(","):
        assert_rows_equal_truth(_sqlite_rows(db, name), sb, name)


def test_postgres_a_dropped_staging_schema_does_not_break_the_next_lifted_events_merge(postgres, make_sandbox):
    """``properties=columns`` lifts an event property whose value is a list (``ItemNames``) into a JSON column,
    ``jsonb`` in PostgreSQL. dlt's own schema must say so too: when it creates the staging table again (its schema
    dropped) from that schema, a column it held as text beside the table's jsonb failed every later events merge
    ("column property_itemnames is of type jsonb but expression is of type character varying")."""
    sb = make_sandbox(scale="tiny", rate_limits="off", seed=23)
    postgres.create_database("kl_stage")
    uri = postgres.uri("kl_stage")

    def events() -> subprocess.CompletedProcess:
        return run_cli("ingest", "--source-uri", source_uri(sb) + "&properties=columns", "--source-table", "events",
                       "--dest-uri", uri, "--progress", "log")  # fmt: skip

    first = events()
    assert first.returncode == 0, first.stderr[-2000:]
    con = postgres.connect("kl_stage")
    try:
        con.autocommit = True
        with con.cursor() as cur:
            cur.execute("select data_type from information_schema.columns where table_schema = 'public' and "
                        "table_name = 'events' and column_name = 'property_itemnames'")  # fmt: skip
            assert cur.fetchall() == [("jsonb",)]
            cur.execute("select nspname from pg_namespace where nspname like '%staging%'")
            staging = [r[0] for r in cur.fetchall()]
            assert staging
            for name in staging:
                cur.execute(f'drop schema "{name}" cascade')
    finally:
        con.close()
    http_post(sb.base_url, "/__sandbox/clock/advance?seconds=7200")
    again = events()
    assert again.returncode == 0, again.stderr[-2000:]
    truth = expected_rows(sb, "events")
    got = _pg_rows(postgres, "kl_stage", "public", "events")
    assert set(got) == set(truth)
