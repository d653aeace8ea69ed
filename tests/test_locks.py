"""Run locks per destination table: overlapping runs into one table never interleave (the second waits, or is
refused with one line after OMNILOAD_LOCK_WAIT), and runs into other tables are not held up."""

from __future__ import annotations

import re
import subprocess
import time

import pytest

from .conftest import OMNILOAD, ROOT, run_cli, source_uri
from .helpers import assert_rows_equal_truth, rows
from .pg import PASSWORD
from .test_destinations import _pg_rows

WAITED = "another omniload run is loading"


def _start(sb, dest_uri: str, dest_table: str, *extra: str, env: dict | None = None) -> subprocess.Popen:
    import os

    args = [*OMNILOAD, "ingest", "--source-uri", source_uri(sb), "--source-table", "profiles", "--dest-uri", dest_uri,
            "--dest-table", dest_table, "--checkpoint-rows", "1000", "--progress", "log", *extra]  # fmt: skip
    return subprocess.Popen(args, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=ROOT,
                            env={**os.environ, **(env or {})})  # fmt: skip


def _finish(proc: subprocess.Popen) -> tuple[int, str]:
    out, err = proc.communicate(timeout=300)
    return proc.returncode, out + err


def _pg_profiles(server, database: str, schema: str, table: str) -> dict[str, dict]:
    return _pg_rows(server, database, schema, table)  # keyed by id, as profiles


def test_overlapping_runs_into_one_postgres_table_lose_no_rows(postgres, make_sandbox):
    """The issue's two overlapping intervals, started together (three times: unlocked, they lost rows in most
    tries), plus a run into another table of the same schema that must not wait for them."""
    sb = make_sandbox(scale="small", rate_limits="off")
    postgres.create_database("kl_overlap")
    uri = postgres.uri("kl_overlap")
    for n in range(3):
        early = _start(sb, uri, f"kl.profiles_{n}", "--interval-start", "2020-01-01", "--interval-end", "2025-09-01")
        late = _start(sb, uri, f"kl.profiles_{n}", "--interval-start", "2025-09-01")
        other = _start(sb, uri, f"kl.other_{n}")
        results = [_finish(p) for p in (early, late, other)]
        assert [code for code, _ in results] == [0, 0, 0], results
        assert WAITED not in results[2][1], "a run into another table waited for the lock"
        assert PASSWORD not in "".join(text for _, text in results)
        assert_rows_equal_truth(_pg_profiles(postgres, "kl_overlap", "kl", f"profiles_{n}"), sb, "profiles")
        assert_rows_equal_truth(_pg_profiles(postgres, "kl_overlap", "kl", f"other_{n}"), sb, "profiles")
    code, text = _finish(_start(sb, uri, "kl.profiles_0"))  # the next incremental run: nothing was skipped
    assert code == 0, text
    assert_rows_equal_truth(_pg_profiles(postgres, "kl_overlap", "kl", "profiles_0"), sb, "profiles")


def test_a_second_run_into_a_locked_table_waits_then_fails_that_table_with_one_line(postgres, make_sandbox, tmp_path):
    sb = make_sandbox(scale="small", rate_limits="off", latency_ms=150)  # the first run holds the table for seconds
    postgres.create_database("kl_busy")
    uri = postgres.uri("kl_busy")
    first = _start(sb, uri, "kl.profiles", "--extract-parallelism", "1")
    deadline = time.monotonic() + 60
    while sb.state.requests["total"] < 5 and time.monotonic() < deadline:  # the first run is loading the table
        time.sleep(0.05)
    started = time.monotonic()
    second = run_cli("ingest", "--source-uri", source_uri(sb), "--source-table", "profiles,tags", "--dest-uri", uri,
                     "--dest-table", "kl.*", "--progress", "log", env={"OMNILOAD_LOCK_WAIT": "1"})  # fmt: skip
    assert first.poll() is None, "the first run ended before the second tried the lock"
    code, text = _finish(first)
    assert code == 0, text
    assert second.returncode == 1, second.stderr
    said = [line for line in second.stderr.splitlines() if WAITED in line]
    assert said[0] == "[profiles] note: another omniload run is loading kl.profiles; waiting up to 1s for it to finish"
    failed = [line for line in said[1:] if "finish" in line]
    assert len(failed) == 1 and "failed" in failed[0] and "kl.profiles in postgresql://omni:***@127.0.0.1" in failed[0]
    assert "(waited 1s)" in failed[0] and "OMNILOAD_LOCK_WAIT" in failed[0]
    assert "Traceback" not in second.stderr and PASSWORD not in second.stdout + second.stderr
    assert re.search(r"^profiles +failed", second.stdout, re.M) and re.search(r"^tags +ok", second.stdout, re.M)
    assert time.monotonic() - started < 60
    assert_rows_equal_truth(_pg_profiles(postgres, "kl_busy", "kl", "profiles"), sb, "profiles")
    assert_rows_equal_truth(_pg_rows(postgres, "kl_busy", "kl", "tags"), sb, "tags")  # the other table loaded


