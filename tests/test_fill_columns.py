"""An events table loaded before the well-known property columns existed gets them filled in the destination from its
stored ``event_properties`` by the next run, which reads only what is new (no re-read of the interval): the columns
equal the sandbox's truth, and the sandbox saw incremental requests only. DuckDB and PostgreSQL."""

from __future__ import annotations

from dataclasses import replace
from datetime import timedelta
from urllib.parse import parse_qs

import duckdb

from klaviyo_sandbox import testing as truth
from omniload.cli import main
from omniload.dates import parse_timestamp
from omniload.sources.klaviyo.properties import KNOWN
from omniload.sources.klaviyo.tables import TABLES

from .conftest import http_post, source_uri

START = "2024-06-01"
COLS = list(KNOWN.values())


def _ingest(sb, dest: str, *extra: str) -> int:
    return main(["ingest", "--source-uri", source_uri(sb), "--source-table", "events", "--dest-uri", dest,
                 "--dest-table", "kl.events", "--progress", "log", *extra])  # fmt: skip


def _lower_bounds(sb, since: int) -> list:
    out = []
    for _, name, q in list(sb.state.log)[since:]:
        if name == "events":
            text = parse_qs(q).get("filter", [""])[0]
            out.append(parse_timestamp(text.split("greater-or-equal(datetime,", 1)[1].split(")", 1)[0]))
    return out


def _expected(sb) -> dict[str, tuple]:
    """id -> the well-known columns as the sandbox's events hold them (its properties keep one type each)."""
    out = {}
    for e in truth.records(sb.state, "events", parse_timestamp(START + "T00:00:00+00:00"), None):
        props = e["attributes"]["event_properties"] or {}
        v = props.get("$value")
        out[e["id"]] = (float(v) if v is not None else None, *(props.get(p) for p in list(KNOWN)[1:]))
    return out


def _fill(sb, dest: str, query, monkeypatch) -> None:
    with monkeypatch.context() as m:  # the table as an older omniload loaded it: no well-known columns
        m.setitem(TABLES, "events", replace(TABLES["events"], derived={}))
        assert _ingest(sb, dest, "--interval-start", START) == 0
    assert "property_value" not in {r[0] for r in query("select * from kl.events limit 0", names=True)}
    cursor = query("select max(datetime) from kl.events")[0][0]
    http_post(sb.base_url, "/__sandbox/clock/advance?seconds=3600")
    mark = len(sb.state.log)
    assert _ingest(sb, dest) == 0
    bounds = _lower_bounds(sb, mark)
    assert bounds and min(bounds) >= parse_timestamp(cursor.isoformat()) - timedelta(days=7, hours=1)  # incremental
    got = {r[0]: tuple(r[1:]) for r in query(f"select id, {', '.join(COLS)} from kl.events")}
    want = _expected(sb)
    assert set(got) == set(want)
    assert got == want
    assert sum(1 for r in got.values() if r[0] is not None) > 100  # filled, not left empty


def test_new_derived_columns_are_filled_without_a_re_read(make_sandbox, tmp_path, monkeypatch):
    sb = make_sandbox(scale="tiny", rate_limits="off")
    db = str(tmp_path / "f.duckdb")

    def query(sql: str, names: bool = False):
        with duckdb.connect(db, read_only=True) as con:
            cur = con.execute(sql)
            return [(d[0],) for d in cur.description] if names else cur.fetchall()

    _fill(sb, f"duckdb:///{db}", query, monkeypatch)


def test_new_derived_columns_are_filled_on_postgres(make_sandbox, postgres, monkeypatch):
    sb = make_sandbox(scale="tiny", rate_limits="off")
    postgres.create_database("kl_fill")

    def query(sql: str, names: bool = False):
        con = postgres.connect("kl_fill")
        try:
            with con.cursor() as cur:
                cur.execute(sql)
                return [(d[0],) for d in cur.description] if names else cur.fetchall()
        finally:
            con.close()

    _fill(sb, postgres.uri("kl_fill"), query, monkeypatch)
