"""Faults, throttling, permanent errors, bad data and secrets: nothing lost, nothing duplicated, clear errors."""

from __future__ import annotations

import subprocess
import sys
import time
from datetime import UTC

import duckdb

from .conftest import KEY, run_cli, source_uri
from .helpers import api_requests, assert_equals_truth, expected_rows, ingest, rows


def test_paced_run_with_parallelism_20_sees_at_most_a_few_429s(make_sandbox, tmp_path):
    sb = make_sandbox(scale="tiny,events=30000,profiles=3000", rate_limits="x0.1", latency_ms=20)
    db = str(tmp_path / "k.duckdb")
    assert ingest(sb, "events,profiles", db, "--extract-parallelism", "20") == 0
    assert sb.state.requests["status:429"] <= 2, dict(sb.state.requests)
    assert_equals_truth(db, sb, "events")
    assert_equals_truth(db, sb, "profiles")


def test_transient_faults_do_not_lose_or_duplicate_rows(make_sandbox, tmp_path):
    sb = make_sandbox(scale="small", rate_limits="off", faults="error=0.07,drop=0.03", seed=5)
    db = str(tmp_path / "k.duckdb")
    assert ingest(sb, "events,profiles,campaigns,lists", db, "--extract-parallelism", "6") == 0
    assert sb.state.requests["fault:error"] + sb.state.requests["fault:drop"] >= 5
    for name in ("events", "profiles", "campaigns", "lists"):
        assert_equals_truth(db, sb, name)


def test_throttling_without_retry_after_and_bad_bodies_are_retried(make_sandbox, tmp_path):
    sb = make_sandbox(
        scale="tiny", rate_limits="off", faults="throttle=0.1,truncated=0.1,html200=0.05,slow=0.05,slow_ms=300"
    )
    db = str(tmp_path / "k.duckdb")
    assert ingest(sb, "events,profiles", db) == 0
    assert_equals_truth(db, sb, "events")
    assert_equals_truth(db, sb, "profiles")


def test_odd_timestamp_formats_load_correctly(make_sandbox, tmp_path):
    sb = make_sandbox(scale="tiny", rate_limits="off", faults="oddtime=1")
    db = str(tmp_path / "k.duckdb")
    assert ingest(sb, "events,profiles,forms", db) == 0
    for name in ("events", "profiles", "forms"):
        assert_equals_truth(db, sb, name)


def test_future_record_lands_but_does_not_move_the_cursor_into_the_future(make_sandbox, tmp_path):
    sb = make_sandbox(scale="tiny", rate_limits="off", faults="future=1")
    db = str(tmp_path / "k.duckdb")
    assert ingest(sb, "flows", db) == 0
    got = rows(db, "flows")
    assert set(got) == set(expected_rows(sb, "flows"))  # every record landed, the one stamped in 2100 too
    assert [r["updated"].year for r in got.values()].count(2100) >= 1
    from datetime import datetime

    import dlt

    state = dlt.pipeline("omniload__main__flows", destination=dlt.destinations.duckdb(db), dataset_name="main",
                         pipelines_dir=str(tmp_path / "p"))  # fmt: skip
    state.sync_destination()
    sources = state.state["sources"]
    last = next(iter(sources.values()))["resources"]["flows"]["last_value"]
    assert datetime.fromisoformat(last) <= datetime.now(UTC)


def test_record_without_id_fails_the_table_naming_the_page(make_sandbox, tmp_path):
    sb = make_sandbox(scale="tiny", rate_limits="off", faults="noid=1")
    db = str(tmp_path / "k.duckdb")
    proc = run_cli("ingest", "--source-uri", source_uri(sb), "--source-table", "tags", "--dest-uri", f"duckdb:///{db}")
    assert proc.returncode == 1
    assert "table 'tags': a record without an id (page 1 of http://" in proc.stderr


