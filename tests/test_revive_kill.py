"""A kill between a parent's revival commit and its reconcile (issue: revival lost): a deleted profile merged
back by a load killed with SIGKILL right after that load (``OMNILOAD_TEST_KILL_AT=loaded``, a test-only hook,
runtime.kill_point) still brings back its events: the next run, from the marks committed with the load's slice
(reconcile.REVIVE), keeps the profile for the events' next load, which reads its events again (issue #23: a
re-readable dependent comes back at its own table's next load, not by its mark)."""

from __future__ import annotations

import signal

from .conftest import http_post, run_cli, source_uri
from .helpers import expected_rows
from .test_deletes import Dest


def test_a_kill_after_the_parent_came_back_loses_no_revival(make_sandbox, tmp_path):
    sb = make_sandbox(scale="tiny", rate_limits="off", seed=47)
    dest = Dest("duckdb", tmp_path)
    assert dest.ingest(sb, "profiles,events", "kl.*") == 0
    events = expected_rows(sb, "events")
    victim = sorted({e["profile_id"] for e in events.values()})[0]
    http_post(sb.base_url, f"/__sandbox/delete?resource=profiles&ids={victim}")
    assert dest.ingest(sb, "profiles,events", "kl.*", "--reconcile", "profiles") == 0
    theirs = {k for k, e in events.items() if e["profile_id"] == victim}
    assert theirs and {k for k, at in dest.marks("events", "events").items() if at} == theirs
    http_post(sb.base_url, f"/__sandbox/delete?resource=profiles&restore=1&ids={victim}")
    http_post(sb.base_url, "/__sandbox/clock/advance?seconds=60")

    killed = run_cli("ingest", "--source-uri", source_uri(sb), "--source-table", "profiles", "--dest-uri", dest.uri,
                     "--dest-table", "kl.profiles", "--progress", "log", "--reconcile", "none",
                     env={"OMNILOAD_TEST_KILL_AT": "loaded"})  # fmt: skip
    assert killed.returncode == -signal.SIGKILL, killed.stderr
    assert dest.marks("profiles", "profiles")[victim] is None  # merged back and committed ...
    assert {k for k, at in dest.marks("events", "events").items() if at} == theirs  # ... its events not yet

    assert dest.ingest(sb, "profiles", "kl.*", "--reconcile", "none") == 0  # nothing new: no slice, no commit
    assert {k for k, at in dest.marks("events", "events").items() if at} == theirs  # events not loaded yet
    assert dest.sql("select parent_key from kl._omniload_reread where table_name = 'events'") == [(victim,)]
    assert dest.ingest(sb, "events", "kl.*", "--reconcile", "none") == 0  # their next load reads them again
    got = dest.marks("events", "events")
    assert set(events) <= set(got) == set(expected_rows(sb, "events")) and not any(got.values())  # and new ones
