"""``metrics=``: events of chosen metrics only, filtered at the API (one ``equals(metric_id,...)`` stream per metric),
with a saved cursor per metric: adding a metric backfills that metric only, removing one leaves its rows, a name
held by two metrics takes both, a name held by none is refused; reconciling deletes marks no other metric's events;
event_attributions holds the attributions of the chosen metrics' events, with cursors of its own.

One sandbox (tiny, 25 metrics: "Placed Order" is the name of two of them, as Klaviyo allows across integrations)."""

from __future__ import annotations

import json
from datetime import timedelta
from urllib.parse import parse_qs, urlencode

import dlt
import duckdb
import pytest

from klaviyo_sandbox import SandboxConfig, SandboxServer
from klaviyo_sandbox import testing as truth
from omniload.cli import main
from omniload.dates import parse_timestamp
from omniload.sources.klaviyo import klaviyo_source
from omniload.sources.klaviyo.chosen import STATE_KEY, MetricCursors
from omniload.sources.klaviyo.tables import TABLES

from .conftest import KEY, http_get, http_post
from .helpers import _norm, expected_rows, rows, sandbox_now

START = "2024-06-01"
TABLES_READ = "events,event_attributions"  # both read from /api/events, both filtered


@pytest.fixture(scope="module")
def sb():
    with SandboxServer(SandboxConfig(scale="tiny,metrics=25", rate_limits="off", same_metric_names=True)) as server:
        yield server


def _ids(sb, name: str) -> list[str]:
    return [m["id"] for m in truth.records(sb.state, "metrics") if m["attributes"]["name"] == name]


def _ingest(sb, db: str, metrics: str, tables: str = "events", *extra: str) -> int:
    uri = f"klaviyo://?api_key={KEY}&base_url={sb.base_url}&metrics={metrics}"
    return main(["ingest", "--source-uri", uri, "--source-table", tables, "--dest-uri", f"duckdb:///{db}",
                 "--progress", "log", *extra])  # fmt: skip


def _event_requests(sb, since: int) -> list[dict]:
    """The filters of the events requests since log entry ``since``: {metric id: lower bound or None}."""
    out = []
    for _, name, q in list(sb.state.log)[since:]:
        if name == "events":
            text = parse_qs(q).get("filter", [""])[0]
            metric = text.split('equals(metric_id,"', 1)[1].split('"', 1)[0] if "metric_id" in text else None
            lower = text.split("greater-or-equal(datetime,", 1)[1].split(")", 1)[0] if "greater-or" in text else None
            out.append({"metric": metric, "lower": parse_timestamp(lower) if lower else None, "query": q})
    return out


def _assert_events(db: str, sb, metric_ids: set[str]) -> dict:
    """The events table holds exactly the sandbox's events of ``metric_ids`` since START, column by column."""
    want = {
        k: r for k, r in expected_rows(sb, "events", parse_timestamp(START)).items() if r["metric_id"] in metric_ids
    }
    got = rows(db, "events")
    assert set(got) == set(want), f"{len(set(want) - set(got))} missing, {len(set(got) - set(want))} extra"
    cols = TABLES["events"].all_columns
    for k, exp in want.items():
        assert {c: _norm(got[k].get(c), cols[c]) for c in exp} == exp
    return got


def _assert_attributions(db: str, sb, metric_ids: set[str]) -> None:
    """event_attributions holds exactly the sandbox's attributions of the events of ``metric_ids`` since START."""
    events = {k for k, r in expected_rows(sb, "events", parse_timestamp(START)).items() if r["metric_id"] in metric_ids}
    want = {k: r for k, r in expected_rows(sb, "event_attributions", parse_timestamp(START)).items() if k[0] in events}
    got = rows(db, "event_attributions")
    assert set(got) == set(want) and len(want) > 5
    for k, exp in want.items():
        assert {c: got[k][c] for c in exp if c != "datetime"} == {c: v for c, v in exp.items() if c != "datetime"}


