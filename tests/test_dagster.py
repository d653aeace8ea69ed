"""Klaviyo accounts as Dagster assets (omniload.integrations.dagster), materialized in-process against two sandboxes
(two accounts holding the same record ids) into one DuckDB file: each account's rows equal its truth, a rerun reads
each account from its own saved cursor, a step waits for the table's lock (the one a CLI run takes) and fails in one
line when it stays taken, and the keys appear in no Dagster event, no saved state and no local file. On PostgreSQL,
both accounts' steps of one table at once lose no row."""

from __future__ import annotations

import time
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta
from urllib.parse import parse_qs

import dagster as dg
import duckdb
import pytest
from dagster_dlt import DagsterDltResource

from omniload.destinations import parse_destination
from omniload.destinations.state import decode_state
from omniload.errors import UsageError
from omniload.integrations.dagster import klaviyo_assets, klaviyo_definitions

from .conftest import http_post
from .helpers import api_requests, assert_rows_equal_truth, by_id, expected_rows
from .test_accounts import account_of, accounts_in, of_account

TABLES = ["events", "profiles", "tags"]  # tags: replaced whole, each account its own rows
KEYS = {"a": "pk_" + "DagsterAccountA" + "0" * 19, "b": "pk_" + "DagsterAccountB" + "1" * 19}


def _materialize(assets, account: str, instance, select=None):
    return dg.materialize(assets, partition_key=account, resources={"dlt": DagsterDltResource()}, instance=instance,
                          selection=select, raise_on_error=False)  # fmt: skip


def _in_thread(assets, account: str) -> tuple[bool, list[str]]:
    """Materialize ``account``'s partition on an ephemeral instance of this thread's own (it serves one thread):
    whether it succeeded, and every message the run logged."""
    with dg.DagsterInstance.ephemeral() as instance:
        result = _materialize(assets, account, instance)
        return result.success, [str(e) for run in instance.get_runs() for e in instance.all_logs(run.run_id)]


def _failure(result) -> str:
    """The step failure's own text (what Dagster shows for it)."""
    return next(e.event_specific_data.user_failure_data.description for e in result.all_events if e.is_step_failure)


