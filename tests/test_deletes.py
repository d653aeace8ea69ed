"""Deletes (issue #14): the destination forgets what Klaviyo forgot.

Records are deleted in the sandbox (``POST /__sandbox/delete``, which also drops a profile's events and
memberships); a run then marks exactly the destination rows whose key is gone (``_omniload_deleted_at``), or
deletes them with ``--hard-deletes``, on DuckDB and PostgreSQL (other destinations: test_deletes_dlt.py); nothing else changes; a scan that does not finish
or lists too few keys marks nothing.
"""

from __future__ import annotations

from urllib.parse import unquote

import duckdb
import pytest

from klaviyo_sandbox import testing as truth

from .conftest import http_post, source_uri
from .helpers import api_requests, expected_rows, ingest, key_of, row_key

DELETED = "_omniload_deleted_at"


def delete(sb, resource: str, count: int) -> list[str]:
    return http_post(sb.base_url, f"/__sandbox/delete?resource={resource}&count={count}")["deleted"]


def keyed(sb, resource: str, shown: list[str]):
    """Ids as the admin route shows them -> destination keys (a membership is ``list_id:profile_id``)."""
    return {tuple(s.split(":")) for s in shown} if ":" in (shown[0] if shown else "") else set(shown)


def marks(db: str, table: str) -> dict:
    """key -> _omniload_deleted_at (None: current) of every row."""
    con = duckdb.connect(db, read_only=True)
    try:
        cols = [r[0] for r in con.execute(f'describe "main"."{table}"').fetchall()]
        key = key_of(table)
        sel = ", ".join(f'"{c}"' for c in key)
        mark = f'"{DELETED}"' if DELETED in cols else "null"
        return {
            row_key(dict(zip(key, r, strict=False)), key): r[-1]
            for r in con.execute(f'select {sel}, {mark} from "{table}"').fetchall()
        }
    finally:
        con.close()


def assert_converged(db: str, sb, name: str, hard: bool = False) -> dict:
    """Rows whose key the sandbox still holds are current; the others are marked (or, hard, gone)."""
    got = marks(db, name.replace("-", "_"))
    want = set(expected_rows(sb, name))
    current = {k for k, at in got.items() if at is None}
    assert current == want, (
        f"{name}: {len(want - current)} current rows missing, {len(current - want)} stale rows unmarked"
    )
    if hard:
        assert set(got) == want, f"{name}: {len(set(got) - want)} deleted rows kept"
    return got


def test_deleted_records_are_marked_and_nothing_else_changes(make_sandbox, tmp_path):
    sb = make_sandbox(scale="tiny", rate_limits="off", seed=3)
    db = str(tmp_path / "k.duckdb")
    tables = "events,profiles,lists,campaigns,list-memberships"
    assert ingest(sb, tables, db) == 0
    before = {t: marks(db, t.replace("-", "_")) for t in tables.split(",")}
    gone_profiles = set(delete(sb, "profiles", 20))
    gone_lists = set(delete(sb, "lists", 2))
    gone_campaigns = set(delete(sb, "campaigns", 3))
    assert ingest(sb, tables, db, "--reconcile", "profiles,list-memberships") == 0
    for name in ("profiles", "lists", "campaigns", "list-memberships", "events"):
        got = assert_converged(db, sb, name)
        assert set(got) == set(before[name]), f"{name}: rows appeared or vanished"
    assert {k for k, at in marks(db, "profiles").items() if at} == gone_profiles
    assert {k for k, at in marks(db, "lists").items() if at} == gone_lists
    assert {k for k, at in marks(db, "campaigns").items() if at} == gone_campaigns
    con = duckdb.connect(db, read_only=True)
    marked_events = con.execute(f'select distinct profile_id from events where "{DELETED}" is not null').fetchall()
    con.close()
    assert marked_events and {r[0] for r in marked_events} <= gone_profiles  # by profile, not by scanning events


