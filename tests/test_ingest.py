"""`omniload ingest` from the sandbox into DuckDB: every table equals the sandbox's truth, incrementally too."""

from __future__ import annotations

import json
from datetime import UTC, datetime

import duckdb
import pytest

from klaviyo_sandbox import testing as truth
from omniload.sources.klaviyo.tables.core import CORE

from .conftest import http_post
from .helpers import DLT_TYPES, api_requests, assert_equals_truth, column_types, expected_rows, ingest, rows

TABLES = {t.name: t for t in CORE}  # what 'all' loads: the list endpoints (reports: test_reports.py)

ALL = sorted(TABLES)


@pytest.mark.parametrize("name", ALL)
def test_table_equals_sandbox_truth_with_declared_types(sandbox, tmp_path, name):
    db = str(tmp_path / "k.duckdb")
    assert ingest(sandbox, name, db, "--interval-start", "2022-01-01") == 0
    assert_equals_truth(db, sandbox, name, datetime(2022, 1, 1, tzinfo=UTC))
    types = column_types(db, name.replace("-", "_"))
    for col, typ in TABLES[name].all_columns.items():
        assert types[col] == DLT_TYPES[typ], f"{name}.{col}: {types[col]}"


def test_all_tables_then_incremental_after_clock_advance(make_sandbox, tmp_path):
    sb = make_sandbox(scale="tiny", rate_limits="off", seed=3)
    db = str(tmp_path / "k.duckdb")
    assert ingest(sb, "all", db, "--dest-table", "kl.*") == 0
    first = {n: rows(db, n.replace("-", "_"), "kl") for n in ALL}
    http_post(sb.base_url, "/__sandbox/clock/advance?seconds=172800")
    assert ingest(sb, "all", db, "--dest-table", "kl.*") == 0
    for name in ALL:
        table = name.replace("-", "_")
        got = assert_equals_truth(db, sb, name, table=table, schema="kl")
        spec = TABLES[name]
        loads = sorted({r["_dlt_load_id"] for r in got.values()})
        second = {rid for rid, r in got.items() if r["_dlt_load_id"] == loads[-1]}
        if spec.cursor is None:
            assert len(got) >= len(first[name])
            continue
        prev = max(r[spec.cursor] for r in first[name].values())
        # the run starts its lookback before the cursor: two days on, the deep one where the table has one
        reread = (prev - max(spec.lookback, spec.deep_lookback)).replace(microsecond=0)
        changed = {rid for rid, r in got.items() if r[spec.cursor] >= reread}
        assert second == changed, f"{name}: the second run loaded {len(second)} rows, {len(changed)} changed or re-read"
        assert any(r[spec.cursor] > prev for r in got.values()), f"{name}: nothing new after the clock moved"


def test_second_run_without_changes_is_a_few_requests(make_sandbox, tmp_path):
    sb = make_sandbox(scale="small", rate_limits="off")
    db = str(tmp_path / "k.duckdb")
    assert ingest(sb, "events,profiles,flows", db) == 0
    before = api_requests(sb)
    assert ingest(sb, "events,profiles,flows", db, "--reconcile", "none") == 0  # the load alone (no delete scan)
    assert api_requests(sb) - before == 4  # one request per table and partition (flows: live and archived)