def test_adding_a_metric_backfills_it_alone(sb, tmp_path):
    placed, bounced = _ids(sb, "Placed Order"), _ids(sb, "Bounced Email")
    assert len(placed) == 2 and len(bounced) == 1  # one name, two metrics (two integrations)
    db = str(tmp_path / "m.duckdb")
    mark = len(sb.state.log)
    assert _ingest(sb, db, "Placed Order", TABLES_READ, "--interval-start", START) == 0
    first = _event_requests(sb, mark)
    assert first and {r["metric"] for r in first} == set(placed)  # filtered at the API, one stream per metric
    _assert_events(db, sb, set(placed))
    _assert_attributions(db, sb, set(placed))

    http_post(sb.base_url, "/__sandbox/clock/advance?seconds=7200")  # new events of every metric
    mark = len(sb.state.log)
    assert _ingest(sb, db, f"Placed Order,{bounced[0]}", TABLES_READ) == 0  # a name and an id
    second = _event_requests(sb, mark)
    con = duckdb.connect(db, read_only=True)
    cursor = parse_timestamp(con.execute("select max(datetime) from events").fetchone()[0].isoformat())
    con.close()
    for r in second:
        if r["metric"] in placed:  # incremental: from the saved cursor less the lookback (the deep one: 7 days)
            assert r["lower"] is not None and r["lower"] >= cursor - timedelta(days=7, hours=3), r
        else:  # the new metric: from the interval's start
            assert r["metric"] == bounced[0] and r["lower"] == parse_timestamp(START + "T00:00:00+00:00"), r
    assert {r["metric"] for r in second} == {*placed, *bounced}
    assert len(second) == len({r["query"] for r in second})  # no query asked twice
    _assert_events(db, sb, {*placed, *bounced})
    _assert_attributions(db, sb, {*placed, *bounced})

    http_post(sb.base_url, "/__sandbox/clock/advance?seconds=7200")
    assert _ingest(sb, db, bounced[0]) == 0  # Placed Order dropped: its rows stay, Bounced Email goes on
    kept = set(rows(db, "events"))
    want = {k for k, r in expected_rows(sb, "events", parse_timestamp(START)).items() if r["metric_id"] in bounced}
    assert want <= kept
    placed_then = {k for k, r in expected_rows(sb, "events", parse_timestamp(START)).items()
                   if r["metric_id"] in placed}  # fmt: skip
    assert len(kept - want) > 0 and (kept - want) <= placed_then


def test_a_name_of_no_metric_is_refused_before_anything_is_written(sb, tmp_path, capsys):
    db = tmp_path / "none.duckdb"
    assert _ingest(sb, str(db), "Placed Order,Placed Ordr") == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "metrics: 'Placed Ordr' is neither the name nor the id of a metric" in err[0], err
    assert not db.exists()
    # what Klaviyo refuses: any() on metric_id (its filter allows equals only)
    query = urlencode({"filter": 'any(metric_id,["a","b"])'})
    answer = http_get(sb.base_url, f"/api/events?{query}")
    assert answer.status == 400
    error = json.loads(answer.body)["errors"][0]
    assert error["code"] == "invalid" and error["source"] == {"parameter": "filter"}
    assert "'any' is not a valid operator for 'metric_id'" in error["detail"]


def test_deletes_mark_no_other_metrics_events(make_sandbox, tmp_path):
    sb = make_sandbox(scale="tiny", rate_limits="off")
    names = {m["id"]: m["attributes"]["name"] for m in truth.records(sb.state, "metrics")}
    a, b = "Placed Order", "Clicked Email"
    ids_a = {i for i, n in names.items() if n == a}
    ids_b = {i for i, n in names.items() if n == b}
    db = str(tmp_path / "d.duckdb")
    assert _ingest(sb, db, f"{a},{b}", "profiles,events", "--interval-start", START) == 0
    before = {k: r for k, r in expected_rows(sb, "events", parse_timestamp(START)).items()
              if r["metric_id"] in ids_a | ids_b}  # fmt: skip
    owner = next(r["profile_id"] for r in before.values() if r["metric_id"] in ids_b)  # a profile with B events
    http_post(sb.base_url, f"/__sandbox/delete?resource=profiles&ids={owner}")
    assert _ingest(sb, db, a, "profiles,events", "--reconcile", "profiles") == 0  # only A read now
    con = duckdb.connect(db, read_only=True)
    marked = {r[0] for r in con.execute("select id from events where _omniload_deleted_at is not null").fetchall()}
    con.close()
    assert marked == {k for k, r in before.items() if r["profile_id"] == owner}  # Klaviyo deleted them along
    got = rows(db, "events")
    assert {k for k, r in got.items() if r["metric_id"] in ids_b} == {
        k for k, r in before.items() if r["metric_id"] in ids_b
    }


