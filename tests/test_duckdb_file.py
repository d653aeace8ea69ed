"""The DuckDB destination's file and memory: a file that is not a DuckDB database is refused (DuckDB would download
an extension to read it), DuckDB never installs or loads an extension on its own, and wide rows load with the
default buffer pool."""

from __future__ import annotations

import json
import sqlite3

from omniload.destinations import parse_destination

from .conftest import run_cli, source_uri
from .helpers import assert_equals_truth


def test_a_sqlite_file_given_as_duckdb_is_refused_with_one_line(sandbox, tmp_path):
    path = tmp_path / "data.db"
    con = sqlite3.connect(path)
    con.execute("create table t (a integer)")
    con.commit()
    con.close()
    before = path.read_bytes()
    proc = run_cli(
        "ingest", "--source-uri", source_uri(sandbox), "--source-table", "tags", "--dest-uri", f"duckdb:///{path}"
    )
    assert proc.returncode == 2
    assert proc.stderr.strip().splitlines() == [
        f"omniload: error: --dest-uri: '{path}' is not a DuckDB database (it is a SQLite database: use a sqlite:// URI for it); "
        "give a DuckDB file, or a path where none exists yet to create one"]  # fmt: skip
    assert "download" not in proc.stdout + proc.stderr and "extension" not in proc.stdout + proc.stderr
    assert path.read_bytes() == before and sorted(p.name for p in tmp_path.iterdir()) == ["data.db"]
    empty = tmp_path / "empty.duckdb"
    empty.touch()
    proc = run_cli(
        "ingest", "--source-uri", source_uri(sandbox), "--source-table", "tags", "--dest-uri", f"duckdb:///{empty}"
    )
    assert proc.returncode == 2 and f"'{empty}' is not a DuckDB database (it is empty)" in proc.stderr


def test_duckdb_never_installs_or_loads_an_extension_on_its_own(tmp_path):
    dest = parse_destination(f"duckdb:///{tmp_path}/k.duckdb")
    dest.preflight()
    try:
        settings = dict(dest._conn.execute("select name, value from duckdb_settings() where name in "
                                    "('autoinstall_known_extensions', 'autoload_known_extensions')").fetchall())  # fmt: skip
    finally:
        dest.close()
    assert settings == {"autoinstall_known_extensions": "false", "autoload_known_extensions": "false"}


def test_wide_profiles_load_with_the_default_memory_limit(make_sandbox, tmp_path, monkeypatch):
    """300 profiles with 100 KB of properties each (30 MB): DuckDB's 128 MB pool failed them (Out of Memory)."""
    monkeypatch.delenv("OMNILOAD_DUCKDB_MEMORY_LIMIT", raising=False)
    sb = make_sandbox(scale="tiny,profiles=300", rate_limits="off", profile_properties_kb=100)
    db = str(tmp_path / "wide.duckdb")
    proc = run_cli("ingest", "--source-uri", source_uri(sb), "--source-table", "profiles,tags", "--dest-uri",
                   f"duckdb:///{db}", "--progress", "log")  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    got = assert_equals_truth(db, sb, "profiles")
    assert min(len(json.loads(r["properties"])["notes"]) for r in got.values()) == 100 * 1024  # the rows are wide
    assert_equals_truth(db, sb, "tags")  # a narrow table of the same run loads beside it