def test_boundary_record_is_loaded_once(make_sandbox, tmp_path):
    sb = make_sandbox(scale="tiny", rate_limits="off")
    db = str(tmp_path / "k.duckdb")
    events = truth.records(sb.state, "events")
    # two events share each timestamp; split the interval exactly at one of them
    edge = events[len(events) // 2]["attributes"]["datetime"]
    assert sum(e["attributes"]["datetime"] == edge for e in events) == 2
    profiles = truth.records(sb.state, "profiles")
    p_edge = sorted(p["attributes"]["updated"] for p in profiles)[len(profiles) // 2]
    for name, cut in (("events", edge), ("profiles", p_edge)):
        assert ingest(sb, name, db, "--interval-start", "2020-01-01", "--interval-end", cut) == 0
        assert ingest(sb, name, db, "--interval-start", cut) == 0
        got = assert_equals_truth(db, sb, name)
        on_edge = [r for r in got.values() if r[TABLES[name].cursor] == datetime.fromisoformat(cut)]
        assert on_edge and len({r["id"] for r in on_edge}) == len(on_edge)


def test_parallel_and_serial_runs_give_identical_tables(make_sandbox, tmp_path):
    sb = make_sandbox(scale="small", rate_limits="off")
    serial, parallel = str(tmp_path / "s.duckdb"), str(tmp_path / "p.duckdb")
    for name in ("events", "profiles", "campaigns", "images"):
        assert ingest(sb, name, serial, "--extract-parallelism", "1") == 0
        assert ingest(sb, name, parallel, "--extract-parallelism", "12") == 0
        strip = lambda rs: {k: {c: v for c, v in r.items() if not c.startswith("_dlt")} for k, r in rs.items()}  # noqa: E731
        table = name.replace("-", "_")
        assert strip(rows(serial, table)) == strip(rows(parallel, table))
    assert len(rows(serial, "events")) == len(expected_rows(sb, "events")) > 49_990  # all but those stamped at now


def test_interval_end_is_exclusive_and_state_resumes(make_sandbox, tmp_path):
    sb = make_sandbox(scale="tiny", rate_limits="off")
    db = str(tmp_path / "k.duckdb")
    start, end = datetime(2025, 1, 1, tzinfo=UTC), datetime(2025, 3, 1, tzinfo=UTC)
    assert (
        ingest(sb, "events", db, "--interval-start", "2025-01-01", "--interval-end", "2025-03-01T00:00:00+00:00") == 0
    )
    assert_equals_truth(db, sb, "events", start, end)
    assert ingest(sb, "events", db) == 0  # resumes from the newest loaded event, up to now
    assert_equals_truth(db, sb, "events", start)


def test_full_refresh_reloads_everything(make_sandbox, tmp_path):
    sb = make_sandbox(scale="tiny", rate_limits="off")
    db = str(tmp_path / "k.duckdb")
    assert ingest(sb, "profiles", db, "--interval-start", "2026-01-01") == 0
    assert ingest(sb, "profiles", db, "--full-refresh") == 0
    assert_equals_truth(db, sb, "profiles")


def test_campaigns_cover_every_channel_and_archived(sandbox, tmp_path):
    db = str(tmp_path / "k.duckdb")
    assert ingest(sandbox, "campaigns", db) == 0
    got = rows(db, "campaigns")
    assert {r["channel"] for r in got.values()} == {"email", "sms", "mobile_push"}
    assert {r["archived"] for r in got.values()} == {True, False}


def test_dest_table_names_schema_and_table(sandbox, tmp_path):
    db = str(tmp_path / "k.duckdb")
    assert ingest(sandbox, "tags", db, "--dest-table", "marketing.klaviyo_tags") == 0
    assert_equals_truth(db, sandbox, "tags", table="klaviyo_tags", schema="marketing")


def test_memory_destination_runs(sandbox, capsys):
    from omniload.cli import main

    from .conftest import source_uri

    code = main(["ingest", "--source-uri", source_uri(sandbox), "--source-table", "metrics", "--dest-uri", "duckdb:///:memory:",
                 "--progress", "json"])  # fmt: skip
    assert code == 0
    summary = [json.loads(line) for line in capsys.readouterr().out.splitlines() if '"summary"' in line]
    assert [(s["table"], s["status"], s["rows"]) for s in summary] == [
        ("metrics", "ok", len(expected_rows(sandbox, "metrics")))
    ]


def test_state_lives_in_the_destination(make_sandbox, tmp_path):
    sb = make_sandbox(scale="tiny", rate_limits="off")
    db = str(tmp_path / "k.duckdb")
    assert ingest(sb, "forms", db) == 0
    con = duckdb.connect(db, read_only=True)
    names = [r[0] for r in con.execute("select pipeline_name from main._dlt_pipeline_state").fetchall()]
    con.close()
    assert "omniload__main__forms" in names
    before = api_requests(sb)
    assert (
        ingest(sb, "forms", db, "--reconcile", "none") == 0
    )  # a fresh process-local workdir: the cursor came from DuckDB
    assert api_requests(sb) - before == 1


def test_nothing_new_loads_nothing_and_keyless_tables_reload_only_on_change(make_sandbox, tmp_path):
    sb = make_sandbox(scale="tiny", rate_limits="off")
    db = str(tmp_path / "k.duckdb")
    assert ingest(sb, "events,tags,flows", db) == 0

    def loads() -> int:
        con = duckdb.connect(db, read_only=True)
        try:
            return con.execute("select count(*) from main._dlt_loads").fetchone()[0]
        finally:
            con.close()

    before = loads()
    assert ingest(sb, "events,tags,flows", db) == 0
    assert loads() == before  # nothing new: no load, no commit
    http_post(sb.base_url, "/__sandbox/clock/advance?seconds=2592000")  # a month: new tags appear
    assert ingest(sb, "events,tags,flows", db) == 0
    assert loads() == before + 3
    for name in ("events", "tags", "flows"):
        assert_equals_truth(db, sb, name)


def test_replace_strategy_across_checkpoint_slices_keeps_every_slice(make_sandbox, tmp_path):
    sb = make_sandbox(scale="tiny,events=6000", rate_limits="off")
    db = str(tmp_path / "k.duckdb")
    assert ingest(sb, "events", db, "--incremental-strategy", "replace", "--checkpoint-rows", "1000") == 0
    assert_equals_truth(db, sb, "events")
    assert (
        ingest(
            sb,
            "events",
            db,
            "--incremental-strategy",
            "replace",
            "--checkpoint-rows",
            "1000",
            "--interval-start",
            "2026-01-01",
        )
        == 0
    )  # replace: the table now holds only this interval
    got = rows(db, "events")
    assert got and min(r["datetime"] for r in got.values()) >= datetime(2026, 1, 1, tzinfo=UTC)
    assert_equals_truth(db, sb, "events", datetime(2026, 1, 1, tzinfo=UTC))


def test_replace_again_without_interval_start_reloads_the_whole_table(make_sandbox, tmp_path):
    """A table loaded, then --incremental-strategy replace with no --interval-start: the whole table again (it
    replaced the table with the rows since the saved cursor alone: every older row lost)."""
    sb = make_sandbox(scale="tiny", rate_limits="off")
    db = str(tmp_path / "k.duckdb")
    assert ingest(sb, "events,profiles", db) == 0
    http_post(sb.base_url, "/__sandbox/clock/advance?seconds=864000")  # ten days: new events, changed profiles
    assert ingest(sb, "events,profiles", db, "--incremental-strategy", "replace") == 0
    assert_equals_truth(db, sb, "events")
    assert_equals_truth(db, sb, "profiles")


def test_a_past_interval_end_loads_nothing_stamped_after_it(make_sandbox, tmp_path):
    """Tables filtered on the client (metrics, catalog items) or with only a lower server bound (lists, segments):
    an --interval-end in the past ends the interval; only a run that reads up to the server's now keeps what
    is stamped after its end (in the future) in its last slice."""
    sb = make_sandbox(scale="tiny", rate_limits="off")
    db = str(tmp_path / "k.duckdb")
    for name in ("metrics", "lists", "catalog-items", "segments"):
        stamps = sorted(r["attributes"][TABLES[name].cursor] for r in truth.records(sb.state, name))
        cut = stamps[len(stamps) // 2]
        assert ingest(sb, name, db, "--interval-start", "2000-01-01", "--interval-end", cut) == 0
        got = assert_equals_truth(db, sb, name, datetime(2000, 1, 1, tzinfo=UTC), datetime.fromisoformat(cut))
        assert 0 < len(got) < len(stamps), name
