"""Deletes (issue #14) on the destinations reached through dlt merges (tombstones.py): SQLite (sqlalchemy),
Delta and Iceberg tables, DuckDB through the same generic path, and append-only files (tombstone rows).

Each kind is read back with its own reader: the rows whose key the sandbox dropped are marked (or gone with
``--hard-deletes``), every other row is exactly as it was, a deleted profile's events are marked by profile,
and a scan that does not finish or lists too few keys marks nothing.
"""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path
from urllib.parse import unquote

import duckdb
import pyarrow as pa
import pyarrow.csv as pacsv
import pyarrow.parquet as pq
import pytest

from omniload import destinations
from omniload.cli import main
from omniload.destinations.tombstones import DltDeletes

from .conftest import http_post, source_uri
from .helpers import api_requests, expected_rows, key_of, row_key
from .test_deletes import delete

DELETED = "_omniload_deleted_at"
URIS = {"sqlite": "sqlite:///{d}/k.db", "delta": "delta:///{d}/lake", "iceberg": "iceberg:///{d}/lake",
        "duckdb": "duckdb:///{d}/k.duckdb", "parquet": "parquet:///{d}/files", "csv": "csv:///{d}/files",
        "jsonl": "jsonl:///{d}/files"}  # fmt: skip
FILES = ("parquet", "csv", "jsonl")


class GenericDuckDB(DltDeletes, destinations.DuckDB):
    """DuckDB marking through dlt merges instead of its SQL (the path of every warehouse)."""


@pytest.fixture
def generic_duckdb(monkeypatch):
    monkeypatch.setattr(destinations, "DuckDB", GenericDuckDB)


def _arrow(kind: str, d: Path, table: str) -> pa.Table:
    if kind == "sqlite":
        con = sqlite3.connect(d / "k.db")
        try:
            cur = con.execute(f'select * from "{table}"')
            names = [c[0] for c in cur.description]
            return pa.Table.from_pylist([dict(zip(names, r, strict=False)) for r in cur.fetchall()])
        finally:
            con.close()
    if kind == "duckdb":
        con = duckdb.connect(str(d / "k.duckdb"), read_only=True)
        try:
            return con.sql(f'select * from "main"."{table}"').to_arrow_table()
        finally:
            con.close()
    if kind == "delta":
        from deltalake import DeltaTable

        return DeltaTable(str(d / "lake" / "kl" / table)).to_pyarrow_table()
    if kind == "iceberg":
        from pyiceberg.table import StaticTable

        meta = sorted((d / "lake" / "kl" / table / "metadata").glob("*.metadata.json"))[-1]
        return StaticTable.from_metadata(str(meta)).scan().to_arrow()
    parts = []
    for f in sorted((d / "files" / "kl" / table).glob(f"*.{kind}")):
        if kind == "parquet":
            parts.append(pq.read_table(f))
        elif kind == "csv":
            parts.append(pacsv.read_csv(f, convert_options=pacsv.ConvertOptions(strings_can_be_null=True)))
        else:
            parts.append(pa.Table.from_pylist([json.loads(line) for line in f.read_text().splitlines() if line]))
    return pa.concat_tables(parts, promote_options="permissive")


def current(kind: str, d: Path, table: str) -> dict:
    """key -> row as a reader applies it: files keep each key's newest row (largest _dlt_load_id)."""
    key = key_of(table)
    out: dict = {}
    for rec in sorted(_arrow(kind, d, table).to_pylist(), key=lambda r: str(r.get("_dlt_load_id"))):
        k = row_key(rec, key)
        assert kind in FILES or k not in out, f"duplicate key {k} in {table}"
        out[k] = {c: v for c, v in rec.items() if not c.startswith("_dlt_")}
    return out


def marked(rows: dict) -> set:
    return {k for k, r in rows.items() if r.get(DELETED) is not None}


def run(sb, kind: str, d: Path, tables: str, *extra: str) -> int:
    return main(["ingest", "--source-uri", source_uri(sb), "--source-table", tables, "--dest-uri",
                 URIS[kind].format(d=d), "--dest-table", "kl.*" if kind not in ("sqlite", "duckdb") else "main.*",
                 "--progress", "log", *extra])  # fmt: skip


KINDS = ["sqlite", "delta", "iceberg", "parquet", "csv", "jsonl", "duckdb"]