def test_a_metric_whose_read_stopped_early_starts_from_its_own_cursor():
    """After a run cut short between two metrics' slices (B committed up to t2, A only up to t1 < t2): the next run
    reads A from t1 less the lookback in force, B from the loader's start (t2 less it), a new C from the start."""
    t1, t2 = parse_timestamp("2026-06-01T00:00:00Z"), parse_timestamp("2026-06-20T00:00:00Z")
    saved = {"last_value": t2.isoformat(), STATE_KEY: {"A": t1.isoformat(), "B": t2.isoformat()}}
    first = parse_timestamp(START + "T00:00:00Z")
    lookback = timedelta(days=1)
    starts = MetricCursors(["A", "B", "C"], saved, first, resumed=True).starts(t2 - lookback)
    assert starts == {t1 - lookback: ["A"], t2 - lookback: ["B"], first: ["C"]}
    assert MetricCursors(["A", "C"], saved, first, resumed=False).starts(first) == {first: ["A", "C"]}


def test_plain_dlt_filters_events_when_another_table_comes_first(sb, tmp_path):
    """klaviyo_source(options={"metrics": ...}) with events after another table: the first resource's preflight
    named that table only; events are still read of the chosen metrics only, each with its saved cursor."""
    placed = set(_ids(sb, "Placed Order"))
    db = str(tmp_path / "dlt.duckdb")
    pipeline = dlt.pipeline("chosen", destination=dlt.destinations.duckdb(db), dataset_name="klaviyo",
                            pipelines_dir=str(tmp_path / "pipelines"))  # fmt: skip
    source = klaviyo_source(api_key=KEY, tables=["tags", "events"], base_url=sb.base_url,
                            start=parse_timestamp(START + "T00:00:00Z"), options={"metrics": "Placed Order"})  # fmt: skip
    assert not pipeline.run(source).has_failed_jobs
    want = {k for k, r in expected_rows(sb, "events", parse_timestamp(START)).items() if r["metric_id"] in placed}
    assert want and set(rows(db, "events", "klaviyo")) == want
    saved = pipeline.state["sources"]["klaviyo"]["resources"]["events"]
    assert set(saved[STATE_KEY]) == placed


A, B = "Placed Order", "Clicked Email"


def _a_and_b(make_sandbox, tmp_path, tables: str):
    """A sandbox, its metric names by id, the ids of metrics A and B, and a database where ``tables`` were loaded
    with metrics=A,B from START."""
    sb = make_sandbox(scale="tiny", rate_limits="off")
    names = {m["id"]: m["attributes"]["name"] for m in truth.records(sb.state, "metrics")}
    db = str(tmp_path / "ab.duckdb")
    assert _ingest(sb, db, f"{A},{B}", tables, "--interval-start", START) == 0
    return sb, names, {i for i, n in names.items() if n in (A, B)}, db


