"""ingestr command lines run unchanged (issue #16): ingestr's environment names, its flags (implemented or accepted
with a note), its URI forms and table names; each test runs the ingestr-style command line against the sandbox."""

from __future__ import annotations

import hashlib
import os

import duckdb
import pytest

from omniload.destinations import parse_destination

from .conftest import KEY, http_post, run_cli, source_uri
from .helpers import assert_equals_truth, expected_rows, rows


def _ingest(sb, table: str, dest: str, *extra: str, env: dict | None = None):
    return run_cli("ingest", "--source-uri", source_uri(sb), "--source-table", table, "--dest-uri", dest,
                   "--progress", "log", "--yes", *extra, env=env)  # fmt: skip


def test_ingestr_environment_names_are_read_after_omniload_ones(sandbox, tmp_path):
    db = str(tmp_path / "env.duckdb")
    env = {"SOURCE_URI": source_uri(sandbox), "DESTINATION_URI": f"duckdb:///{db}", "SOURCE_TABLE": "metrics",
           "DESTINATION_TABLE": "kl.metrics", "PROGRESS": "log", "INCREMENTAL_STRATEGY": "merge", "SKIP_CONFIRMATION": "true"}  # fmt: skip
    proc = run_cli("ingest", env=env)
    assert proc.returncode == 0, proc.stderr
    assert_equals_truth(db, sandbox, "metrics", schema="kl")
    # OMNILOAD_* wins over ingestr's name
    proc = run_cli("ingest", env={**env, "OMNILOAD_SOURCE_TABLE": "tags", "OMNILOAD_DEST_TABLE": "kl.tags"})
    assert proc.returncode == 0, proc.stderr
    assert_equals_truth(db, sandbox, "tags", schema="kl")
    # a bad value from ingestr's name is refused naming that variable
    proc = run_cli("ingest", env={**env, "FULL_REFRESH": "sure"})
    assert proc.returncode == 2 and "FULL_REFRESH: 'sure' is not allowed" in proc.stderr


def test_ingestr_flags_mask_columns_and_notes(sandbox, tmp_path):
    db = str(tmp_path / "m.duckdb")
    proc = _ingest(sandbox, "profiles", f"duckdb:///{db}", "--mask", "email:hash", "--mask", "phone_number:redact",
                   "--columns", "created:text,last_event_date:text", "--page-size", "100", "--loader-file-size", "1000",
                   "--no-load-timestamp", "--schema-naming", "direct", "--sql-limit", "5", "--pipelines-dir", str(tmp_path),
                   "--partition-by", "created", "--debug")  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    for flag in ("--page-size", "--no-load-timestamp", "--schema-naming direct", "--sql-limit", "--pipelines-dir",
                 "--partition-by created is ignored"):  # fmt: skip
        assert f"note: {flag}" in proc.stderr, proc.stderr
    assert "--loader-file-size" not in proc.stderr  # it means something: dlt's rows per file
    got, want = rows(db, "profiles"), expected_rows(sandbox, "profiles")
    assert set(got) == set(want)
    assert (
        duckdb.connect(db, read_only=True)
        .execute(
            "select data_type from information_schema.columns where table_name='profiles' and column_name='created'"
        )
        .fetchone()[0]
        == "VARCHAR"
    )
    for rid, exp in want.items():
        row = got[rid]
        assert row["email"] == (hashlib.sha256(exp["email"].encode()).hexdigest() if exp["email"] else exp["email"])
        assert row["phone_number"] == ("REDACTED" if exp["phone_number"] else exp["phone_number"])
        assert row["first_name"] == exp["first_name"] and row["updated"] == exp["updated"]
        assert (row["created"] is None) == (exp["created"] is None)
        if exp["created"]:
            assert row["created"].startswith(exp["created"].strftime("%Y-%m-%d %H:%M:%S"))