@pytest.mark.parametrize("kind", KINDS)
def test_deleted_records_are_marked_and_nothing_else_changes(make_sandbox, tmp_path, kind, request):
    if kind == "duckdb":
        request.getfixturevalue("generic_duckdb")
    sb = make_sandbox(scale="tiny", rate_limits="off", seed=31)
    tables = "profiles,events,lists"
    assert run(sb, kind, tmp_path, tables) == 0
    before = {t: current(kind, tmp_path, t) for t in tables.split(",")}
    gone = set(delete(sb, "profiles", 12))
    gone_lists = set(delete(sb, "lists", 2))
    assert run(sb, kind, tmp_path, tables, "--reconcile", "profiles") == 0
    after = {t: current(kind, tmp_path, t) for t in tables.split(",")}
    assert marked(after["profiles"]) == gone and marked(after["lists"]) == gone_lists
    for name in ("profiles", "lists"):
        assert set(after[name]) == set(before[name]), f"{name}: rows appeared or vanished"
        assert {k for k in after[name] if k not in marked(after[name])} == set(expected_rows(sb, name))
        for k, row in after[name].items():
            if k in marked(after[name]) and kind in FILES:  # a tombstone: the key and the mark alone
                assert all(v is None for c, v in row.items() if c not in (*key_of(name), DELETED)), row
            else:  # marked rows keep every value; the others are untouched
                assert {c: v for c, v in row.items() if c != DELETED} == {
                    c: v for c, v in before[name][k].items() if c != DELETED
                }
    by_profile = {k for k, r in after["events"].items() if r.get(DELETED) is not None}
    want = {k for k, r in before["events"].items() if r["profile_id"] in gone}
    assert want and by_profile == want  # the deleted profiles' events, found by profile_id, not by a scan
    http_post(sb.base_url, "/__sandbox/clock/advance?seconds=86400")
    assert run(sb, kind, tmp_path, tables, "--reconcile", "none") == 0  # later loads merge around the marks
    later = current(kind, tmp_path, "profiles")
    assert marked(later) == gone and {k for k in later if k not in gone} == set(expected_rows(sb, "profiles"))
    if kind == "duckdb":  # marked by dlt merges, not by deletes.py's SQL (which keeps _omniload_reconciled)
        con = duckdb.connect(str(tmp_path / "k.duckdb"), read_only=True)
        assert not con.execute(
            "select * from information_schema.tables where table_name = '_omniload_reconciled'"
        ).fetchall()
        con.close()
    if kind in (*FILES, "iceberg"):
        return
    more = set(delete(sb, "profiles", 5))
    assert run(sb, kind, tmp_path, "profiles", "--reconcile", "profiles", "--hard-deletes") == 0
    got = current(kind, tmp_path, "profiles")
    assert (
        set(got) == set(expected_rows(sb, "profiles")) and not marked(got) and not (more | gone) & set(got)
    )  # marked before or not: gone


@pytest.mark.parametrize("kind", ["sqlite", "delta", "parquet"])
def test_a_scan_that_does_not_finish_or_lists_too_few_keys_marks_nothing(make_sandbox, tmp_path, kind, capsys):
    sb = make_sandbox(scale="tiny", rate_limits="off", seed=32)
    assert run(sb, kind, tmp_path, "profiles") == 0
    delete(sb, "profiles", 5)
    before = api_requests(sb)
    assert run(sb, kind, tmp_path, "profiles", "--reconcile", "none") == 0
    load = api_requests(sb) - before
    http_post(sb.base_url, f"/__sandbox/faults?spec=throttle=1.0,after={1 + load + 1}")
    assert run(sb, kind, tmp_path, "profiles", "--reconcile", "profiles", "--max-retry-after", "0.5") == 1
    scan = [q for _, n, q in sb.state.log if n == "profiles" and "fields[profile]=id" in unquote(q)]
    assert len(scan) >= 2 and sb.state.requests["fault:throttle"] >= 1  # the scan had begun when it failed
    assert not marked(current(kind, tmp_path, "profiles"))
    http_post(sb.base_url, "/__sandbox/faults?spec=")
    delete(sb, "profiles", 200)
    capsys.readouterr()
    assert run(sb, kind, tmp_path, "profiles", "--reconcile", "profiles") == 1
    err = capsys.readouterr()
    assert "--allow-mass-delete" in err.out + err.err
    assert not marked(current(kind, tmp_path, "profiles"))
    assert run(sb, kind, tmp_path, "profiles", "--reconcile", "profiles", "--allow-mass-delete") == 0
    got = current(kind, tmp_path, "profiles")
    assert {k for k in got if k not in marked(got)} == set(expected_rows(sb, "profiles")) and marked(got)