def test_a_bad_lock_wait_is_refused_before_anything_is_written(sandbox, tmp_path):
    db = tmp_path / "k.duckdb"
    proc = run_cli("ingest", "--source-uri", source_uri(sandbox), "--source-table", "tags", "--dest-uri", f"duckdb:///{db}",
                   env={"OMNILOAD_LOCK_WAIT": "soon"})  # fmt: skip
    assert proc.returncode == 2
    assert proc.stderr.strip().splitlines()[-1].endswith("OMNILOAD_LOCK_WAIT: 'soon' is not allowed; give the seconds to "
                                                        "wait for another run's table lock, 0 to 86400")  # fmt: skip
    assert not db.exists()


@pytest.mark.parametrize("scheme", ["parquet", "delta", "sqlite"])  # iceberg: the same lock as delta (lake.py)
def test_local_destinations_lock_each_table_and_leave_no_lock_file(make_sandbox, tmp_path, scheme):
    sb = make_sandbox(scale="small", rate_limits="off", latency_ms=150)
    uri = f"sqlite:///{tmp_path}/k.db" if scheme == "sqlite" else f"{scheme}:///{tmp_path}/out"
    table = "main.profiles" if scheme == "sqlite" else "kl.profiles"
    first = _start(sb, uri, table, "--extract-parallelism", "1")
    deadline = time.monotonic() + 60
    while sb.state.requests["total"] < 5 and time.monotonic() < deadline:
        time.sleep(0.05)
    second = run_cli("ingest", "--source-uri", source_uri(sb), "--source-table", "profiles", "--dest-uri", uri,
                     "--dest-table", table, "--progress", "log", env={"OMNILOAD_LOCK_WAIT": "0"})  # fmt: skip
    assert first.poll() is None, "the first run ended before the second tried the lock"
    code, text = _finish(first)
    assert code == 0, text
    assert second.returncode == 1
    assert f"another omniload run is loading {table} in {uri}" in second.stderr
    assert [p for p in tmp_path.rglob("*") if "omniload-lock" in p.name] == []
    code, text = _finish(_start(sb, uri, table))  # the lock is free again: the same command runs
    assert code == 0, text


@pytest.mark.parametrize("kind", ["postgres", "parquet"])
def test_a_killed_run_leaves_no_lock_behind(request, make_sandbox, tmp_path, kind):
    import os
    import signal

    sb = make_sandbox(scale="small", rate_limits="off", latency_ms=150)
    if kind == "postgres":
        server = request.getfixturevalue("postgres")
        server.create_database("kl_killed")
        uri = server.uri("kl_killed")
    else:
        uri = f"parquet:///{tmp_path}/out"
    first = _start(sb, uri, "kl.profiles", "--extract-parallelism", "1")
    deadline = time.monotonic() + 60
    while sb.state.requests["total"] < 5 and time.monotonic() < deadline:  # it holds the table's lock
        time.sleep(0.05)
    os.kill(first.pid, signal.SIGKILL)
    first.wait()
    second = run_cli("ingest", "--source-uri", source_uri(sb), "--source-table", "profiles", "--dest-uri", uri,
                     "--dest-table", "kl.profiles", "--progress", "log", env={"OMNILOAD_LOCK_WAIT": "5"})  # fmt: skip
    assert second.returncode == 0, second.stderr
    if kind == "postgres":
        assert_rows_equal_truth(_pg_profiles(server, "kl_killed", "kl", "profiles"), sb, "profiles")


