"""The Klaviyo source used from a plain dlt pipeline, as a dlt user would, against the sandbox: every table
family (list, child, an include table riding with its parent, report) equals the sandbox's truth, and a second
run continues from the saved cursor less the table's lookback, as the CLI does (omniload.reading)."""

from __future__ import annotations

import json
from datetime import timedelta

import dlt
import duckdb
import pytest

from klaviyo_sandbox import testing as truth
from omniload.errors import UsageError
from omniload.sources.klaviyo import klaviyo_source
from omniload.sources.klaviyo.options import from_uri, parse
from omniload.sources.klaviyo.tables.relationships import RELATIONSHIPS

from .conftest import KEY, http_post
from .helpers import assert_rows_equal_truth, by_id
from .test_reports import END, MESSAGE_STATISTICS, START, fast_pacing, nonzero, placed_order  # noqa: F401 - a fixture
from .test_table_families import _additional


def _rows(db: str, table: str) -> dict[str, dict]:
    con = duckdb.connect(db, read_only=True)
    try:
        return by_id(con.execute(f'select * from klaviyo."{table}"'), table)
    finally:
        con.close()


def _pipeline(tmp_path, db: str):
    return dlt.pipeline("kl_dlt_test", destination=dlt.destinations.duckdb(db), dataset_name="klaviyo",
                        pipelines_dir=str(tmp_path / "pipelines"))  # fmt: skip


def _own_reads(sb) -> list[str]:
    """Requests event_attributions made itself (its sparse fieldset on /api/events; events asks for none)."""
    return [q for _, name, q in sb.state.log if name == "events" and "fields[event]=datetime" in q]


def test_plain_dlt_pipeline_loads_then_continues_incrementally(make_sandbox, tmp_path, monkeypatch):
    monkeypatch.setenv("NORMALIZE__PARQUET_NORMALIZER__ADD_DLT_LOAD_ID", "true")  # which load wrote a row
    sb = make_sandbox(scale="tiny", rate_limits="off", seed=5)
    db = str(tmp_path / "dlt.duckdb")
    pipeline = _pipeline(tmp_path, db)
    tables = ["events", "tags", "catalog-items"]
    pipeline.run(klaviyo_source(api_key=KEY, tables=tables, base_url=sb.base_url))
    for name in tables:
        assert_rows_equal_truth(_rows(db, name.replace("-", "_")), sb, name)
    cursor = max(r["datetime"] for r in _rows(db, "events").values())
    http_post(sb.base_url, "/__sandbox/clock/advance?seconds=86400")
    before = sb.state.requests["total"]
    info = pipeline.run(klaviyo_source(api_key=KEY, tables=["events"], base_url=sb.base_url))
    assert not info.has_failed_jobs
    assert_rows_equal_truth(_rows(db, "events"), sb, "events")  # merged: new events added, none duplicated
    assert sb.state.requests["total"] - before < 10  # read from the saved cursor, not from the beginning
    got = _rows(db, "events")
    loads = sorted({r["_dlt_load_id"] for r in got.values()})
    again = [r["datetime"] for r in got.values() if r["_dlt_load_id"] == loads[-1]]
    assert cursor - timedelta(days=1) <= min(again) < cursor - timedelta(hours=1)  # events' lookback: a day


def test_child_table_equals_truth(make_sandbox, tmp_path):
    sb = make_sandbox(scale="tiny", rate_limits="off", seed=5)
    db = str(tmp_path / "dlt.duckdb")
    child = next(t for t in RELATIONSHIPS if t.cursor)
    _pipeline(tmp_path, db).run(klaviyo_source(api_key=KEY, tables=[child.name], base_url=sb.base_url))
    got = _rows(db, child.info.dest_name)
    assert got
    assert_rows_equal_truth(got, sb, child.name)


def test_include_table_rides_with_its_parent_and_equals_truth(make_sandbox, tmp_path):
    sb = make_sandbox(scale="tiny", rate_limits="off", seed=11)
    db = str(tmp_path / "dlt.duckdb")
    pipeline = _pipeline(tmp_path, db)
    for _run in range(2):  # a backfill, then ten days later an incremental run
        pipeline.run(klaviyo_source(api_key=KEY, tables=["event_attributions", "events"], base_url=sb.base_url))
        for name in ("events", "event_attributions"):
            assert_rows_equal_truth(_rows(db, name), sb, name)
        assert not _own_reads(sb)  # the attributions came with the events' pages
        http_post(sb.base_url, "/__sandbox/clock/advance?seconds=864000")
        sb.state.log.clear()


def test_report_table_equals_truth(make_sandbox, tmp_path):
    sb = make_sandbox(scale="tiny", rate_limits="off")
    db = str(tmp_path / "dlt.duckdb")
    name = "campaign_values_report"
    _pipeline(tmp_path, db).run(klaviyo_source(api_key=KEY, tables=[name], base_url=sb.base_url, start=START))
    con = duckdb.connect(db, read_only=True)
    try:
        cur = con.execute(f"select * from klaviyo.{name}")
        got = [dict(zip([d[0] for d in cur.description], r, strict=False)) for r in cur.fetchall()]
    finally:
        con.close()
    key = ("campaign_id", "campaign_message_id", "send_channel", "period_start", "period_end")  # one timeframe's totals
    want = truth.message_report(sb.state, "campaign", START, END, placed_order(sb), whole=True)
    assert want and nonzero(got, key, MESSAGE_STATISTICS) == want


def test_options_build_the_same_config_as_the_source_uri_and_load_an_opt_in_column(make_sandbox, tmp_path):
    """The URI's options given to klaviyo_source() are checked by the same code (one line naming the option on a bad
    value) and make the same KlaviyoConfig; an opt-in column loads through plain dlt equal to the sandbox's."""
    options = {"template_fields": "definition", "report_budget": 50, "metric_ids": ["a", "b"]}  # as a dlt user has them
    uri = f"klaviyo://?api_key={KEY}&template_fields=definition&report_budget=50&metric_ids=a,b"
    source = klaviyo_source(api_key=KEY, tables=["templates"], options=options)
    assert source.resources["templates"].columns["definition"]["data_type"] == "json"
    with pytest.raises(
        UsageError, match=r"^klaviyo_source\(\): report_budget '0' must be a whole number from 1 to 225$"
    ):
        klaviyo_source(api_key=KEY, options={"report_budget": "0"})
    sb = make_sandbox(scale="tiny", rate_limits="off", seed=5)
    db = str(tmp_path / "dlt.duckdb")
    _pipeline(tmp_path, db).run(
        klaviyo_source(api_key=KEY, tables=["templates"], base_url=sb.base_url, options=options)
    )
    got = _rows(db, "templates")
    assert_rows_equal_truth(got, sb, "templates")
    want = _additional(sb, "templates", "definition", got)
    assert (
        any(want.values())
        and {k: json.loads(r["definition"]) if r["definition"] else None for k, r in got.items()} == want
    )
    assert from_uri(uri) == parse({**options, "api_key": KEY}, "klaviyo_source()")  # the dlt source's call
