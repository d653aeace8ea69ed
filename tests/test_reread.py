"""A restored profile's events that the API hid while it was deleted (issue #23's last season mismatch): Klaviyo
serves them again after the restore with their old datetimes, older than the 7-day deep lookback, so no
incremental read finds them. The profiles reconcile that finds the profile back keeps its id in the destination
(destinations/rereads.py: DuckDB's ``_omniload_reread``; Delta: a dlt state of its own) and the next events load
reads ``equals(profile_id,"…")`` for it (reconcile.py, load.py ``TableLoad.reread``). The smallest reproduction:
3 CLI runs (tiny, seed 23), then one more events run; it fails on the code before."""

from __future__ import annotations

import signal
from urllib.parse import unquote

import duckdb
import pytest

from .conftest import http_post, run_cli, source_uri
from .helpers import expected_rows
from .test_deletes_dlt import current, run

DAY = 86_400


def by_profile(sb) -> int:
    """The requests the sandbox saw that filter events on one profile."""
    return sum(1 for _, _, q in list(sb.state.log) if "equals(profile_id" in unquote(str(q)))


def restore_after_ten_days(sb, kind: str, tmp_path, tables: str, last: str, name: str = "profiles",
                           count: int = 60) -> list[str]:  # fmt: skip
    """The reproduction's 3 runs: load; delete ``count`` records of ``name`` (60 profiles), 9 days on, run (what
    they got meanwhile is hidden); a day on, restore them, run ``last`` with ``--reconcile all``. The restored
    records."""
    assert run(sb, kind, tmp_path, tables) == 0
    victims = sorted(expected_rows(sb, name))[:count]
    http_post(sb.base_url, f"/__sandbox/delete?resource={name}&ids={','.join(victims)}")
    http_post(sb.base_url, f"/__sandbox/clock/advance?seconds={9 * DAY}")
    assert run(sb, kind, tmp_path, tables, "--reconcile", name) == 0
    http_post(sb.base_url, f"/__sandbox/clock/advance?seconds={DAY}")
    http_post(sb.base_url, f"/__sandbox/delete?resource={name}&restore=1&ids={','.join(victims)}")
    assert run(sb, kind, tmp_path, last, "--reconcile", "all") == 0
    return victims


def events_as_truth(sb, kind: str, tmp_path, victims: list[str]) -> None:
    truth = expected_rows(sb, "events")
    late = {k for k, e in truth.items() if e["profile_id"] in victims}
    got = current(kind, tmp_path, "events")
    assert late and late <= set(got), sorted(late - set(got))[:5]
    assert set(got) == set(truth) and not any(r.get("_omniload_deleted_at") for r in got.values())


@pytest.mark.parametrize("kind", ["duckdb", "delta"])
def test_a_restored_profile_brings_back_the_events_it_got_while_deleted(make_sandbox, tmp_path, kind):
    rereads = ["events", "event_attributions"] if kind == "duckdb" else ["events"]  # Delta: events alone (time)
    tables = ",".join(["profiles", *rereads])
    sb = make_sandbox(scale="tiny", rate_limits="off", seed=23)
    victims = restore_after_ten_days(sb, kind, tmp_path, tables, tables)
    assert run(sb, kind, tmp_path, ",".join(rereads)) == 0  # loads after the reconcile that kept the profiles

    events_as_truth(sb, kind, tmp_path, victims)
    if "event_attributions" in rereads:  # it rides on events: their attributions came back with them
        missing = set(expected_rows(sb, "event_attributions")) - set(current(kind, tmp_path, "event_attributions"))
        assert not missing, sorted(missing)[:5]
    asked = by_profile(sb)
    # each restored profile read once per table (a page or two), then forgotten
    assert 60 * len(rereads) <= asked <= 120 * len(rereads), asked
    assert run(sb, kind, tmp_path, ",".join(rereads)) == 0
    assert by_profile(sb) == asked