@pytest.mark.parametrize("kind", ["parquet", "csv", "iceberg"])
def test_hard_deletes_are_refused_where_rows_cannot_be_deleted(sandbox, tmp_path, kind, capsys):
    capsys.readouterr()
    assert run(sandbox, kind, tmp_path, "lists", "--hard-deletes") == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("omniload: error: --hard-deletes:"), err
    assert ("tombstone" in err[0]) == (kind in FILES)
    assert not any(tmp_path.iterdir())  # nothing written


def run_into(sb, kind: str, d: Path, table: str, dest_table: str, *extra: str) -> int:
    schema = "kl" if kind not in ("sqlite", "duckdb") else "main"
    return main(["ingest", "--source-uri", source_uri(sb), "--source-table", table, "--dest-uri", URIS[kind].format(d=d),
                 "--dest-table", f"{schema}.{dest_table}", "--progress", "log", *extra])  # fmt: skip


@pytest.mark.parametrize("kind", ["sqlite", "delta", "iceberg", "parquet", "duckdb"])
def test_dependents_under_other_names_are_marked_and_come_back_with_their_parent(make_sandbox, tmp_path, kind, request):
    """Issue #20, 2 and 3: events loaded as k_events are marked with their deleted profile (loaded as k_profiles),
    found by the identity their loads saved; a table named events that omniload did not load is not touched;
    when the profile comes back, its events (listed again, though older than the events cursor) are current
    from their next load on (issue #23: read again by profile, never unmarked by the profile's mark)."""
    if kind == "duckdb":
        request.getfixturevalue("generic_duckdb")
    sb = make_sandbox(scale="tiny", rate_limits="off", seed=43)
    assert run_into(sb, kind, tmp_path, "profiles", "k_profiles") == 0
    assert run_into(sb, kind, tmp_path, "events", "k_events") == 0
    events = expected_rows(sb, "events")
    counts: dict = {}
    for e in events.values():
        counts[e["profile_id"]] = counts.get(e["profile_id"], 0) + 1
    victim = max(counts, key=counts.get)
    if kind == "sqlite":  # a table of the same name and shape that omniload did not load
        con = sqlite3.connect(tmp_path / "k.db")
        con.execute("create table events (id text, profile_id text, note text)")
        con.execute("insert into events values ('x1', ?, 'not omniload''s')", (victim,))
        con.commit()
        con.close()
    http_post(sb.base_url, f"/__sandbox/delete?resource=profiles&ids={victim}")
    assert run_into(sb, kind, tmp_path, "profiles", "k_profiles", "--reconcile", "profiles") == 0
    assert marked(current(kind, tmp_path, "k_profiles")) == {victim}
    got = current(kind, tmp_path, "k_events")
    assert marked(got) == {k for k, e in events.items() if e["profile_id"] == victim} and counts[victim] > 1
    assert set(got) - marked(got) == set(expected_rows(sb, "events"))
    if kind == "sqlite":
        con = sqlite3.connect(tmp_path / "k.db")
        assert con.execute("select id, profile_id, note from events").fetchall() == [("x1", victim, "not omniload's")]
        con.close()
    http_post(sb.base_url, f"/__sandbox/delete?resource=profiles&restore=1&ids={victim}")
    http_post(sb.base_url, "/__sandbox/clock/advance?seconds=60")
    assert run_into(sb, kind, tmp_path, "profiles", "k_profiles") == 0
    assert not marked(current(kind, tmp_path, "k_profiles"))
    theirs = {k for k, e in events.items() if e["profile_id"] == victim}
    assert marked(current(kind, tmp_path, "k_events")) == theirs  # until the events' next load
    assert run_into(sb, kind, tmp_path, "events", "k_events") == 0
    got = current(kind, tmp_path, "k_events")
    assert not marked(got) and set(events) <= set(got) == set(expected_rows(sb, "events"))  # read again, and new ones


