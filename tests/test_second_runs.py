"""README's promises about `omniload ingest` flags on a second or later run (the first run is tested elsewhere): which
rows a destination table holds after strategies run twice or switched between runs, intervals that end in the past,
deletes between runs, a full refresh of one table among several."""

from __future__ import annotations

from datetime import UTC, datetime

import duckdb

from klaviyo_sandbox import testing as truth
from omniload.cli import main

from .conftest import http_post, source_uri
from .helpers import api_requests, assert_equals_truth, assert_rows_equal_truth, by_id, expected_rows, ingest, rows
from .test_accounts import account_of, of_account
from .test_destinations import _read_files, ingest_to
from .test_reports import table_rows

DAY = 86400


def ingest_uri(uri: str, tables: str, db: str, *extra: str) -> int:
    return main(["ingest", "--source-uri", uri, "--source-table", tables, "--dest-uri", f"duckdb:///{db}",
                 "--progress", "log", *extra])  # fmt: skip


def _advance(sb, seconds: int) -> None:
    http_post(sb.base_url, f"/__sandbox/clock/advance?seconds={seconds}")


def _delete(sb, resource: str, count: int) -> list[str]:
    return http_post(sb.base_url, f"/__sandbox/delete?resource={resource}&count={count}")["deleted"]


def _newest_versions(db: str, table: str) -> dict:
    """id -> the row of the newest load holding it (an appended table keeps every version)."""
    out: dict = {}
    for r in sorted(table_rows(db, table), key=lambda r: r["_dlt_load_id"]):
        out[r["id"]] = r
    return out


def _loaded(db: str, table: str) -> dict:
    """The rows as loaded (the reconcile's mark column aside: a second run adds it)."""
    return {k: {c: v for c, v in r.items() if c != "_omniload_deleted_at"} for k, r in rows(db, table).items()}