def test_cheap_tables_reconcile_on_every_run_large_ones_only_when_asked(make_sandbox, tmp_path):
    sb = make_sandbox(scale="tiny", rate_limits="off", seed=4)
    db = str(tmp_path / "k.duckdb")
    assert ingest(sb, "lists,list-memberships", db) == 0
    delete(sb, "list-memberships", 30)
    gone = delete(sb, "lists", 1)
    sb.state.log.clear()
    assert ingest(sb, "lists,list-memberships", db) == 0
    assert {k for k, at in marks(db, "lists").items() if at} == set(gone)  # lists: cheap, reconciled unasked
    got = marks(db, "list_memberships")
    assert {k for k, at in got.items() if at} == {k for k in got if k[0] in gone}  # only the deleted list's, by cascade
    assert not any("fields[profile]=id" in unquote(q) for _, n, q in sb.state.log if n == "list-memberships")
    assert ingest(sb, "lists,list-memberships", db, "--reconcile-every", "7d") == 0  # never reconciled: due now
    assert_converged(db, sb, "list-memberships")


def test_hard_deletes_remove_rows_and_a_reappearing_record_is_current_again(make_sandbox, tmp_path):
    sb = make_sandbox(scale="tiny", rate_limits="off", seed=6)
    db = str(tmp_path / "k.duckdb")
    assert ingest(sb, "profiles,segments", db) == 0
    gone = delete(sb, "profiles", 10)
    assert ingest(sb, "profiles", db, "--reconcile", "profiles") == 0
    assert {k for k, at in marks(db, "profiles").items() if at} == set(gone)
    http_post(sb.base_url, f"/__sandbox/delete?resource=profiles&restore=1&ids={gone[0]}")  # back, updated now
    http_post(sb.base_url, "/__sandbox/clock/advance?seconds=60")
    assert ingest(sb, "profiles", db, "--reconcile", "none") == 0  # merged again: unmarked by the merge itself
    assert marks(db, "profiles")[gone[0]] is None
    delete(sb, "segments", 2)
    assert ingest(sb, "profiles,segments", db, "--reconcile", "all", "--hard-deletes") == 0
    assert_converged(db, sb, "profiles", hard=False)
    assert_converged(db, sb, "segments", hard=True)


def test_a_scan_that_does_not_finish_or_lists_too_few_keys_marks_nothing(make_sandbox, tmp_path, capsys):
    sb = make_sandbox(scale="tiny", rate_limits="off", seed=7)
    db = str(tmp_path / "k.duckdb")
    assert ingest(sb, "profiles", db) == 0
    delete(sb, "profiles", 5)
    before = api_requests(sb)
    assert ingest(sb, "profiles", db, "--reconcile", "none") == 0
    load = api_requests(sb) - before
    # the preflight's probe, the load's requests and the scan's first page pass; its second page is throttled
    # longer than the run may wait
    http_post(sb.base_url, f"/__sandbox/faults?spec=throttle=1.0,after={1 + load + 1}")
    assert ingest(sb, "profiles", db, "--reconcile", "profiles", "--max-retry-after", "0.5") == 1
    scan = [q for _, n, q in sb.state.log if n == "profiles" and "fields[profile]=id" in unquote(q)]
    assert len(scan) >= 2 and sb.state.requests["fault:throttle"] >= 1  # the scan had begun when it failed
    assert not any(marks(db, "profiles").values())
    http_post(sb.base_url, "/__sandbox/faults?spec=")
    delete(sb, "profiles", 200)
    capsys.readouterr()
    assert ingest(sb, "profiles", db, "--reconcile", "profiles") == 1
    err = capsys.readouterr()
    assert "--allow-mass-delete" in err.out + err.err
    assert not any(marks(db, "profiles").values())
    assert ingest(sb, "profiles", db, "--reconcile", "profiles", "--allow-mass-delete") == 0
    assert_converged(db, sb, "profiles")


def test_reconcile_usage_errors(sandbox, tmp_path):
    db = str(tmp_path / "k.duckdb")
    assert ingest(sandbox, "lists", db, "--reconcile", "profiles") == 2
    assert ingest(sandbox, "events", db, "--reconcile", "events") == 2
    from omniload.cli import main

    out = tmp_path / "files"
    assert main(["ingest", "--source-uri", source_uri(sandbox), "--source-table", "lists", "--dest-uri",
                 f"parquet:///{out}", "--reconcile", "lists", "--hard-deletes"]) == 2  # fmt: skip  # files: tombstones only


def _pg_marks(server, database: str, table: str) -> dict:
    con = server.connect(database)
    try:
        with con.cursor() as cur:
            cur.execute(f'select id, "{DELETED}" from "klaviyo"."{table}"')
            return dict(cur.fetchall())
    finally:
        con.close()