def test_permanent_errors_fail_fast_with_the_api_message(make_sandbox, tmp_path):
    other = "pk_" + "Z" * 34
    sb = make_sandbox(scale="tiny", rate_limits="off", keys={KEY: ["events:read"]})
    db = str(tmp_path / "k.duckdb")
    proc = run_cli("ingest", "--source-uri", source_uri(sb), "--source-table", "events,profiles",
                   "--dest-uri", f"duckdb:///{db}", "--progress", "log")  # fmt: skip
    assert proc.returncode == 1  # profiles failed, events loaded
    assert "table 'profiles': HTTP 403 permission_denied" in proc.stderr
    assert len(rows(db, "events")) > 0
    before = api_requests(sb)
    proc = run_cli(
        "ingest", "--source-uri", source_uri(sb, other), "--source-table", "events", "--dest-uri", f"duckdb:///{db}"
    )
    assert proc.returncode == 2 and "the API key was refused" in proc.stderr  # found by the preflight's key check
    assert api_requests(sb) - before == 0  # no table read, no retries on a permanent error
    proc = run_cli("ingest", "--source-uri", source_uri(sb) + "&revision=2023-02-22", "--source-table", "events",
                   "--dest-uri", f"duckdb:///{db}")  # fmt: skip
    assert proc.returncode == 1 and "HTTP 410" in proc.stderr and "2023-02-22" in proc.stderr  # retired


def test_long_retry_after_fails_the_table_instead_of_hanging(make_sandbox, tmp_path):
    sb = make_sandbox(scale="small", rate_limits="x0.02")  # flows: 1 request per minute
    db = str(tmp_path / "k.duckdb")
    started = time.monotonic()
    proc = run_cli("ingest", "--source-uri", source_uri(sb), "--source-table", "flows", "--dest-uri", f"duckdb:///{db}",
                   "--max-retry-after", "5", "--extract-parallelism", "1")  # fmt: skip
    assert proc.returncode == 1
    assert "table 'flows'" in proc.stderr and "longer than the allowed 5s" in proc.stderr
    assert time.monotonic() - started < 30


def test_api_key_never_appears_in_output_errors_or_state(make_sandbox, tmp_path):
    secret = "pk_" + "S3cr3t" * 5 + "Abcd"
    sb = make_sandbox(
        scale="tiny", rate_limits="off", keys={secret: ["events:read", "metrics:read"]}, faults="error=0.05"
    )
    db = str(tmp_path / "k.duckdb")
    outputs = []
    for tables, mode in (("events,metrics,profiles", "log"), ("events", "json"), ("nope", "log")):
        proc = run_cli("ingest", "--source-uri", source_uri(sb, secret), "--source-table", tables,
                       "--dest-uri", f"duckdb:///{db}", "--progress", mode, env={"OMNILOAD_DEBUG": "1"})  # fmt: skip
        outputs.append(proc.stdout + proc.stderr)
    assert "HTTP 403" in outputs[0]  # profiles failed and said so
    blob = "\n".join(outputs)
    assert secret not in blob and secret[3:] not in blob
    con = duckdb.connect(db, read_only=True)
    dump = []
    for schema, table in con.execute("select table_schema, table_name from information_schema.tables").fetchall():
        dump += [str(r) for r in con.execute(f'select * from "{schema}"."{table}"').fetchall()]
    con.close()
    assert dump and not any(secret in d or secret[3:] in d for d in dump)


def test_sigkill_mid_backfill_resumes_from_the_last_checkpoint(make_sandbox, tmp_path):
    import os
    import signal

    sb = make_sandbox(scale="tiny,events=120000", rate_limits="off", latency_ms=30)
    db = str(tmp_path / "k.duckdb")
    args = [sys.executable, "-m", "omniload.cli", "ingest", "--source-uri", source_uri(sb), "--source-table", "events",
            "--dest-uri", f"duckdb:///{db}", "--extract-parallelism", "2", "--checkpoint-rows", "10000"]  # fmt: skip
    proc = subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 120
    while api_requests(sb) < 70 and time.monotonic() < deadline:
        time.sleep(0.05)
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    killed_at = api_requests(sb)
    assert 70 <= killed_at < 125, "the kill should land in the middle of the backfill"
    committed = rows(db, "events")  # the file opens, and what was committed has no duplicates
    assert 0 < len(committed) < 120_000
    assert ingest(sb, "events", db, "--extract-parallelism", "2", "--checkpoint-rows", "10000") == 0
    resumed = api_requests(sb) - killed_at
    assert_equals_truth(db, sb, "events")
    before = api_requests(sb)
    assert (
        ingest(sb, "events", str(tmp_path / "fresh.duckdb"), "--extract-parallelism", "2", "--checkpoint-rows", "10000")
        == 0
    )
    full = api_requests(sb) - before
    committed_pages = len(committed) // 1000
    assert resumed <= full - committed_pages * 0.8, f"resume took {resumed} requests, a full run {full}"