@pytest.mark.parametrize("extra,fragment", [
    (["--mask", "email:rot13"], "--mask: 'email:rot13' must be column:algorithm"),
    (["--mask", "id:hash"], "'id' is a key of table 'profiles'"),
    (["--mask", "nope:hash"], "table 'profiles' has no column 'nope'"),
    (["--columns", "created:varchar2"], "--columns: 'created:varchar2' must be name:type"),
    (["--incremental-key", "nope"], "--incremental-key: table 'profiles' has no column 'nope'"),
    (["--incremental-strategy", "scd2", "--dest-uri", "parquet:///{tmp}"], "cannot keep SCD2 history"),
])  # fmt: skip
def test_bad_ingestr_flags_exit_2(sandbox, tmp_path, extra, fragment):
    extra = [e.replace("{tmp}", str(tmp_path)) for e in extra]
    dest = [] if "--dest-uri" in extra else ["--dest-uri", f"duckdb:///{tmp_path}/x.duckdb"]
    proc = run_cli("ingest", "--source-uri", source_uri(sandbox), "--source-table", "profiles", *dest, *extra)
    assert proc.returncode == 2, proc.stderr
    assert fragment in proc.stderr and not os.path.exists(tmp_path / "x.duckdb")


def test_scd2_keeps_history_after_a_clock_advance(make_sandbox, tmp_path):
    sb = make_sandbox(scale="tiny", rate_limits="off", seed=5)
    db = str(tmp_path / "h.duckdb")
    assert _ingest(sb, "profiles", f"duckdb:///{db}", "--incremental-strategy", "scd2").returncode == 0
    first = expected_rows(sb, "profiles")
    http_post(sb.base_url, "/__sandbox/clock/advance?seconds=86400")
    proc = _ingest(sb, "profiles", f"duckdb:///{db}", "--incremental-strategy", "scd2")
    assert proc.returncode == 0, proc.stderr
    now = expected_rows(sb, "profiles")
    changed = {i for i in first if now[i]["updated"] != first[i]["updated"]}
    assert changed, "the clock advance changed no profile"
    con = duckdb.connect(db, read_only=True)
    active = con.execute("select * from profiles where _dlt_valid_to is null")
    from .helpers import assert_rows_equal_truth, by_id

    assert_rows_equal_truth(by_id(active, "profiles"), sb, "profiles")
    retired = {r[0] for r in con.execute("select id from profiles where _dlt_valid_to is not null").fetchall()}
    assert retired == changed
    old = dict(con.execute("select id, updated from profiles where _dlt_valid_to is not null").fetchall())
    assert all(old[i] == first[i]["updated"] for i in changed)


def test_uri_forms_table_names_and_key_notes(sandbox, tmp_path):
    # duckdb:///<abs path without its leading slash>: no such folder here (cwd is the repo), so the absolute one
    db = f"{tmp_path}/k.duckdb"
    proc = _ingest(sandbox, "campaigns", f"duckdb://{db}", "--incremental-key", "updated", "--dest-table", "campaigns")
    assert proc.returncode == 0, proc.stderr
    assert "the absolute path" in proc.stderr and os.path.exists(db)
    assert "--incremental-key updated is not used; the table is read by its own key 'updated_at'" in proc.stderr
    assert_equals_truth(db, sandbox, "campaigns")
    # ingestr's table name with '-' is ours with '_'; an unknown URI parameter is a warning without its value
    src = source_uri(sandbox) + "&page_limit=s3cr3tvalue"
    proc = run_cli("ingest", "--source-uri", src, "--source-table", "catalog-variants", "--dest-uri", f"duckdb:///{db}",
                   "--dest-table", "catalog-variants", "--primary-key", "sku")  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    assert "warning: --source-uri: unknown parameter 'page_limit' is ignored; allowed: api_key" in proc.stderr
    assert "s3cr3tvalue" not in proc.stderr + proc.stdout and KEY not in proc.stderr
    assert "--primary-key sku is not used" in proc.stderr
    assert_equals_truth(db, sandbox, "catalog-variants")
    assert parse_destination("duckdb://k.duckdb").path == "k.duckdb"
    assert parse_destination("duckdb:///rel/k.duckdb".replace("rel", "tests")).path == "tests/k.duckdb"


def test_schema_named_like_the_duckdb_file_is_refused_up_front(sandbox, tmp_path):
    db = tmp_path / "dest.duckdb"
    before = sandbox.state.requests["total"]
    proc = _ingest(sandbox, "events", f"duckdb:///{db}", "--dest-table", "dest.events")
    assert proc.returncode == 2 and "schema 'dest' has the name DuckDB gives the file" in proc.stderr, proc.stderr
    assert sandbox.state.requests["total"] == before and not db.exists()
