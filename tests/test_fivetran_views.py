"""``layout=fivetran`` views follow what runs and reconciles do (``_fivetran_deleted`` from the delete marks), and
bad layout or property options are refused in one line, exit 2, nothing written."""

from __future__ import annotations

import os

import duckdb

from omniload.cli import main

from .conftest import http_post, source_uri

TABLES = "events,metrics,profiles,campaigns,flows"


def _ingest(sb, db: str, query: str, *extra: str) -> int:
    return main(["ingest", "--source-uri", source_uri(sb) + query, "--source-table", TABLES, "--dest-uri",
                 f"duckdb:///{db}", "--dest-table", "k.*", "--progress", "log", *extra])  # fmt: skip


def test_views_follow_deletes_and_new_runs(make_sandbox, tmp_path, capsys):
    sb = make_sandbox(scale="tiny", rate_limits="off")
    db = str(tmp_path / "v.duckdb")
    assert _ingest(sb, db, "&layout=fivetran", "--interval-start", "2015-01-01") == 0
    assert "views k.event, k.person, k.campaign, k.flow, k.metric are current" in capsys.readouterr().err
    with duckdb.connect(db, read_only=True) as con:
        assert con.execute("select count(*) from k.event where _fivetran_deleted").fetchall()[0][0] == 0
        assert con.execute("select count(*) from k.event where type is null").fetchall()[0][0] == 0
    gone = http_post(sb.base_url, "/__sandbox/delete?resource=profiles&count=3")["deleted"]
    assert _ingest(sb, db, "&layout=fivetran") == 0  # profiles reconciled: the profiles and their events marked
    with duckdb.connect(db, read_only=True) as con:
        persons = {r[0] for r in con.execute("select id from k.person where _fivetran_deleted").fetchall()}
        events = con.execute("select count(*), count(*) filter (where _fivetran_deleted) from k.event "
                             f"where person_id in ({','.join(repr(g) for g in gone)})").fetchall()[0]  # fmt: skip
        table_rows = con.execute("select count(*) from k.events").fetchall()[0][0]
        view_rows = con.execute("select count(*) from k.event").fetchall()[0][0]
    assert persons == set(gone)
    assert events[0] > 0 and events[0] == events[1]
    assert view_rows == table_rows


def test_bad_layout_and_property_options_are_refused(sandbox, tmp_path, capsys):
    cases = [("&layout=stitch", "layout 'stitch' is not allowed; allowed: fivetran"),
             ("&properties=flat", "properties 'flat' is not allowed; allowed: columns, json"),
             ("&properties=columns&property_columns_max=0", "property_columns_max '0' must be a whole number from 1 to 1000")]  # fmt: skip
    for query, message in cases:
        db = str(tmp_path / "bad.duckdb")
        assert _ingest(sandbox, db, query) == 2
        assert message in capsys.readouterr().err
        assert not os.path.exists(db)
    out = tmp_path / "files"
    code = main(["ingest", "--source-uri", source_uri(sandbox) + "&layout=fivetran", "--source-table", "metrics",
                 "--dest-uri", f"parquet:///{out}", "--progress", "log"])  # fmt: skip
    assert code == 2
    assert "layout=) need a SQL destination with views, DuckDB or PostgreSQL" in capsys.readouterr().err
    assert not out.exists() or not any(out.rglob("*.parquet"))


def test_postgres_views_stay_under_the_views_built_on_them(sandbox, postgres):
    """PostgreSQL refuses to drop a view other views read, and dbt_klaviyo's staging models are views over ours: a
    later run that adds columns (properties=columns here) replaces the views in place, each new column last, and
    the views built on them still read them (each run used to end in an error, the views never current again)."""
    postgres.create_database("kl_views")
    uri = postgres.uri("kl_views")

    def run(query: str) -> int:
        return main(["ingest", "--source-uri", source_uri(sandbox) + "&layout=fivetran" + query, "--source-table",
                     "events,metrics,profiles", "--dest-uri", uri, "--dest-table", "klaviyo.*", "--interval-start",
                     "2015-01-01", "--progress", "log"])  # fmt: skip

    def columns(cur, view: str) -> list[str]:
        cur.execute("select column_name from information_schema.columns where table_schema = 'klaviyo' and "
                    "table_name = %s order by ordinal_position", (view,))  # fmt: skip
        return [r[0] for r in cur.fetchall()]

    assert run("") == 0
    con = postgres.connect("kl_views")
    con.autocommit = True
    try:
        with con.cursor() as cur:
            cur.execute("create schema stg")
            before = {}
            for view in ("event", "person"):  # as dbt_klaviyo's tmp models: select * from the source
                cur.execute(f"create view stg.{view}_tmp as select * from klaviyo.{view}")
                before[view] = columns(cur, view)
        assert run("&properties=columns") == 0
        with con.cursor() as cur:
            for view, prefix in (("event", "property_"), ("person", "custom_")):
                after = columns(cur, view)
                assert after[: len(before[view])] == before[view] and any(
                    c.startswith(prefix) for c in after[len(before[view]) :]
                )
                cur.execute(f"select count(*) from stg.{view}_tmp")
                assert cur.fetchone()[0] > 0
    finally:
        con.close()