def _middle(sb, name: str, cursor: str) -> str:
    stamps = sorted(r["attributes"][cursor] for r in truth.records(sb.state, name))
    return stamps[len(stamps) // 2]


def test_replace_of_a_past_interval_then_an_incremental_run_loads_everything_since(make_sandbox, tmp_path):
    """A loaded table replaced by an interval that ends in the past holds that interval's rows; the next run without
    flags must then resume after the newest row the table holds (README: "resumes after the newest loaded record"),
    not after the cursor the earlier full load saved: the rows between are in no run's interval otherwise."""
    sb = make_sandbox(scale="tiny", rate_limits="off")
    db = str(tmp_path / "k.duckdb")
    assert ingest(sb, "events,profiles", db) == 0
    cuts = {"events": _middle(sb, "events", "datetime"), "profiles": _middle(sb, "profiles", "updated")}
    for name, cut in cuts.items():
        assert ingest(sb, name, db, "--incremental-strategy", "replace", "--interval-start", "2000-01-01",
                      "--interval-end", cut) == 0  # fmt: skip
        got = assert_equals_truth(db, sb, name, datetime(2000, 1, 1, tzinfo=UTC), datetime.fromisoformat(cut))
        assert 0 < len(got) < len(expected_rows(sb, name))
    _advance(sb, 3600)
    assert ingest(sb, "events,profiles", db) == 0
    assert_equals_truth(db, sb, "events")
    assert_equals_truth(db, sb, "profiles")


def test_replace_of_an_empty_interval_then_an_incremental_run_loads_everything(make_sandbox, tmp_path):
    """Replaced by an interval that holds no record: the table holds none; the next run loads every record."""
    sb = make_sandbox(scale="tiny", rate_limits="off")
    db = str(tmp_path / "k.duckdb")
    assert ingest(sb, "profiles", db) == 0
    assert ingest(sb, "profiles", db, "--incremental-strategy", "replace", "--interval-start", "2001-01-01",
                  "--interval-end", "2001-02-01") == 0  # fmt: skip
    assert rows(db, "profiles") == {}
    assert ingest(sb, "profiles", db) == 0
    assert_equals_truth(db, sb, "profiles")


def test_a_past_interval_end_then_none_loads_everything(make_sandbox, tmp_path):
    """--interval-end in the past (no start), then a run without either: every record, on the tables filtered by the
    server and those filtered on the client alike."""
    sb = make_sandbox(scale="tiny", rate_limits="off")
    db = str(tmp_path / "k.duckdb")
    names = {"events": "datetime", "profiles": "updated", "metrics": "updated", "lists": "updated",
             "segments": "updated", "catalog-items": "updated"}  # fmt: skip
    for name, cursor in names.items():
        cut = _middle(sb, name, cursor)
        assert ingest(sb, name, db, "--interval-end", cut) == 0
        got = assert_equals_truth(db, sb, name, None, datetime.fromisoformat(cut))
        assert 0 < len(got) < len(expected_rows(sb, name)), name
    _advance(sb, 3600)
    tables = ",".join(names)
    assert ingest(sb, tables, db) == 0
    for name in names:
        assert_equals_truth(db, sb, name)


def test_a_past_window_merged_into_a_loaded_table_keeps_the_cursor(make_sandbox, tmp_path):
    """A full load, then a merge of a window in the past (a backfill), then a day on: the next run resumes where the
    full load left off and the table equals the truth."""
    sb = make_sandbox(scale="tiny", rate_limits="off")
    db = str(tmp_path / "k.duckdb")
    assert ingest(sb, "events,profiles", db) == 0
    assert ingest(sb, "events,profiles", db, "--interval-start", "2024-01-01", "--interval-end", "2025-01-01") == 0
    assert_equals_truth(db, sb, "events")
    _advance(sb, DAY)
    before = api_requests(sb)
    assert ingest(sb, "events,profiles", db, "--reconcile", "none") == 0
    assert api_requests(sb) - before < 20  # resumed: the lookback's pages, not the whole table
    assert_equals_truth(db, sb, "events")
    assert_equals_truth(db, sb, "profiles")


def test_delete_insert_twice_with_changes_and_deletes_between(make_sandbox, tmp_path):
    """delete+insert merges on the primary key: after a day of changes and some deletes, the table is the truth
    (deleted records marked by the reconcile)."""
    sb = make_sandbox(scale="tiny", rate_limits="off", seed=7)
    db = str(tmp_path / "k.duckdb")
    for _ in range(2):
        assert ingest(sb, "profiles,events,lists", db, "--incremental-strategy", "delete+insert") == 0
        _advance(sb, DAY)
        _delete(sb, "profiles", 5)
        _delete(sb, "lists", 1)
    assert ingest(sb, "profiles,events,lists", db, "--incremental-strategy", "delete+insert",
                  "--reconcile", "all") == 0  # fmt: skip
    for name in ("profiles", "events", "lists"):
        got = {k: r for k, r in rows(db, name).items() if r.get("_omniload_deleted_at") is None}
        assert_rows_equal_truth(got, sb, name)


def test_append_twice_appends_the_re_read_rows_and_the_newest_versions_are_the_truth(make_sandbox, tmp_path):
    """append appends each run's rows (README: "append appends them", even when nothing is new): every record is
    there, its newest version as the source holds it now."""
    sb = make_sandbox(scale="tiny", rate_limits="off", seed=8)
    db = str(tmp_path / "k.duckdb")
    assert ingest(sb, "profiles", db, "--incremental-strategy", "append") == 0
    n = len(table_rows(db, "profiles"))
    assert ingest(sb, "profiles", db, "--incremental-strategy", "append") == 0  # nothing new: the lookback's rows
    assert len(table_rows(db, "profiles")) > n
    _advance(sb, DAY)
    assert ingest(sb, "profiles", db, "--incremental-strategy", "append") == 0
    assert_rows_equal_truth(_newest_versions(db, "profiles"), sb, "profiles")


def test_merge_then_append_then_merge(make_sandbox, tmp_path):
    """A strategy switched between runs: merge, append (a second copy of the rows it read), merge again: the rows
    each record's newest load wrote are the truth."""
    sb = make_sandbox(scale="tiny", rate_limits="off", seed=9)
    db = str(tmp_path / "k.duckdb")
    assert ingest(sb, "profiles,events", db) == 0
    _advance(sb, DAY)
    assert ingest(sb, "profiles,events", db, "--incremental-strategy", "append") == 0
    _advance(sb, DAY)
    assert ingest(sb, "profiles,events", db, "--incremental-strategy", "merge") == 0
    for name in ("profiles", "events"):
        assert_rows_equal_truth(_newest_versions(db, name), sb, name)


def test_scd2_twice_with_deletes_between_marks_the_deleted_records(make_sandbox, tmp_path):
    """scd2 keeps versions; a record deleted between the runs is marked by the reconcile (every version of it), the
    active versions of the others are the truth, and a second run with nothing new adds no version."""
    sb = make_sandbox(scale="tiny", rate_limits="off", seed=10)
    db = str(tmp_path / "k.duckdb")
    assert ingest(sb, "profiles", db, "--incremental-strategy", "scd2") == 0
    n = len(table_rows(db, "profiles"))
    assert ingest(sb, "profiles", db, "--incremental-strategy", "scd2") == 0
    assert len(table_rows(db, "profiles")) == n  # the lookback's rows again: the same versions
    gone = set(_delete(sb, "profiles", 4))
    _advance(sb, DAY)
    assert ingest(sb, "profiles", db, "--incremental-strategy", "scd2", "--reconcile", "profiles") == 0
    con = duckdb.connect(db, read_only=True)
    try:
        active = by_id(con.execute("select * from profiles where _dlt_valid_to is null and _omniload_deleted_at is "
                                   "null"), "profiles")  # fmt: skip
        marked = {
            r[0] for r in con.execute("select id from profiles where _omniload_deleted_at is not null").fetchall()
        }
    finally:
        con.close()
    assert marked == gone
    assert_rows_equal_truth(active, sb, "profiles")


def test_full_refresh_of_one_table_among_several(make_sandbox, tmp_path):
    """Several tables in one schema; a --full-refresh of one of them reloads it alone: the others keep their rows and
    cursors (the next run of all of them resumes them), and every table is the truth."""
    sb = make_sandbox(scale="tiny", rate_limits="off", seed=11)
    db = str(tmp_path / "k.duckdb")
    names = ("events", "profiles", "lists", "tags")
    assert ingest(sb, ",".join(names), db) == 0
    _advance(sb, DAY)
    before = {n: rows(db, n) for n in ("events", "lists")}
    assert ingest(sb, "profiles", db, "--full-refresh") == 0
    assert_equals_truth(db, sb, "profiles")
    assert {n: rows(db, n) for n in ("events", "lists")} == before
    seen = len(sb.state.log)
    assert ingest(sb, ",".join(names), db) == 0
    events = [q for _, name, q in list(sb.state.log)[seen:] if name == "events"]
    assert events and all("greater-or-equal" in q or "greater-than" in q for q in events)  # resumed, not re-read
    for name in names:
        assert_equals_truth(db, sb, name)


def test_replace_twice_with_the_same_interval_start_after_a_day(make_sandbox, tmp_path):
    """replace never resumes: the same --interval-start a day on replaces the table with that interval's rows now."""
    sb = make_sandbox(scale="tiny", rate_limits="off", seed=12)
    db = str(tmp_path / "k.duckdb")
    start = "2026-01-01"
    for _ in range(2):
        assert ingest(sb, "events,profiles", db, "--incremental-strategy", "replace", "--interval-start", start) == 0
        _advance(sb, DAY)
    assert ingest(sb, "events,profiles", db, "--incremental-strategy", "replace", "--interval-start", start) == 0
    for name in ("events", "profiles"):
        assert_equals_truth(db, sb, name, datetime.fromisoformat(start).replace(tzinfo=UTC))


def test_replace_again_of_child_tables_after_changes_and_deletes(make_sandbox, tmp_path):
    """Child tables (read parent by parent, with progress of their own) replaced again without --interval-start,
    after members left and flows were deleted: each is its truth now."""
    sb = make_sandbox(scale="tiny", rate_limits="off", seed=13)
    db = str(tmp_path / "k.duckdb")
    names = ("list-memberships", "flow-actions")
    assert ingest(sb, ",".join(names), db) == 0
    _advance(sb, DAY)
    _delete(sb, "list-memberships", 5)
    _delete(sb, "flows", 1)
    assert ingest(sb, ",".join(names), db, "--incremental-strategy", "replace") == 0
    for name in names:
        assert_equals_truth(db, sb, name)


def test_a_past_interval_end_after_a_full_load_changes_nothing(make_sandbox, tmp_path):
    """Loaded up to now, then a run with an --interval-end before its saved cursor and no start (the interval is
    [the saved cursor, end): empty): the table and its cursor stay; the next run goes on."""
    sb = make_sandbox(scale="tiny", rate_limits="off", seed=14)
    db = str(tmp_path / "k.duckdb")
    assert ingest(sb, "events,profiles", db) == 0
    before = {n: _loaded(db, n) for n in ("events", "profiles")}
    assert ingest(sb, "events,profiles", db, "--interval-end", "2025-06-01") == 0
    assert {n: _loaded(db, n) for n in ("events", "profiles")} == before
    _advance(sb, DAY)
    assert ingest(sb, "events,profiles", db) == 0
    assert_equals_truth(db, sb, "events")
    assert_equals_truth(db, sb, "profiles")


def test_scd2_a_restored_record_is_active_and_unmarked(make_sandbox, tmp_path):
    """scd2: a profile deleted (marked by the reconcile), then restored: its new version is active and unmarked."""
    sb = make_sandbox(scale="tiny", rate_limits="off", seed=15)
    db = str(tmp_path / "k.duckdb")
    assert ingest(sb, "profiles", db, "--incremental-strategy", "scd2") == 0
    gone = _delete(sb, "profiles", 2)
    assert ingest(sb, "profiles", db, "--incremental-strategy", "scd2", "--reconcile", "profiles") == 0
    http_post(sb.base_url, f"/__sandbox/delete?resource=profiles&restore=1&ids={','.join(gone)}")
    _advance(sb, 60)
    assert ingest(sb, "profiles", db, "--incremental-strategy", "scd2", "--reconcile", "profiles") == 0
    con = duckdb.connect(db, read_only=True)
    try:
        active = by_id(con.execute("select * from profiles where _dlt_valid_to is null"), "profiles")
    finally:
        con.close()
    assert {k for k, r in active.items() if r["_omniload_deleted_at"] is not None} == set()
    assert_rows_equal_truth(active, sb, "profiles")


def test_keyless_tables_with_merge_or_append_asked(make_sandbox, tmp_path):
    """Tables read whole (tags, coupons) with --incremental-strategy merge, then append: each run does what it says
    (merge: one row per record, as the source holds them; append: the rows again beside them)."""
    sb = make_sandbox(scale="tiny", rate_limits="off", seed=16)
    db = str(tmp_path / "k.duckdb")
    assert ingest(sb, "tags,coupons", db) == 0
    _advance(sb, 30 * DAY)  # new tags appear
    assert ingest(sb, "tags,coupons", db, "--incremental-strategy", "merge") == 0
    for name in ("tags", "coupons"):
        assert_equals_truth(db, sb, name)
    n = {name: len(table_rows(db, name)) for name in ("tags", "coupons")}
    assert ingest(sb, "tags,coupons", db, "--incremental-strategy", "append") == 0
    for name in ("tags", "coupons"):
        assert len(table_rows(db, name)) == 2 * n[name]
        assert_rows_equal_truth(_newest_versions(db, name), sb, name)


def test_ingestr_only_flags_on_a_later_run_change_no_row(make_sandbox, tmp_path):
    """--page-size, --yield-limit, --primary-key and --incremental-key (accepted, ignored) on a later run: every
    record still loads, one row each."""
    sb = make_sandbox(scale="tiny", rate_limits="off", seed=17)
    db = str(tmp_path / "k.duckdb")
    assert ingest(sb, "events,profiles", db) == 0
    _advance(sb, DAY)
    assert ingest(sb, "events", db, "--page-size", "1", "--yield-limit", "1") == 0
    assert ingest(sb, "profiles", db, "--page-size", "1", "--yield-limit", "1", "--primary-key", "email",
                  "--incremental-key", "created") == 0  # fmt: skip
    assert_equals_truth(db, sb, "events")
    assert_equals_truth(db, sb, "profiles")


def _scoped(sb, tables: str, db: str, *extra: str) -> int:
    return ingest_uri(f"{source_uri(sb)}&account_column=true", tables, db, *extra)


def test_one_account_replaced_by_a_past_interval_then_an_incremental_run(make_sandbox, tmp_path):
    """Several accounts' table (account_column=true): one account's rows replaced by an interval that ends in the past,
    then a run without flags: that account's rows are its truth again (it resumes after the newest row it holds),
    the other account's rows untouched."""
    a = make_sandbox(scale="tiny", rate_limits="off", seed=3)
    b = make_sandbox(scale="tiny", rate_limits="off", seed=4)
    db = str(tmp_path / "k.duckdb")
    for sb in (a, b):
        assert _scoped(sb, "events,profiles", db) == 0
    cuts = {"events": _middle(a, "events", "datetime"), "profiles": _middle(a, "profiles", "updated")}
    for name, cut in cuts.items():
        assert _scoped(a, name, db, "--incremental-strategy", "replace", "--interval-start", "2000-01-01",
                       "--interval-end", cut) == 0  # fmt: skip
        got = of_account(db, name, account_of(a))
        assert_rows_equal_truth(got, a, name, datetime(2000, 1, 1, tzinfo=UTC), datetime.fromisoformat(cut))
    _advance(a, 3600)
    assert _scoped(a, "events,profiles", db) == 0
    for sb in (a, b):
        for name in ("events", "profiles"):
            assert_rows_equal_truth(of_account(db, name, account_of(sb)), sb, name)
    # replaced by an interval holding none of its records: none of its rows left; the next run loads them all
    assert _scoped(a, "profiles", db, "--incremental-strategy", "replace", "--interval-start", "2001-01-01",
                   "--interval-end", "2001-02-01") == 0  # fmt: skip
    assert of_account(db, "profiles", account_of(a)) == {}
    assert _scoped(a, "profiles", db) == 0
    for sb in (a, b):
        assert_rows_equal_truth(of_account(db, "profiles", account_of(sb)), sb, "profiles")


def _newest_in_files(folder) -> dict:
    """id -> each key's newest row (largest _dlt_load_id) of a Parquet table, tombstones left out."""
    newest: dict = {}
    for r in sorted(_read_files(folder, "parquet"), key=lambda r: r["_dlt_load_id"]):
        newest[r["id"]] = r
    return {k: r for k, r in newest.items() if r.get("_omniload_deleted_at") is None}


def test_parquet_a_past_interval_end_then_none_and_a_replace_of_a_past_interval(make_sandbox, tmp_path):
    """Files (each run appends the new versions, a reader takes each key's newest): --interval-end in the past then
    none gives every record; so does a replace of a past interval followed by a run without flags."""
    sb = make_sandbox(scale="tiny", rate_limits="off", seed=18)
    out = tmp_path / "files"
    dest = f"parquet:///{out}"
    cut = _middle(sb, "profiles", "updated")
    assert ingest_to(sb, "events,profiles", dest, "--interval-end", cut) == 0
    _advance(sb, 3600)
    assert ingest_to(sb, "events,profiles", dest) == 0
    for name in ("events", "profiles"):
        assert_rows_equal_truth(_newest_in_files(out / "klaviyo" / name), sb, name)
    assert ingest_to(sb, "profiles", dest, "--incremental-strategy", "replace", "--interval-start", "2000-01-01",
                     "--interval-end", cut) == 0  # fmt: skip
    assert_rows_equal_truth(_newest_in_files(out / "klaviyo" / "profiles"), sb, "profiles", None,
                            datetime.fromisoformat(cut))  # fmt: skip
    _advance(sb, 3600)
    assert ingest_to(sb, "profiles", dest) == 0
    assert_rows_equal_truth(_newest_in_files(out / "klaviyo" / "profiles"), sb, "profiles")