def test_postgres_marks_then_hard_deletes(postgres, make_sandbox):
    from omniload.cli import main

    sb = make_sandbox(scale="tiny", rate_limits="off", seed=8)
    postgres.create_database("kl_del")
    uri = postgres.uri("kl_del")

    def run(*extra: str) -> int:
        return main(["ingest", "--source-uri", source_uri(sb), "--source-table", "profiles,events,templates",
                     "--dest-uri", uri, "--dest-table", "klaviyo.*", "--progress", "log", *extra])  # fmt: skip

    assert run() == 0
    gone = set(delete(sb, "profiles", 15))
    gone_templates = set(delete(sb, "templates", 2))
    assert run("--reconcile", "profiles") == 0
    assert {k for k, at in _pg_marks(postgres, "kl_del", "profiles").items() if at} == gone
    assert {k for k, at in _pg_marks(postgres, "kl_del", "templates").items() if at} == gone_templates
    events = _pg_marks(postgres, "kl_del", "events")
    want = set(expected_rows(sb, "events"))
    assert {k for k, at in events.items() if at is None} == want and len(events) > len(want)
    delete(sb, "profiles", 5)
    assert run("--reconcile", "profiles", "--hard-deletes") == 0
    now = {p["id"] for p in truth.records(sb.state, "profiles")}
    got = _pg_marks(postgres, "kl_del", "profiles")
    assert set(got) == now and not any(got.values())  # every deleted profile's row is gone, marked before or not


@pytest.mark.parametrize("rows,expected", [(0, 1), (100, 1), (101, 2)])
def test_scan_cost_estimate(rows, expected):
    from omniload.sources.klaviyo.keys import scan_cost
    from omniload.sources.klaviyo.tables import TABLES

    assert scan_cost(TABLES["profiles"], TABLES, rows, rows).requests == expected


def test_a_table_read_again_by_parent_has_no_dependents_of_its_own():
    """reconcile.py brings back nothing after a re-read (TableLoad.reread): it holds only while no table the source
    reads again by parent has dependents; one that had some would need that path, and its test, first."""
    from omniload.sources.klaviyo.tables import TABLES

    reread = {name: spec.info for name, spec in TABLES.items() if spec.info.reread_by}
    assert set(reread) == {"events", "event_attributions", "list-memberships", "segment-memberships"}
    assert {name: info.dependents for name, info in reread.items() if info.dependents} == {}


class Dest:
    """A DuckDB file or a PostgreSQL database the tests load into and read back: rows and their marks."""

    def __init__(self, kind: str, tmp_path, postgres=None, name: str = "") -> None:
        self.kind, self.pg, self.name = kind, postgres, name
        if kind == "duckdb":
            self.db = str(tmp_path / "k.duckdb")
            self.uri = f"duckdb:///{self.db}"
        else:
            postgres.create_database(name)
            self.uri = postgres.uri(name)

    def sql(self, statement: str, fetch: bool = True) -> list[tuple]:
        if self.kind == "duckdb":
            con = duckdb.connect(self.db)
            try:
                cur = con.execute(statement)
                return cur.fetchall() if fetch else []
            finally:
                con.close()
        con = self.pg.connect(self.name)
        try:
            with con, con.cursor() as cur:
                cur.execute(statement)
                return cur.fetchall() if fetch else []
        finally:
            con.close()

    def marks(self, table: str, source: str) -> dict:
        """key -> _omniload_deleted_at of every row of ``kl.table`` (loaded from ``source``)."""
        key = key_of(source)
        cols = {
            r[0]
            for r in self.sql(
                f"select column_name from information_schema.columns where table_schema = 'kl' and table_name = '{table}'"
            )
        }
        mark = f'"{DELETED}"' if DELETED in cols else "null"
        found = self.sql(f'select {", ".join(f"{chr(34)}{c}{chr(34)}" for c in key)}, {mark} from "kl"."{table}"')
        return {row_key(dict(zip(key, r, strict=False)), key): r[-1] for r in found}

    def ingest(self, sb, tables: str, dest_table: str, *extra: str) -> int:
        from omniload.cli import main

        return main(["ingest", "--source-uri", source_uri(sb), "--source-table", tables, "--dest-uri", self.uri,
                     "--dest-table", dest_table, "--progress", "log", *extra])  # fmt: skip


