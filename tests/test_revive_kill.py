"""A kill between a parent's revival commit and its reconcile (issue: revival lost): a deleted profile merged
back by a load killed with SIGKILL right after that load (``OMNILOAD_TEST_KILL_AT=loaded``, a test-only hook,
runtime.kill_point) still brings back its events: the next run, from the marks committed with the load's slice
(reconcile.REVIVE), keeps the profile for the events' next load, which reads its events again (issue #23: a
re-readable dependent comes back at its own table's next load, not by its mark). Likewise a kill right after a
scan unmarked a profile it listed again (``scanned``) in a run whose load committed nothing, and a
``--full-refresh`` after a kill; a full refresh of the events forgets the profiles kept for their re-read."""

from __future__ import annotations

import signal

from .conftest import http_post, run_cli, source_uri
from .helpers import expected_rows
from .test_deletes import Dest
from .test_reread import by_profile

KEPT = "select parent_key from kl._omniload_reread where table_name = 'events'"


def deleted(sb, dest) -> tuple[dict, str, set]:
    """Load, delete a profile and reconcile (its events marked): (the events, the profile, its events' keys)."""
    assert dest.ingest(sb, "profiles,events", "kl.*") == 0
    events = expected_rows(sb, "events")
    victim = sorted({e["profile_id"] for e in events.values()})[0]
    http_post(sb.base_url, f"/__sandbox/delete?resource=profiles&ids={victim}")
    assert dest.ingest(sb, "profiles,events", "kl.*", "--reconcile", "profiles") == 0
    theirs = {k for k, e in events.items() if e["profile_id"] == victim}
    assert theirs and marked(dest) == theirs
    return events, victim, theirs


def restore(sb, victim: str, seconds: int = 60) -> None:
    """Bring the profile back (touched at the sandbox's now), then advance the clock (0: not: not read yet)."""
    http_post(sb.base_url, f"/__sandbox/delete?resource=profiles&restore=1&ids={victim}")
    if seconds:
        http_post(sb.base_url, f"/__sandbox/clock/advance?seconds={seconds}")


def killed_at(sb, dest, point: str, reconcile: str) -> None:
    """A profiles run killed with SIGKILL at ``point``."""
    run = run_cli("ingest", "--source-uri", source_uri(sb), "--source-table", "profiles", "--dest-uri", dest.uri,
                  "--dest-table", "kl.profiles", "--progress", "log", "--reconcile", reconcile,
                  env={"OMNILOAD_TEST_KILL_AT": point})  # fmt: skip
    assert run.returncode == -signal.SIGKILL, run.stderr


def marked(dest) -> set:
    return {k for k, at in dest.marks("events", "events").items() if at}


def all_current(sb, dest) -> bool:
    """The events are the sandbox's, none marked."""
    got = dest.marks("events", "events")
    return set(got) == set(expected_rows(sb, "events")) and not any(got.values())


def test_a_kill_after_the_parent_came_back_loses_no_revival(make_sandbox, tmp_path):
    sb = make_sandbox(scale="tiny", rate_limits="off", seed=47)
    dest = Dest("duckdb", tmp_path)
    events, victim, theirs = deleted(sb, dest)
    restore(sb, victim)
    killed_at(sb, dest, "loaded", "none")
    assert dest.marks("profiles", "profiles")[victim] is None  # merged back and committed ...
    assert marked(dest) == theirs  # ... its events not yet

    assert dest.ingest(sb, "profiles", "kl.*", "--reconcile", "none") == 0  # nothing new: no slice, no commit
    assert marked(dest) == theirs  # events not loaded yet
    assert dest.sql(KEPT) == [(victim,)]
    assert dest.ingest(sb, "events", "kl.*", "--reconcile", "none") == 0  # their next load reads them again
    assert set(events) <= set(dest.marks("events", "events")) and all_current(sb, dest)  # and new ones


def test_a_kill_after_the_scan_listed_the_parent_again_loses_no_revival(make_sandbox, tmp_path):
    """A profile that comes back by the scan (listed again, no new row to load: the load commits no slice, so the
    saved marks do not name it) and a kill right after the scan's unmark (``scanned``): its events still come
    back, at their next load (they failed to: marked forever)."""
    sb = make_sandbox(scale="tiny", rate_limits="off", seed=47)
    dest = Dest("duckdb", tmp_path)
    _, victim, theirs = deleted(sb, dest)
    before = dest.sql(f"select updated from kl.profiles where id = '{victim}'")
    restore(sb, victim, 0)  # touched at the sandbox's now: not read before the clock advances
    killed_at(sb, dest, "scanned", "profiles")
    assert dest.sql(f"select updated from kl.profiles where id = '{victim}'") == before  # not merged by the load ...
    assert dest.marks("profiles", "profiles")[victim] is None  # ... but unmarked by the scan, and committed

    assert dest.ingest(sb, "profiles", "kl.*", "--reconcile", "none") == 0
    assert dest.ingest(sb, "events", "kl.*", "--reconcile", "none") == 0
    assert all_current(sb, dest)


def test_a_full_refresh_after_a_kill_loses_no_revival(make_sandbox, tmp_path):
    """A kill after the load merged the profile back (``loaded``), then a ``--full-refresh`` of the profiles: it
    too brings back the events from the marks the killed run committed (reconcile.REVIVE; it ignored them)."""
    sb = make_sandbox(scale="tiny", rate_limits="off", seed=47)
    dest = Dest("duckdb", tmp_path)
    _, victim, theirs = deleted(sb, dest)
    restore(sb, victim)
    killed_at(sb, dest, "loaded", "none")
    assert dest.marks("profiles", "profiles")[victim] is None and marked(dest) == theirs

    assert dest.ingest(sb, "profiles", "kl.*", "--reconcile", "none", "--full-refresh") == 0
    assert dest.sql(KEPT) == [(victim,)]
    assert dest.ingest(sb, "events", "kl.*", "--reconcile", "none") == 0
    assert all_current(sb, dest)


def test_a_full_refresh_of_the_events_forgets_the_parents_kept_for_them(make_sandbox, tmp_path):
    """A ``--full-refresh`` of the events reads every event, so it forgets the profiles kept for their re-read:
    the next load does not read their events again (it did)."""
    sb = make_sandbox(scale="tiny", rate_limits="off", seed=47)
    dest = Dest("duckdb", tmp_path)
    _, victim, _ = deleted(sb, dest)
    restore(sb, victim)
    assert dest.ingest(sb, "profiles", "kl.*", "--reconcile", "profiles") == 0
    assert dest.sql(KEPT) == [(victim,)]

    assert dest.ingest(sb, "events", "kl.*", "--reconcile", "none", "--full-refresh") == 0
    assert all_current(sb, dest) and dest.sql(KEPT) == []
    seen = by_profile(sb)
    assert dest.ingest(sb, "events", "kl.*", "--reconcile", "none") == 0
    assert by_profile(sb) == seen  # no events read again by profile
