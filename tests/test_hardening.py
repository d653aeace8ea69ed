"""Issue #11: what a demanding new user broke — data safety, signals, failure output, leftovers, progress."""

from __future__ import annotations

import duckdb

from .conftest import run_cli, source_uri
from .helpers import assert_equals_truth, ingest, rows


def test_dest_table_filled_by_another_source_table_is_refused(sandbox, tmp_path):
    db = str(tmp_path / "out.duckdb")
    assert ingest(sandbox, "events", db, "--dest-table", "dest.events") == 0
    before = rows(db, "events", "dest")
    proc = run_cli("ingest", "--source-uri", source_uri(sandbox), "--source-table", "tags", "--dest-uri", f"duckdb:///{db}",
                   "--dest-table", "dest.events")  # fmt: skip
    assert proc.returncode == 2, proc.stderr
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and "holds 'klaviyo:events', not 'klaviyo:tags'" in lines[0] and "--full-refresh" in lines[0]
    assert rows(db, "events", "dest") == before
    # --full-refresh is the explicit way to reuse the name
    assert ingest(sandbox, "tags", db, "--dest-table", "dest.events", "--full-refresh") == 0
    assert_equals_truth(db, sandbox, "tags", table="events", schema="dest")