@pytest.fixture(params=["duckdb", "postgres"])
def dest(request, tmp_path):
    if request.param == "duckdb":
        return Dest("duckdb", tmp_path)
    return Dest(
        "postgres",
        tmp_path,
        request.getfixturevalue("postgres"),
        f"kl_{request.node.name[-40:].lower()}".replace("[", "_").replace("]", "").replace("-", "_"),
    )


def current_of(got: dict) -> set:
    return {k for k, at in got.items() if at is None}


def test_dependents_are_found_by_what_was_loaded_never_by_name(make_sandbox, dest):
    """Issue #20, 2: profiles and events loaded as k_profiles and k_events beside an unrelated table named
    events: a deleted profile's events go from k_events, the unrelated table is untouched."""
    sb = make_sandbox(scale="tiny", rate_limits="off", seed=41)
    assert dest.ingest(sb, "profiles", "kl.k_profiles") == 0
    assert dest.ingest(sb, "events", "kl.k_events") == 0
    events = expected_rows(sb, "events")
    by_profile: dict = {}
    for e in events.values():
        by_profile.setdefault(e["profile_id"], []).append(e["id"])
    victim = max(by_profile, key=lambda p: len(by_profile[p]))
    dest.sql("create table kl.events (id text, profile_id text, note text)", fetch=False)
    dest.sql(
        f"insert into kl.events values ('x1', '{victim}', 'not omniload''s'), ('x2', 'someone', 'neither')", fetch=False
    )
    http_post(sb.base_url, f"/__sandbox/delete?resource=profiles&ids={victim}")
    assert dest.ingest(sb, "profiles", "kl.k_profiles", "--reconcile", "profiles", "--hard-deletes") == 0
    assert victim not in dest.marks("k_profiles", "profiles")
    got = dest.marks("k_events", "events")
    assert set(got) == set(expected_rows(sb, "events")) and not any(got.values())  # its events gone, no other
    assert len(set(events) - set(got)) == len(by_profile[victim]) > 1
    assert sorted(dest.sql("select id, profile_id, note from kl.events")) == [
        ("x1", victim, "not omniload's"),
        ("x2", "someone", "neither"),
    ]
    # soft: marked in k_events, and a table loaded from events under yet another name is found as well
    assert dest.ingest(sb, "events", "kl.more_events") == 0
    second = next(p for p in sorted(by_profile, key=lambda p: -len(by_profile[p])) if p != victim)
    http_post(sb.base_url, f"/__sandbox/delete?resource=profiles&ids={second}")
    assert dest.ingest(sb, "profiles", "kl.k_profiles", "--reconcile", "profiles") == 0
    for table in ("k_events", "more_events"):
        got = dest.marks(table, "events")
        assert current_of(got) == set(expected_rows(sb, "events")), table
        assert {k for k, at in got.items() if at} == set(by_profile[second]), table
    assert len(dest.sql("select * from kl.events")) == 2


def test_a_profile_that_comes_back_brings_back_its_events_and_memberships(make_sandbox, dest):
    """Issue #20, 3: a restored profile's events and memberships are current again (the API lists them again,
    though their times are older than the cursors); a membership gone for another cause (its list was
    deleted) stays marked."""
    sb = make_sandbox(scale="tiny", rate_limits="off", seed=42)
    tables = "profiles,events,lists,list-memberships"
    assert dest.ingest(sb, tables, "kl.*") == 0
    events = expected_rows(sb, "events")
    members = expected_rows(sb, "list-memberships")
    lists_of: dict = {}
    for list_id, profile_id in members:
        lists_of.setdefault(profile_id, []).append(list_id)
    with_events = {e["profile_id"] for e in events.values()}
    victim = max((p for p in lists_of if p in with_events and len(lists_of[p]) >= 2), key=lambda p: len(lists_of[p]))
    gone_list = lists_of[victim][0]
    http_post(sb.base_url, f"/__sandbox/delete?resource=lists&ids={gone_list}")
    assert dest.ingest(sb, tables, "kl.*") == 0  # lists are cheap: reconciled, their memberships marked
    http_post(sb.base_url, f"/__sandbox/delete?resource=profiles&ids={victim}")
    assert dest.ingest(sb, tables, "kl.*", "--reconcile", "profiles") == 0
    marked_events = {k for k, at in dest.marks("events", "events").items() if at}
    assert marked_events == {k for k, e in events.items() if e["profile_id"] == victim} and marked_events
    assert all(at for (_, p), at in dest.marks("list_memberships", "list-memberships").items() if p == victim)
    http_post(sb.base_url, f"/__sandbox/delete?resource=profiles&restore=1&ids={victim}")
    http_post(sb.base_url, "/__sandbox/clock/advance?seconds=60")
    assert dest.ingest(sb, tables, "kl.*") == 0
    assert dest.marks("profiles", "profiles")[victim] is None
    got = dest.marks("events", "events")
    assert current_of(got) == set(expected_rows(sb, "events")) and not any(got.values())  # all listed again
    got = dest.marks("list_memberships", "list-memberships")
    want = set(expected_rows(sb, "list-memberships"))
    assert current_of(got) == want and (gone_list, victim) in got and (gone_list, victim) not in want