@pytest.mark.parametrize("kind", ["delta", "parquet"])
def test_a_restored_profile_leaves_marked_the_memberships_that_ended_while_it_was_gone(make_sandbox, tmp_path, kind):
    """Issue #23 (season seed 23, on Delta too), marked through dlt merges: a membership marked with its deleted
    profile that ended meanwhile (the member left the list) keeps its mark when the profile comes back; the
    profile's other memberships, read again by profile in the same run, are current."""
    sb = make_sandbox(scale="tiny", rate_limits="off", seed=48)
    assert run(sb, kind, tmp_path, "profiles,list-memberships") == 0
    lists_of: dict = {}
    for list_id, profile_id in expected_rows(sb, "list-memberships"):
        lists_of.setdefault(profile_id, []).append(list_id)
    victim = max(lists_of, key=lambda p: (len(lists_of[p]), p))
    left, *stay = sorted(lists_of[victim])
    assert stay
    http_post(sb.base_url, f"/__sandbox/delete?resource=list-memberships&ids={left}:{victim}")  # the member leaves
    http_post(sb.base_url, f"/__sandbox/delete?resource=profiles&ids={victim}")
    assert run(sb, kind, tmp_path, "profiles", "--reconcile", "profiles") == 0
    assert {k for k in marked(current(kind, tmp_path, "list_memberships")) if k[1] == victim} == {
        (lst, victim) for lst in lists_of[victim]
    }
    http_post(sb.base_url, f"/__sandbox/delete?resource=profiles&restore=1&ids={victim}")
    http_post(sb.base_url, "/__sandbox/clock/advance?seconds=60")
    assert run(sb, kind, tmp_path, "profiles,list-memberships", "--reconcile", "none") == 0
    assert victim not in marked(current(kind, tmp_path, "profiles"))
    got = current(kind, tmp_path, "list_memberships")
    assert {k for k in got if k not in marked(got)} == set(expected_rows(sb, "list-memberships"))
    assert (left, victim) in marked(got) and not {(lst, victim) for lst in stay} & marked(got)


@pytest.mark.parametrize("kind", ["parquet", "delta"])
def test_a_restored_profile_brings_back_its_subscriptions_whose_key_holds_the_profile(make_sandbox, tmp_path, kind):
    """A dependent that is not read again by its parent (subscriptions, keyed (profile_id, channel)) is unmarked by
    its parent's mark when the parent comes back; on files the lookup once named ``profile_id`` twice (key and
    parent column) and failed the profiles run with an internal error."""
    sb = make_sandbox(scale="tiny", rate_limits="off", seed=47)
    assert run(sb, kind, tmp_path, "profiles,subscriptions") == 0
    subs = current(kind, tmp_path, "subscriptions")
    victim = next(iter(subs))[0]
    theirs = {k for k in subs if k[0] == victim}
    http_post(sb.base_url, f"/__sandbox/delete?resource=profiles&ids={victim}")
    assert run(sb, kind, tmp_path, "profiles", "--reconcile", "profiles") == 0
    assert marked(current(kind, tmp_path, "subscriptions")) == theirs
    http_post(sb.base_url, f"/__sandbox/delete?resource=profiles&restore=1&ids={victim}")
    http_post(sb.base_url, "/__sandbox/clock/advance?seconds=60")
    assert run(sb, kind, tmp_path, "profiles") == 0
    back = current(kind, tmp_path, "subscriptions")
    assert not marked(back) and set(back) == set(subs)


@pytest.mark.parametrize("kind", ["delta", "parquet"])
def test_a_parent_kept_while_the_dependents_run_drops_others_is_not_lost(tmp_path, kind):
    """Issue #23 (review): the parents whose rows are to be read again (rereads.py) are one dlt state written by two
    runs, a parent's (adding a restored profile) and the dependent table's (dropping those it read again), each under
    its own table's lock. A parent added between the dependent run's read of that state and its write was lost, and
    since a restored profile's events come back only by that re-read, they stayed marked. Each read-modify-write now
    holds the destination's lock of ``<table>__rereads``: the parent run's add waits for the drop, then lands."""
    import threading
    import time

    uri = URIS[kind].format(d=tmp_path)
    events_run, profiles_run = destinations.parse_destination(uri), destinations.parse_destination(uri)
    events_run.add_rereads("kl", "events", "profile_id", ["p1"])
    keep, adding = events_run._keep, []

    def keep_while_the_other_run_adds(p, parents):  # the events run has read the state; it writes after the add
        adding.append(threading.Thread(target=profiles_run.add_rereads, args=("kl", "events", "profile_id", ["p2"])))
        adding[0].start()
        time.sleep(1.0)
        keep(p, parents)

    events_run._keep = keep_while_the_other_run_adds
    events_run.drop_rereads("kl", "events", "profile_id", ["p1"])  # the events run read p1's events again
    adding[0].join(60)
    assert destinations.parse_destination(uri).rereads("kl", "events", "profile_id") == ["p2"]