def test_a_kill_before_the_events_were_read_again_loses_no_profile(make_sandbox, tmp_path):
    """The restored profiles are kept in the destination until an events load committed their events: one killed
    (SIGKILL) after its own load, before it read them, leaves them kept, and the next reads them."""
    sb = make_sandbox(scale="tiny", rate_limits="off", seed=23)
    victims = restore_after_ten_days(sb, "duckdb", tmp_path, "profiles,events", "profiles")
    db = duckdb.connect(str(tmp_path / "k.duckdb"), read_only=True)
    try:
        assert {r[0] for r in db.sql("select parent_key from main._omniload_reread").fetchall()} == set(victims)
    finally:
        db.close()
    killed = run_cli("ingest", "--source-uri", source_uri(sb), "--source-table", "events", "--dest-uri",
                     f"duckdb:///{tmp_path}/k.duckdb", "--dest-table", "main.*", "--progress", "log",
                     env={"OMNILOAD_TEST_KILL_AT": "loaded"})  # fmt: skip
    assert killed.returncode == -signal.SIGKILL, killed.stderr
    assert by_profile(sb) == 0
    assert run(sb, "duckdb", tmp_path, "events") == 0
    events_as_truth(sb, "duckdb", tmp_path, victims)
    assert 60 <= by_profile(sb) <= 120


@pytest.mark.parametrize(("kind", "parent"), [("duckdb", "segments"), ("delta", "segments"), ("duckdb", "lists")])
def test_a_restored_segment_brings_back_the_members_who_joined_while_it_was_deleted(make_sandbox, tmp_path, kind,
                                                                                   parent, monkeypatch):  # fmt: skip
    """The same for a child table (issue #23, seed 23, sparse, 30 days: membership ``('yAIuW3', '…2V')`` missing
    from step 68 to the end): a segment deleted, a profile joining it meanwhile (hidden, its endpoint answers 404),
    the segment restored: the membership is served again with its old ``joined_group_at``, older than the
    memberships' cursor. The segments reconcile keeps the segment's id, the next memberships load reads its
    endpoint whole."""
    # one table at a time, the heaviest first: the memberships load before the reconcile of their parents that
    # finds the segments back (side by side, it may end after them): their rereads wait for it
    monkeypatch.setenv("OMNILOAD_TABLE_PARALLELISM", "1")
    sb = make_sandbox(scale="tiny", rate_limits="off", seed=23)
    child, column = f"{parent[:-1]}-memberships", f"{parent[:-1]}_id"  # a list's members alike
    victims = restore_after_ten_days(sb, kind, tmp_path, f"{parent},{child}", f"{child},{parent}", parent, 2)

    truth = expected_rows(sb, child)
    got = current(kind, tmp_path, child.replace("-", "_"))
    joined = {k for k, m in truth.items() if m[column] in victims and k not in got}
    assert not joined, sorted(joined)[:5]
    assert set(got) == set(truth) and not any(r.get("_omniload_deleted_at") for r in got.values())
    # members of the victims who joined while they were deleted: the case itself (else the test proves nothing)
    since = sb.state.dataset.now_us - 10 * DAY * 1_000_000
    late = [k for k, m in truth.items() if m[column] in victims and m["joined_group_at"].timestamp() * 1e6 > since]
    assert late


def test_a_restored_profile_brings_back_the_memberships_it_got_while_deleted(make_sandbox, tmp_path, monkeypatch):
    """A profile deleted, then added to a segment or list meanwhile (hidden), then restored (seed 23, sparse, 30
    days: ``('FPbMmL', '…4R')`` missing from step 90, the profile deleted at step 21, joined 2026-07-21, restored at
    step 90): the memberships come back with their old ``joined_group_at``. By profile, every list's and segment's
    endpoint is read whole (a list's members cannot be filtered by profile id) and the restored profiles' rows kept."""
    monkeypatch.setenv("OMNILOAD_TABLE_PARALLELISM", "1")  # the memberships before the profiles: their rereads wait
    sb = make_sandbox(scale="tiny", rate_limits="off", seed=23)
    children = ("list-memberships", "segment-memberships")
    tables = ",".join(("profiles", *children))
    victims = restore_after_ten_days(sb, "duckdb", tmp_path, tables, ",".join((*children, "profiles")))
    since = sb.state.dataset.now_us - 10 * DAY * 1_000_000
    late = 0
    for child in children:
        truth = expected_rows(sb, child)
        got = current("duckdb", tmp_path, child.replace("-", "_"))
        assert not set(truth) - set(got), sorted(set(truth) - set(got))[:5]
        assert set(got) == set(truth) and not any(r.get("_omniload_deleted_at") for r in got.values())
        late += sum(
            1 for m in truth.values() if m["profile_id"] in victims and m["joined_group_at"].timestamp() * 1e6 > since
        )
    assert late  # the case itself: members who joined while deleted