def test_reconcile_all_takes_every_table_that_can_be_reconciled(make_sandbox, dest):
    """Issue #20, 18: ``--reconcile all`` with tables that are never scanned (events, tags) in the run reconciles
    the others, the large ones too (memberships), instead of refusing the run."""
    sb = make_sandbox(scale="tiny", rate_limits="off", seed=44)
    tables = "events,tags,lists,list-memberships"
    assert dest.ingest(sb, tables, "kl.*") == 0
    gone = set(delete(sb, "list-memberships", 20))
    assert dest.ingest(sb, tables, "kl.*") == 0  # memberships are not cheap: not scanned unasked
    assert not any(dest.marks("list_memberships", "list-memberships").values())
    sb.state.log.clear()
    assert dest.ingest(sb, tables, "kl.*", "--reconcile", "all") == 0
    assert any("fields[profile]=id" in unquote(q) for _, n, q in sb.state.log if n == "list-memberships")
    got = dest.marks("list_memberships", "list-memberships")
    assert {k for k, at in got.items() if at} == keyed(sb, "list-memberships", list(gone))
    assert current_of(got) == set(expected_rows(sb, "list-memberships"))


def test_a_profile_merged_back_brings_back_its_events_even_when_the_scan_is_refused(make_sandbox, dest, capsys):
    """Issue #20, 3: the load merged the restored profile again (unmarked); the scan after it is refused (most
    profiles are gone); its events are current again all the same at the events' next load (issue #23: read again
    by profile), nothing else changes."""
    sb = make_sandbox(scale="tiny", rate_limits="off", seed=45)
    assert dest.ingest(sb, "profiles,events", "kl.*") == 0
    events = expected_rows(sb, "events")
    victim = next(iter(sorted({e["profile_id"] for e in events.values()})))
    http_post(sb.base_url, f"/__sandbox/delete?resource=profiles&ids={victim}")
    assert dest.ingest(sb, "profiles,events", "kl.*", "--reconcile", "profiles") == 0
    assert {k for k, at in dest.marks("events", "events").items() if at} == {
        k for k, e in events.items() if e["profile_id"] == victim
    }
    http_post(sb.base_url, f"/__sandbox/delete?resource=profiles&restore=1&ids={victim}")
    others = sorted(p["id"] for p in truth.records(sb.state, "profiles") if p["id"] != victim)[:200]
    http_post(sb.base_url, f"/__sandbox/delete?resource=profiles&ids={','.join(others)}")
    http_post(sb.base_url, "/__sandbox/clock/advance?seconds=60")
    capsys.readouterr()
    assert dest.ingest(sb, "profiles", "kl.*", "--reconcile", "profiles") == 1
    out = capsys.readouterr()
    assert "--allow-mass-delete" in out.out + out.err
    assert not any(dest.marks("profiles", "profiles").values())  # the guard: nothing marked; the victim merged back
    assert {k for k, at in dest.marks("events", "events").items() if at} == {
        k for k, e in events.items() if e["profile_id"] == victim
    }  # events not loaded in that run: they wait for their own load
    assert dest.ingest(sb, "events", "kl.*", "--reconcile", "none") == 0
    got = dest.marks("events", "events")  # the others' events stay too: events are never scanned
    assert not any(got.values()) and set(got) == set(events) | set(expected_rows(sb, "events"))


@pytest.mark.parametrize("how", [("--incremental-strategy", "replace", "--interval-start", "2000-01-01"), ("--full-refresh",)],
                         ids=["replace", "full-refresh"])  # fmt: skip