def test_two_accounts_three_tables_then_incremental(make_sandbox, tmp_path, monkeypatch):
    boxes = {"a": make_sandbox(scale="tiny", rate_limits="off", seed=3),  # two accounts holding the same record ids
             "b": make_sandbox(scale="tiny", rate_limits="off", seed=3, account_seed=4)}  # fmt: skip
    for name, sb in boxes.items():
        monkeypatch.setenv(f"KLAVIYO_{name.upper()}", f"klaviyo://?api_key={KEYS[name]}&base_url={sb.base_url}")
    db = str(tmp_path / "fleet.duckdb")
    uri = f"duckdb:///{db}"
    assets = klaviyo_assets({"a": "KLAVIYO_A", "b": "KLAVIYO_B"}, TABLES, uri, pipelines_dir=str(tmp_path / "p"))
    instance = dg.DagsterInstance.ephemeral()

    def check() -> None:  # each account's rows (by account_id) equal its sandbox's truth
        for name in TABLES:
            assert accounts_in(db, name, "klaviyo") == {account_of(sb) for sb in boxes.values()}
            for sb in boxes.values():
                assert_rows_equal_truth(of_account(db, name, account_of(sb), "klaviyo"), sb, name)

    # both accounts' partitions at once (threads, as executors would run them), while another run holds the table
    # (DuckDB: the file): the steps wait for it, then for each other's loads, and no row is lost
    with ThreadPoolExecutor(2) as pool:
        with parse_destination(uri).step_lock("klaviyo", "events", lambda _: None):
            runs = [pool.submit(_in_thread, assets, account) for account in boxes]
            time.sleep(2)
        results = [r.result() for r in runs]
    assert all(ok for ok, _ in results)
    check()
    logged = "".join(m for _, said in results for m in said)
    assert "another omniload run is loading a table of this DuckDB file; waiting up to 300s" in logged
    first = {name: api_requests(sb) for name, sb in boxes.items()}
    seen = {name: len(sb.state.log) for name, sb in boxes.items()}
    newest = {name: max(r["datetime"] for r in expected_rows(sb, "events").values()) for name, sb in boxes.items()}

    http_post(boxes["a"].base_url, "/__sandbox/clock/advance?seconds=86400")  # a day of new events in account a
    for account in boxes:
        assert _materialize(assets, account, instance).success
    check()
    for name, sb in boxes.items():  # each account read from its own saved cursor, less events' deep lookback (7d)
        assert api_requests(sb) - first[name] < first[name], (first, api_requests(sb))
        bounds = [
            parse_qs(q).get("filter", [""])[0] for _, path, q in list(sb.state.log)[seen[name] :] if path == "events"
        ]
        lowest = min(b.split("greater-or-equal(datetime,")[1][:19] for b in bounds)  # every read has a lower bound
        assert lowest >= (newest[name] - timedelta(days=7, minutes=1)).strftime("%Y-%m-%dT%H:%M:%S"), (name, bounds)

    # the keys are nowhere: not in Dagster's events, not in the saved state, not in dlt's local files
    logged += "".join(str(e) for run in instance.get_runs() for e in instance.all_logs(run.run_id))
    con = duckdb.connect(db, read_only=True)
    states = [str(decode_state(s)) for (s,) in con.execute("select state from klaviyo._dlt_pipeline_state").fetchall()]
    names = {n for (n,) in con.execute("select pipeline_name from klaviyo._dlt_pipeline_state").fetchall()}
    con.close()
    assert names == {f"omniload__klaviyo__{t}__{a}" for t in TABLES for a in boxes}  # state per account and table
    local = [f.read_bytes() for f in (tmp_path / "p").rglob("*") if f.is_file()]  # dlt's working folders, traces
    assert local
    for key in KEYS.values():
        assert key not in logged and not any(key in s for s in states) and not any(key.encode() in f for f in local)

    # a step holds the table's lock (the CLI's): taken elsewhere, the step waits, then fails in one line
    monkeypatch.setenv("OMNILOAD_LOCK_WAIT", "0.5")
    with parse_destination(uri).step_lock("klaviyo", "events", lambda _: None):
        result = _materialize(assets, "a", instance, select=[assets[0]])
    assert not result.success
    message = _failure(result)
    assert message.startswith(
        "table 'events' of account 'a': another omniload run is loading a table of this DuckDB file in "
    )
    assert "OMNILOAD_LOCK_WAIT" in message and "\n" not in message.strip()

    monkeypatch.delenv("KLAVIYO_B")
    message = _failure(_materialize(assets, "b", instance, select=[assets[0]]))
    assert message.strip() == ("table 'events' of account 'b': environment variable KLAVIYO_B is not "
                               "set; set it to the account's private API key (pk_...) or a klaviyo:// source URI")  # fmt: skip


def test_bad_accounts_and_tables_are_refused_in_one_line(tmp_path):
    uri = f"duckdb:///{tmp_path / 'x.duckdb'}"
    with pytest.raises(UsageError, match=r"^accounts: 'a' must name an environment variable"):
        klaviyo_assets({"a": KEYS["a"]}, TABLES, uri)
    with pytest.raises(UsageError, match=r"^tables: give each table once, from: .*\('nope' is no table\)$"):
        klaviyo_assets({"a": "KLAVIYO_A"}, ["events", "nope"], uri)
    with pytest.raises(UsageError, match=r"^accounts: 'a b' is not allowed as an account name"):
        klaviyo_assets({"a b": "KLAVIYO_A"}, TABLES, uri)


def test_definitions_schedule_one_run_per_account(tmp_path):
    uri = f"duckdb:///{tmp_path / 'x.duckdb'}"
    defs = klaviyo_definitions({"a": "KLAVIYO_A", "b": "KLAVIYO_B"}, TABLES, uri, cron="0 * * * *", retries=2)
    assert defs.resolve_job_def("klaviyo_accounts").tags["dagster/max_retries"] == "2"  # a failed account's run
    assert {k.to_user_string() for k in defs.resolve_all_asset_keys()} == {f"klaviyo/{t}" for t in TABLES}
    schedule = defs.resolve_schedule_def("klaviyo_accounts_schedule")
    tick = dg.build_schedule_context(
        scheduled_execution_time=datetime(2026, 12, 2, 10, tzinfo=UTC), repository_def=defs.get_repository_def()
    )
    assert sorted(r.partition_key for r in schedule.evaluate_tick(tick).run_requests) == ["a", "b"]