def test_a_restored_profile_unmarks_its_events_of_a_metric_no_longer_chosen(make_sandbox, tmp_path):
    """Metric A dropped from metrics= (its rows stay), then a profile with A and B events deleted (all its events
    marked: Klaviyo deleted them along) and restored: its A events are current again and come back unmarked too,
    not only those of the metrics chosen now."""
    sb, names, ids, db = _a_and_b(make_sandbox, tmp_path, "profiles,events")
    a, b = A, B
    before = {k: r for k, r in expected_rows(sb, "events", parse_timestamp(START)).items() if r["metric_id"] in ids}
    by_owner: dict[str, set[str]] = {}
    for r in before.values():
        by_owner.setdefault(r["profile_id"], set()).add(names[r["metric_id"]])
    owner = next(p for p, seen in by_owner.items() if seen == {a, b})
    http_post(sb.base_url, f"/__sandbox/delete?resource=profiles&ids={owner}")
    assert _ingest(sb, db, b, "profiles,events", "--reconcile", "profiles") == 0  # A no longer chosen
    con = duckdb.connect(db, read_only=True)
    marked = {r[0] for r in con.execute("select id from events where _omniload_deleted_at is not null").fetchall()}
    con.close()
    assert marked == {k for k, r in before.items() if r["profile_id"] == owner}
    http_post(sb.base_url, f"/__sandbox/delete?resource=profiles&restore=1&ids={owner}")
    http_post(sb.base_url, "/__sandbox/clock/advance?seconds=60")
    assert _ingest(sb, db, b, "profiles,events", "--reconcile", "profiles") == 0
    con = duckdb.connect(db, read_only=True)
    marked = {r[0] for r in con.execute("select id from events where _omniload_deleted_at is not null").fetchall()}
    con.close()
    assert not marked, f"{len(marked)} events of the restored profile still marked deleted"
    assert set(rows(db, "events")) == set(before)  # nothing of another metric added


def test_a_run_of_other_metrics_from_a_later_start_keeps_the_cursors_of_the_rest(make_sandbox, tmp_path):
    """A and B read; later A alone from a later --interval-start (after B's read ended, and A's cursor moves): B's
    cursor is kept, so B added back goes on from it, not from that later start (its events in between were lost)."""
    sb, names, ids, db = _a_and_b(make_sandbox, tmp_path, "events")
    a, b = A, B
    first_end = sandbox_now(sb)
    http_post(sb.base_url, "/__sandbox/clock/advance?seconds=864000")  # ten days: new events of A and B
    events = expected_rows(sb, "events", first_end)
    later = max(r["datetime"] for r in events.values() if names[r["metric_id"]] == a).date().isoformat()
    gap = [k for k, r in events.items() if names[r["metric_id"]] == b and r["datetime"].date().isoformat() < later]
    assert gap  # B's events between its last read and A's later start
    assert _ingest(sb, db, a, "events", "--interval-start", later) == 0  # A again from a later start, B not read
    assert _ingest(sb, db, f"{a},{b}", "events") == 0
    want = {k for k, r in expected_rows(sb, "events", parse_timestamp(START)).items() if r["metric_id"] in ids}
    got = set(rows(db, "events"))
    assert got == want, f"{len(want - got)} events missing"


def test_a_replacing_run_of_some_metrics_lets_the_others_be_read_again_whole(make_sandbox, tmp_path):
    """A and B read; then A alone with --incremental-strategy replace (the table's rows are A's only now, B's are
    gone); then A and B: B is read again from the table's start, not from its old cursor (its rows up to it gone)."""
    sb, names, ids, db = _a_and_b(make_sandbox, tmp_path, "events")
    http_post(sb.base_url, "/__sandbox/clock/advance?seconds=864000")  # ten days: new events of A and B
    assert _ingest(sb, db, A, "events", "--incremental-strategy", "replace") == 0
    assert {names[r["metric_id"]] for r in rows(db, "events").values()} <= {A}
    assert _ingest(sb, db, f"{A},{B}", "events") == 0  # as a schedule runs it: no --interval-start
    want = {k for k, r in expected_rows(sb, "events", parse_timestamp(START)).items() if r["metric_id"] in ids}
    got = set(rows(db, "events"))
    truth = expected_rows(sb, "events", parse_timestamp(START))
    missing = sorted((names[truth[k]["metric_id"]], truth[k]["datetime"].isoformat()) for k in want - got)
    assert got == want, f"{len(want - got)} events missing, {len(got - want)} extra: {missing[:2]} .. {missing[-2:]}"