def test_a_profile_back_in_a_replaced_table_brings_back_its_events(make_sandbox, dest, how):
    """Issue #20, 3: profiles replaced on request (``--incremental-strategy replace`` or ``--full-refresh``, no
    scan): the restored profile is a current row again, and so are its events from their next load on (issue
    #23: read again by profile)."""
    sb = make_sandbox(scale="tiny", rate_limits="off", seed=46)
    assert dest.ingest(sb, "profiles,events", "kl.*") == 0
    events = expected_rows(sb, "events")
    victim = sorted({e["profile_id"] for e in events.values()})[-1]
    http_post(sb.base_url, f"/__sandbox/delete?resource=profiles&ids={victim}")
    assert dest.ingest(sb, "profiles", "kl.*", "--reconcile", "profiles") == 0
    assert any(dest.marks("events", "events").values())
    http_post(sb.base_url, f"/__sandbox/delete?resource=profiles&restore=1&ids={victim}")
    http_post(sb.base_url, "/__sandbox/clock/advance?seconds=60")
    assert dest.ingest(sb, "profiles", "kl.*", *how, "--reconcile", "none") == 0
    assert dest.marks("profiles", "profiles")[victim] is None
    theirs = {k for k, e in events.items() if e["profile_id"] == victim}
    assert {k for k, at in dest.marks("events", "events").items() if at} == theirs  # until the events' next load
    assert dest.ingest(sb, "events", "kl.*", "--reconcile", "none") == 0
    got = dest.marks("events", "events")
    assert not any(got.values()) and set(events) <= set(got) == set(expected_rows(sb, "events"))


def test_a_restored_profile_leaves_marked_the_memberships_that_ended_while_it_was_gone(make_sandbox, dest):
    """Issue #23 (season seed 23): a profile's memberships are marked with it when it is deleted; a membership
    that ended meanwhile (the member left the list before the memberships were scanned, or the list was deleted
    while the profile was) keeps that mark, so the profile's restore no longer unmarks it: the memberships are
    read again by profile and exactly those the source holds come back current, in the run that restores the
    profile when it loads the memberships too."""
    sb = make_sandbox(scale="tiny", rate_limits="off", seed=48)
    tables = "profiles,lists,list-memberships"
    assert dest.ingest(sb, tables, "kl.*") == 0
    lists_of: dict = {}
    for list_id, profile_id in expected_rows(sb, "list-memberships"):
        lists_of.setdefault(profile_id, []).append(list_id)
    victim = max(lists_of, key=lambda p: (len(lists_of[p]), p))
    left, gone_list, *stay = sorted(lists_of[victim])
    assert stay, "the victim needs three lists"
    http_post(sb.base_url, f"/__sandbox/delete?resource=list-memberships&ids={left}:{victim}")  # the member leaves
    http_post(sb.base_url, f"/__sandbox/delete?resource=profiles&ids={victim}")
    assert dest.ingest(sb, "profiles", "kl.*", "--reconcile", "profiles") == 0
    mark = dest.marks("profiles", "profiles")[victim]
    theirs = {k: at for k, at in dest.marks("list_memberships", "list-memberships").items() if k[1] == victim}
    assert mark and set(theirs) == {(lst, victim) for lst in lists_of[victim]} and set(theirs.values()) == {mark}
    http_post(sb.base_url, f"/__sandbox/delete?resource=lists&ids={gone_list}")  # while the profile is deleted
    assert dest.ingest(sb, "lists", "kl.*") == 0  # lists are cheap: reconciled (the membership keeps its mark)
    assert dest.marks("lists", "lists")[gone_list]
    http_post(sb.base_url, f"/__sandbox/delete?resource=profiles&restore=1&ids={victim}")
    http_post(sb.base_url, "/__sandbox/clock/advance?seconds=60")
    assert dest.ingest(sb, "profiles,list-memberships", "kl.*", "--reconcile", "none") == 0
    assert dest.marks("profiles", "profiles")[victim] is None
    got = dest.marks("list_memberships", "list-memberships")
    want = set(expected_rows(sb, "list-memberships"))
    assert {(lst, victim) for lst in stay} <= want and (left, victim) not in want and (gone_list, victim) not in want
    assert current_of(got) == want  # the ended ones are not brought back, the others are
    assert got[(left, victim)] == mark and got[(gone_list, victim)] == mark