def test_two_accounts_at_once_into_one_postgres_table(postgres, make_sandbox, tmp_path, monkeypatch):
    """PostgreSQL, where a fleet loads: both accounts' steps of one table run at once (threads), reading side by
    side and loading under the table's advisory lock in turn; every row of both lands."""
    boxes = {"a": make_sandbox(scale="tiny", rate_limits="off", seed=3),  # two accounts holding the same record ids
             "b": make_sandbox(scale="tiny", rate_limits="off", seed=3, account_seed=4)}  # fmt: skip
    for name, sb in boxes.items():
        monkeypatch.setenv(f"KLAVIYO_{name.upper()}", f"klaviyo://?api_key={KEYS[name]}&base_url={sb.base_url}")
    postgres.create_database("kl_dagster")
    assets = klaviyo_assets({"a": "KLAVIYO_A", "b": "KLAVIYO_B"}, ["events"], postgres.uri("kl_dagster"),
                            pipelines_dir=str(tmp_path / "p"))  # fmt: skip
    with ThreadPoolExecutor(2) as pool:
        assert all(ok for ok, _ in pool.map(lambda account: _in_thread(assets, account), boxes))
    con = postgres.connect("kl_dagster")
    try:
        with con.cursor() as cur:
            cur.execute("select count(distinct account_id) from klaviyo.events")
            assert cur.fetchone()[0] == 2
            for sb in boxes.values():
                cur.execute("select * from klaviyo.events where account_id = %s", (account_of(sb),))
                assert_rows_equal_truth(by_id(cur, "events"), sb, "events")
    finally:
        con.close()


def test_a_failed_account_retried_alone_loads_its_truth_and_leaves_the_other_alone(
    postgres, make_sandbox, tmp_path, monkeypatch
):
    """Account b's key may not read profiles (Klaviyo answers 403): b's profiles step fails, naming the account, while
    a's partition (run at the same time, into a new schema) loads. Once b's key may, b's partition run again alone
    loads exactly b's truth in every table; a's rows are not touched (the same rows of the same loads) and a's
    Klaviyo is not asked."""
    from klaviyo_sandbox.app import ALL_SCOPES

    boxes = {"a": make_sandbox(scale="tiny", rate_limits="off", seed=3),
             "b": make_sandbox(scale="tiny", rate_limits="off", seed=3, account_seed=4,
                               keys={KEYS["b"]: [s for s in ALL_SCOPES if s != "profiles:read"]})}  # fmt: skip
    for name, sb in boxes.items():
        monkeypatch.setenv(f"KLAVIYO_{name.upper()}", f"klaviyo://?api_key={KEYS[name]}&base_url={sb.base_url}")
    postgres.create_database("kl_retry")
    assets = klaviyo_assets({"a": "KLAVIYO_A", "b": "KLAVIYO_B"}, TABLES, postgres.uri("kl_retry"),
                            pipelines_dir=str(tmp_path / "p"))  # fmt: skip

    def rows(sb, table: str) -> dict:
        con = postgres.connect("kl_retry")
        try:
            with con.cursor() as cur:
                cur.execute(f"select * from klaviyo.{table} where account_id = %s", (account_of(sb),))
                return by_id(cur, table)
        finally:
            con.close()

    with ThreadPoolExecutor(2) as pool:
        (ok_a, _), (ok_b, said_b) = pool.map(lambda account: _in_thread(assets, account), boxes)
    assert ok_a and not ok_b
    failed = [m for m in said_b if "table 'profiles' of account 'b'" in m]
    assert failed and "profiles:read" in failed[0] and KEYS["b"] not in "".join(said_b)
    for name in TABLES:
        assert_rows_equal_truth(rows(boxes["a"], name), boxes["a"], name)
    assert not rows(boxes["b"], "profiles")
    kept = {name: rows(boxes["a"], name) for name in TABLES}  # with their _dlt_load_id
    asked_a = api_requests(boxes["a"])

    boxes["b"].state.config.keys = None  # the cause is gone: b's key reads everything
    with dg.DagsterInstance.ephemeral() as instance:
        assert _materialize(assets, "b", instance).success
    for name in TABLES:
        assert_rows_equal_truth(rows(boxes["b"], name), boxes["b"], name)
        assert rows(boxes["a"], name) == kept[name], name
    assert api_requests(boxes["a"]) == asked_a


def test_without_dagster_the_import_says_what_to_install(monkeypatch):
    import importlib
    import sys

    monkeypatch.setitem(sys.modules, "dagster", None)  # as if not installed
    monkeypatch.delitem(sys.modules, "omniload.integrations.dagster")
    with pytest.raises(ImportError) as caught:
        importlib.import_module("omniload.integrations.dagster")
    assert str(caught.value) == "omniload.integrations.dagster needs Dagster: pip install 'omniload[dagster]'"
