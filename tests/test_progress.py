"""What a run tells its user: loaded (not fetched) rows, a line while the API is not answering, pending tables,
a plain-text summary in log mode, and tables of different rate-limit buckets loading side by side."""

from __future__ import annotations

import json

from .conftest import run_cli, source_uri
from .helpers import assert_equals_truth, expected_rows


def _summary(stdout: str) -> dict[str, dict]:
    return {r["table"]: r for r in map(json.loads, stdout.splitlines()) if r.get("event") == "summary"}


def test_summary_reports_loaded_rows_and_a_failed_table_loaded_none(make_sandbox, tmp_path):
    sb = make_sandbox(
        scale="tiny", rate_limits="off", keys={"pk_" + "Test0123456789" + "a" * 20: ["events:read", "tags:read"]}
    )
    db = str(tmp_path / "k.duckdb")
    proc = run_cli("ingest", "--source-uri", source_uri(sb), "--source-table", "events,tags,profiles",
                   "--dest-uri", f"duckdb:///{db}", "--progress", "json")  # fmt: skip
    assert proc.returncode == 1
    got = _summary(proc.stdout)
    assert got["events"]["rows"] == got["events"]["fetched"] == len(expected_rows(sb, "events"))
    assert got["profiles"]["status"] == "failed" and got["profiles"]["rows"] == 0
    proc = run_cli("ingest", "--source-uri", source_uri(sb), "--source-table", "events", "--dest-uri", f"duckdb:///{db}",
                   "--progress", "json")  # fmt: skip
    again = _summary(proc.stdout)["events"]
    assert again["rows"] == 0 and again["fetched"] > 0  # the lookback was fetched, nothing new was loaded


def test_a_struggling_api_is_never_silent_and_the_log_summary_is_plain_text(make_sandbox, tmp_path):
    sb = make_sandbox(scale="tiny", rate_limits="off", faults="error=0.3", seed=3)
    db = str(tmp_path / "k.duckdb")
    proc = run_cli("ingest", "--source-uri", source_uri(sb), "--source-table", "events,profiles,lists",
                   "--dest-uri", f"duckdb:///{db}", "--progress", "log")  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    assert "waiting for the API (attempt 1): HTTP 50" in proc.stderr
    assert "┃" not in proc.stdout and "│" not in proc.stdout  # no box drawing in a log
    lines = proc.stdout.strip().splitlines()
    assert lines[0].split() == ["table", "status", "rows", "loaded", "requests", "retries", "429s", "duration"]
    assert any(line.startswith("profiles") and f"{len(expected_rows(sb, 'profiles')):,}" in line for line in lines)
    for name in ("events", "profiles", "lists"):
        assert_equals_truth(db, sb, name)


def test_tables_of_different_buckets_load_side_by_side(make_sandbox, tmp_path):
    sb = make_sandbox(scale="tiny", rate_limits="off", latency_ms=30)
    db = str(tmp_path / "k.duckdb")
    proc = run_cli("ingest", "--source-uri", source_uri(sb), "--source-table", "events,profiles,campaigns,flows,images",
                   "--dest-uri", f"duckdb:///{db}", "--progress", "json", "--table-parallelism", "5")  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    events = [json.loads(line) for line in proc.stderr.splitlines() if line.startswith("{")]
    order = [(e["event"], e["table"]) for e in events if e["event"] in ("start", "finish")]
    first_finish = next(i for i, (ev, _) in enumerate(order) if ev == "finish")
    assert sum(1 for ev, _ in order[:first_finish] if ev == "start") >= 2  # a second table started before one ended
    for name in ("events", "profiles", "campaigns", "flows", "images"):
        assert_equals_truth(db, sb, name)
    bad = run_cli("ingest", "--source-uri", source_uri(sb), "--source-table", "events", "--dest-uri", f"duckdb:///{db}",
                  "--table-parallelism", "0")  # fmt: skip
    assert bad.returncode == 2 and "--table-parallelism" in bad.stderr


def test_each_committed_slice_is_said_with_what_is_safely_loaded(make_sandbox, tmp_path):
    sb = make_sandbox(scale="tiny,events=6000", rate_limits="off")
    db = str(tmp_path / "k.duckdb")
    proc = run_cli("ingest", "--source-uri", source_uri(sb), "--source-table", "events", "--dest-uri", f"duckdb:///{db}",
                   "--progress", "json", "--checkpoint-rows", "2000")  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    events = [json.loads(line) for line in proc.stderr.splitlines() if line.startswith("{")]
    commits = [e for e in events if e["event"] == "committed"]
    assert len(commits) >= 3  # slices of about 2,000 rows
    assert [c["loaded"] for c in commits] == [sum(c["rows"] for c in commits[: n + 1]) for n in range(len(commits))]
    assert commits[-1]["loaded"] == _summary(proc.stdout)["events"]["rows"] == len(expected_rows(sb, "events"))
    assert events.index(commits[0]) < next(n for n, e in enumerate(events) if e["event"] == "finish")
    log = run_cli("ingest", "--source-uri", source_uri(sb), "--source-table", "events", "--dest-uri",
                  f"duckdb:///{tmp_path}/l.duckdb", "--progress", "log", "--checkpoint-rows", "2000")  # fmt: skip
    assert log.returncode == 0 and "[events] committed: " in log.stderr


def test_the_heaviest_table_starts_first(make_sandbox, tmp_path):
    """With one table at a time, flow-actions (one request per flow at 60 a minute) starts before the list tables
    named before it: the source's weights order the run (they were dropped once: tables ran in the order given)."""
    sb = make_sandbox(scale="tiny", rate_limits="off")
    proc = run_cli("ingest", "--source-uri", source_uri(sb), "--source-table", "lists,events,flow-actions",
                   "--dest-uri", f"duckdb:///{tmp_path / 'k.duckdb'}", "--progress", "json",
                   "--table-parallelism", "1")  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    started: list[str] = []
    for line in proc.stderr.splitlines():
        table = json.loads(line).get("table") if line.startswith("{") else None
        if table and table not in started:
            started.append(table)
    assert started == ["flow-actions", "lists", "events"]  # weights: 100 (a child of 60/min), 0.08, 0.017
