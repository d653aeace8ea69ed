"""A pinned API revision through its life (issue #23): deprecated, the run warns once and loads; retired two years
after it came out (the sandbox's clock moves past it), each table fails with one line saying what to do, and
nothing is written; with the revision left out, the next run loads again."""

from __future__ import annotations

import urllib.request

import duckdb

from .conftest import run_cli, source_uri


def test_a_revision_deprecated_then_retired_warns_once_then_fails_with_what_to_do(make_sandbox, tmp_path):
    sb = make_sandbox(scale="tiny", rate_limits="off", seed=23, revision_policy="lifecycle")
    db = tmp_path / "x.duckdb"
    args = ["--source-table", "lists", "--dest-uri", f"duckdb:///{db}"]
    pinned = source_uri(sb) + "&revision=2024-07-15"  # deprecated at the sandbox's clock (2026-07-01)

    first = run_cli("ingest", "--source-uri", pinned, *args)
    assert first.returncode == 0, first.stderr
    notes = [ln for ln in first.stderr.splitlines() if "2024-07-15" in ln]
    assert len(notes) == 1 and "retired on Wed, 15 Jul 2026" in notes[0] and "revision=" in notes[0], notes

    req = urllib.request.Request(f"{sb.base_url}/__sandbox/clock/advance?seconds={15 * 86400}", method="POST", data=b"")
    urllib.request.urlopen(req).close()  # now 2026-07-16: retired, 410
    count = duckdb.connect(str(db), read_only=True).execute("select count(*), max(_dlt_load_id) from lists").fetchone()

    second = run_cli("ingest", "--source-uri", pinned, *args)
    assert second.returncode == 1, second.stderr
    lines = [ln for ln in second.stderr.splitlines() if "410" in ln]
    assert len(lines) == 1, second.stderr
    assert "table 'lists'" in lines[0] and "set revision= in the source URI to a newer one, or leave it out" in lines[0]
    assert sb.state.requests["status:410"] >= 1
    con = duckdb.connect(str(db), read_only=True)
    assert con.execute("select count(*), max(_dlt_load_id) from lists").fetchone() == count  # nothing written
    con.close()

    third = run_cli("ingest", "--source-uri", source_uri(sb), *args)  # revision= left out: omniload's own revision
    assert third.returncode == 0, third.stderr
    assert not [ln for ln in third.stderr.splitlines() if "revision" in ln], third.stderr