def test_overlapping_runs_into_one_duckdb_file_wait_for_each_other_and_both_load(make_sandbox, tmp_path):
    """DuckDB lets one process write a file: a second run waits for the first (up to OMNILOAD_LOCK_WAIT, said
    once), then loads, as a cron user expects; with OMNILOAD_LOCK_WAIT=0 it is refused at once in one line."""
    import os

    import duckdb

    sb = make_sandbox(scale="tiny", rate_limits="off", latency_ms=700)  # the first run holds the file for seconds
    db = tmp_path / "k.duckdb"
    uri = f"duckdb:///{db}"

    def start(tables: str, env: dict | None = None) -> subprocess.Popen:
        args = [*OMNILOAD, "ingest", "--source-uri", source_uri(sb), "--source-table", tables, "--dest-uri", uri,
                "--extract-parallelism", "1", "--progress", "log"]  # fmt: skip
        return subprocess.Popen(args, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=ROOT,
                                env={**os.environ, **(env or {})})  # fmt: skip

    first = start("profiles")
    deadline = time.monotonic() + 60
    while sb.state.requests["total"] < 3 and time.monotonic() < deadline:  # past its key check: it holds the file
        time.sleep(0.05)
    refused = start("tags", {"OMNILOAD_LOCK_WAIT": "0"})
    second = start("profiles")  # the next scheduled run, started before the first ended
    code, text = _finish(refused)
    assert first.poll() is None, "the first run ended before the others tried the lock"
    assert code == 1, text
    assert text.strip().splitlines()[-1] == (
        f"omniload: error: destination {uri} is in use by another omniload run (waited 0s); wait for it to finish "
        "and run again, or raise OMNILOAD_LOCK_WAIT (seconds)")  # fmt: skip
    results = [_finish(first), _finish(second)]
    assert [code for code, _ in results] == [0, 0], results
    assert f"note: another omniload run is loading {uri}; waiting up to 300s for it to finish" in results[1][1]
    assert_rows_equal_truth(rows(str(db), "profiles"), sb, "profiles")
    with duckdb.connect(str(db), read_only=True) as con:  # the refused run wrote nothing
        assert not con.execute("select 1 from information_schema.tables where table_name = 'tags'").fetchall()
    assert not (tmp_path / "k.duckdb.lock").exists()


def test_a_duckdb_file_another_process_holds_is_waited_for_then_loaded(sandbox, tmp_path):
    """Another process (a DuckDB client, not an omniload run) holding the file: a run waits for it too, bounded by
    OMNILOAD_LOCK_WAIT (then one line, exit 1), and loads once it lets go."""
    import threading

    import duckdb

    db = tmp_path / "k.duckdb"
    uri = f"duckdb:///{db}"
    holder = duckdb.connect(str(db))
    cmd = ("ingest", "--source-uri", source_uri(sandbox), "--source-table", "tags", "--dest-uri", uri)
    refused = run_cli(*cmd, env={"OMNILOAD_LOCK_WAIT": "1"})
    assert refused.returncode == 1, refused.stderr
    assert refused.stderr.strip().splitlines()[-1] == (
        f"omniload: error: destination {uri} is in use by another process (waited 1s); wait for it to finish and "
        "run again, or raise OMNILOAD_LOCK_WAIT (seconds)")  # fmt: skip
    threading.Timer(2.5, holder.close).start()  # lets go while the next run waits (it fails at once otherwise)
    waited = run_cli(*cmd, env={"OMNILOAD_LOCK_WAIT": "60"})
    assert waited.returncode == 0, waited.stderr
    assert_rows_equal_truth(rows(str(db), "tags"), sandbox, "tags")


def test_first_loads_of_other_tables_into_a_new_postgres_schema_all_succeed(postgres, make_sandbox):
    """Runs of different tables into a new schema each create dlt's own tables (_dlt_version, _dlt_loads,
    _dlt_pipeline_state) in their first load; at once, all but one failed with UniqueViolation
    (pg_type_typname_nsp_index). Made certain here: an open transaction of the test creates _dlt_version, so
    every run reaches that point and waits; the test then rolls it back and the runs go on together."""
    sb = make_sandbox(scale="tiny", rate_limits="off")
    postgres.create_database("kl_fresh")
    uri, names = postgres.uri("kl_fresh"), ["lists", "tags", "segments"]
    holder = postgres.connect("kl_fresh")
    holder.autocommit = True
    with holder.cursor() as cur:
        cur.execute("create schema fresh")  # the runs' schemas are there; their dlt tables are not
    holder.autocommit = False
    try:
        with holder.cursor() as cur:
            cur.execute("create table fresh._dlt_version (x int)")  # not committed: the runs wait on its name
            runs = [run for name in names for run in [_start_table(sb, uri, name, f"fresh.{name}")]]
            waiting = _lock_waiters(postgres, "kl_fresh", len(runs), 120, lambda: all(r.poll() is None for r in runs))
            assert waiting == len(runs), [_finish(r) for r in runs if r.poll() is not None]
    finally:
        holder.rollback()
        holder.close()
    results = [_finish(r) for r in runs]
    assert [code for code, _ in results] == [0] * len(runs), results
    for name in names:
        assert_rows_equal_truth(_pg_rows(postgres, "kl_fresh", "fresh", name), sb, name)


def _lock_waiters(postgres, database: str, want: int, seconds: float, going) -> int:
    """How many sessions of ``database`` wait on a lock, polled until ``want`` do, ``seconds`` pass, or ``going()``
    says the work under test stopped."""
    deadline, waiting = time.monotonic() + seconds, 0
    watcher = postgres.connect(database)
    watcher.autocommit = True  # (in a transaction, pg_stat_activity stays as first read)
    try:
        while waiting < want and time.monotonic() < deadline and going():
            time.sleep(0.1)
            with watcher.cursor() as watch:
                watch.execute("select count(*) from pg_stat_activity where datname = %s and wait_event_type = 'Lock'",
                              (database,))  # fmt: skip
                waiting = watch.fetchone()[0]
    finally:
        watcher.close()
    return waiting


def _start_table(sb, dest_uri: str, source_table: str, dest_table: str) -> subprocess.Popen:
    import os

    args = [*OMNILOAD, "ingest", "--source-uri", source_uri(sb), "--source-table", source_table, "--dest-uri",
            dest_uri, "--dest-table", dest_table, "--progress", "log"]  # fmt: skip
    return subprocess.Popen(args, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=ROOT,
                            env=dict(os.environ))  # fmt: skip


def test_first_rereads_of_two_tables_into_a_new_postgres_schema_both_succeed(postgres):
    """Two runs keeping parents to read again (a restored profile's events and list memberships) into a schema where
    ``_omniload_reread`` is not yet: each creates it (``create table if not exists``), which PostgreSQL does not make
    safe at once; one failed with UniqueViolation. Made certain as above: an open transaction of the test creates
    the table, both wait on its name, then it is rolled back and they go on together."""
    import threading

    from omniload.destinations import parse_destination

    postgres.create_database("kl_reread")
    holder = postgres.connect("kl_reread")
    holder.autocommit = True
    with holder.cursor() as cur:
        cur.execute("create schema fresh")
    holder.autocommit = False
    errors: list[BaseException] = []

    def add(table: str, key: str) -> None:
        try:
            dest = parse_destination(postgres.uri("kl_reread"))
            dest.preflight()
            dest.deletes.add_rereads("fresh", table, "profile_id", [key])
        except BaseException as exc:  # noqa: BLE001 - reported by the assertion below
            errors.append(exc)

    adding = [threading.Thread(target=add, args=args) for args in (("events", "p1"), ("list_memberships", "p2"))]
    try:
        with holder.cursor() as cur:
            cur.execute("create table fresh._omniload_reread (x int)")  # not committed: the others wait on its name
            for t in adding:
                t.start()
            waiting = _lock_waiters(postgres, "kl_reread", 2, 60, lambda: not errors)
            assert waiting >= 1 and not errors, errors
    finally:
        holder.rollback()
        holder.close()
    for t in adding:
        t.join(60)
    assert not errors, [f"{type(e).__name__}: {e}" for e in errors]
    con = postgres.connect("kl_reread")
    with con.cursor() as cur:
        cur.execute("select table_name, parent_key from fresh._omniload_reread order by 1")
        assert cur.fetchall() == [("events", "p1"), ("list_memberships", "p2")]
    con.close()
