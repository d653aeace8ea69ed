"""Several Klaviyo accounts in the same tables: ``account_column=true`` (and ``klaviyo_source(account_column=True)``)
gives every row the account's id, first in every primary key, and keeps each account's rows, cursor and
replaces apart. Two sandboxes of different seeds are two accounts."""

from __future__ import annotations

import contextlib
import sqlite3

import dlt
import duckdb
import pytest

from klaviyo_sandbox import testing as truth
from klaviyo_sandbox.account_time import account_zone
from klaviyo_sandbox.app import ALL_SCOPES
from omniload.cli import main
from omniload.destinations.deletes import DELETED
from omniload.destinations.state import decode_state
from omniload.sources.klaviyo import klaviyo_source

from .conftest import KEY, http_post, source_uri
from .helpers import api_requests, assert_rows_equal_truth, by_id, key_of, sandbox_now
from .test_deletes import delete
from .test_reports import MESSAGE_STATISTICS, START, fast_pacing, nonzero, placed_order  # noqa: F401 - a fixture

# a list with derived columns, a ride (composite key), a replace, a child (reconciled on every run)
LISTS = ["events", "event_attributions", "tags", "flow-actions"]
REPORT = "campaign_values_report"


def report_truth(sb) -> dict:
    """The campaign values report of ``sb``'s account from June 1st 2026 to its today, days in the account's zone."""
    zone = account_zone(sb.state)
    today = sandbox_now(sb).astimezone(zone).replace(hour=0, minute=0, second=0, microsecond=0)
    start, end = START.replace(tzinfo=zone), today
    return truth.message_report(sb.state, "campaign", start, end, placed_order(sb), whole=True)


def account_of(sb) -> str:
    return truth.records(sb.state, "accounts")[0]["id"]


def of_account(db: str, table: str, account: str, schema: str = "main") -> dict:
    con = duckdb.connect(db, read_only=True)
    try:
        cur = con.execute(f'select * from "{schema}"."{table}" where account_id = ?', [account])
        return by_id(cur, table)
    finally:
        con.close()


def accounts_in(db: str, table: str, schema: str = "main") -> set[str]:
    con = duckdb.connect(db, read_only=True)
    try:
        return {r[0] for r in con.execute(f'select distinct account_id from "{schema}"."{table}"').fetchall()}
    finally:
        con.close()


def marked(db: str, table: str, account: str) -> set:
    """The record keys of ``account``'s rows of ``table`` marked deleted."""
    con = duckdb.connect(db, read_only=True)
    try:
        key = ", ".join(c for c in key_of(table))
        rows = con.execute(f'select {key} from "{table}" where account_id = ? and {DELETED} is not null', [account])
        return {r[0] if len(r) == 1 else r for r in rows.fetchall()}
    finally:
        con.close()


def report_rows(db: str, account: str, schema: str = "main", table: str = REPORT,
                key: tuple[str, ...] = ("campaign_id", "campaign_message_id", "send_channel", "period_start",
                                        "period_end")) -> dict:  # fmt: skip
    con = duckdb.connect(db, read_only=True)
    try:
        cur = con.execute(f'select * from "{schema}"."{table}" where account_id = ?', [account])
        got = [dict(zip([d[0] for d in cur.description], r, strict=False)) for r in cur.fetchall()]
    finally:
        con.close()
    return nonzero(got, key, MESSAGE_STATISTICS)


def ingest(sb, tables: str, db: str, *extra: str) -> int:
    return main(["ingest", "--source-uri", f"{source_uri(sb)}&account_column=true", "--source-table", tables,
                 "--dest-uri", f"duckdb:///{db}", "--progress", "log", *extra])  # fmt: skip


def test_two_accounts_through_the_cli_keep_their_rows_cursors_replaces_and_deletes_apart(
    make_sandbox, tmp_path, capsys
):
    a = make_sandbox(scale="tiny", rate_limits="off", seed=3)
    b = make_sandbox(scale="tiny", rate_limits="off", seed=4)
    ids = {account_of(a), account_of(b)}
    assert len(ids) == 2
    db = str(tmp_path / "k.duckdb")
    # events loaded before without the column: a run with it is refused, nothing written, until --full-refresh
    assert main(["ingest", "--source-uri", source_uri(a), "--source-table", "events", "--dest-uri", f"duckdb:///{db}",
                 "--progress", "log"]) == 0  # fmt: skip
    capsys.readouterr()
    assert ingest(a, ",".join(LISTS), db) == 2
    err = capsys.readouterr().err
    assert "main.events in duckdb:///" in err and "was loaded without account_id; add --full-refresh to load" in err
    assert ingest(a, "events", db, "--full-refresh") == 0
    for sb in (a, b):
        assert ingest(sb, ",".join(LISTS), db) == 0
        assert ingest(sb, REPORT, db, "--interval-start", START.isoformat()) == 0
    for sb in (a, b):
        for name in LISTS:
            assert_rows_equal_truth(of_account(db, name.replace("-", "_"), account_of(sb)), sb, name)
        want = report_truth(sb)
        assert want and report_rows(db, account_of(sb)) == want
    for name in [*LISTS, REPORT]:
        assert accounts_in(db, name.replace("-", "_")) == ids
    # account a again, a day later: from its own cursor (not b's), its replaces leave b's rows alone
    http_post(a.base_url, "/__sandbox/clock/advance?seconds=86400")
    before = api_requests(a)
    assert ingest(a, "events,tags", db) == 0
    assert api_requests(a) - before <= 4  # events from a's cursor less a day, tags one page
    for sb in (a, b):
        for name in ("events", "tags"):
            assert_rows_equal_truth(of_account(db, name, account_of(sb)), sb, name)
    # a flow deleted in account a: a's reconcile marks a's flow actions of it, none of b's rows
    http_post(a.base_url, "/__sandbox/clock/advance?seconds=60")
    gone = delete(a, "flow-actions", 1)
    assert ingest(a, "flow-actions", db) == 0
    assert marked(db, "flow_actions", account_of(a)) == set(gone)
    assert not marked(db, "flow_actions", account_of(b))
    # and back without the column: refused, nothing written (its rows would lose their account)
    capsys.readouterr()
    plain = ["ingest", "--source-uri", source_uri(a), "--source-table", "tags", "--dest-uri", f"duckdb:///{db}"]
    assert main(plain) == 2
    assert "main.tags in duckdb:///" in capsys.readouterr().err
    assert accounts_in(db, "tags") == ids
    # the option's bad value: one line, exit 2
    bad = main(["ingest", "--source-uri", f"{source_uri(a)}&account_column=yes", "--source-table", "tags",
                "--dest-uri", f"duckdb:///{tmp_path / 'x.duckdb'}"])  # fmt: skip
    assert bad == 2
    assert "account_column 'yes' is not allowed; allowed: true, false" in capsys.readouterr().err


@pytest.mark.usefixtures("fast_pacing")
def test_two_accounts_through_plain_dlt_share_the_tables(make_sandbox, tmp_path):
    a = make_sandbox(scale="tiny", rate_limits="off", seed=3)
    b = make_sandbox(scale="tiny", rate_limits="off", seed=4)
    db = str(tmp_path / "dlt.duckdb")
    tables = ["events", "tags", "flow-actions", REPORT]
    for sb in (a, b):  # one pipeline per account (its own state), as an orchestrator runs them
        pipeline = dlt.pipeline(f"kl_{account_of(sb)}", destination=dlt.destinations.duckdb(db), dataset_name="klaviyo",
                                pipelines_dir=str(tmp_path / "pipelines"))  # fmt: skip
        info = pipeline.run(klaviyo_source(api_key=KEY, tables=tables, base_url=sb.base_url, start=START,
                                           account_column=True))  # fmt: skip
        assert not info.has_failed_jobs
    for sb in (a, b):
        for name in ("events", "tags", "flow-actions"):
            got = of_account(db, name.replace("-", "_"), account_of(sb), "klaviyo")
            assert_rows_equal_truth(got, sb, name, start=START if name != "tags" else None)
        want = report_truth(sb)
        assert want and report_rows(db, account_of(sb), "klaviyo") == want


# -- several accounts in one command ------------------------------------------------------------------------------

KEY_B = "pk_" + "BrandB0123456789" + "b" * 18
SEVERAL = "events,profiles,tags,metrics"


def several(*uris: str, db: str) -> int:
    args = ["ingest", "--source-table", SEVERAL, "--dest-uri", f"duckdb:///{db}", "--progress", "log"]
    for uri in uris:
        args += ["--source-uri", uri]
    return main(args)


def event_reads(sb) -> int:
    return sum(1 for _, name, _q in list(sb.state.log) if name == "events")


def test_several_accounts_in_one_command(make_sandbox, tmp_path, capsys, monkeypatch):
    a = make_sandbox(scale="tiny", rate_limits="off", seed=5)
    b = make_sandbox(scale="tiny", rate_limits="off", seed=5, account_seed=6)  # a's record ids, another account
    c = make_sandbox(scale="tiny", rate_limits="off", seed=7)
    assert len({account_of(a), account_of(b), account_of(c)}) == 3
    monkeypatch.setenv("BRAND_B_KEY", KEY_B)  # b's key only in the environment
    uri_a, uri_c = f"{source_uri(a)}&layout=fivetran", f"{source_uri(c)}&layout=fivetran"
    uri_b = f"klaviyo://?api_key_env=BRAND_B_KEY&base_url={b.base_url}&layout=fivetran"
    db = str(tmp_path / "fleet.duckdb")
    assert several(uri_a, uri_b, db=db) == 0
    out = capsys.readouterr()
    assert KEY_B not in out.out + out.err
    spans = [(min(t for t, *_ in sb.state.log), max(t for t, *_ in sb.state.log)) for sb in (a, b)]
    assert max(s for s, _ in spans) < min(e for _, e in spans)  # the two accounts were read at the same time
    summary = [line.split()[:3] for line in out.out.splitlines()]  # account, table, status
    assert summary[0] == ["account", "table", "status"]
    assert [account_of(a), "events", "ok"] in summary and [account_of(b), "profiles", "ok"] in summary
    # a third account added later backfills alone; a and b go on from their own cursors
    before = {id(sb): event_reads(sb) for sb in (a, b, c)}
    assert several(uri_a, uri_b, uri_c, db=db) == 0
    assert [event_reads(sb) - before[id(sb)] for sb in (a, b)] == [1, 1]  # the lookback's one page each
    assert event_reads(c) - before[id(c)] >= 2  # every event of c, page by page
    for sb in (a, b, c):
        for name in SEVERAL.split(","):
            assert_rows_equal_truth(of_account(db, name, account_of(sb)), sb, name)
    con = duckdb.connect(db, read_only=True)
    try:  # Fivetran's event view: one row per event, its metric's name joined within its account
        view = con.execute("select account_id, count(*), count(type) from event group by 1 order by 1").fetchall()
        events = con.execute("select account_id, count(*), count(*) from events group by 1 order by 1").fetchall()
        assert view == events and len(view) == 3
    finally:
        con.close()
    # a profile deleted in a: a's row marked, b's row of the same id not
    gone = delete(a, "profiles", 1)
    assert several(uri_a, uri_b, db=db) == 0
    assert marked(db, "profiles", account_of(a)) == set(gone)
    assert gone[0] in of_account(db, "profiles", account_of(b)) and not marked(db, "profiles", account_of(b))
    # b's key revoked: b's tables fail, named with it; c's key loses profiles:read: c's profiles fail; exit 1; a loads
    d = make_sandbox(scale="tiny", rate_limits="off", seed=5, account_seed=6, keys={KEY: ["accounts:read"]})
    e = make_sandbox(
        scale="tiny", rate_limits="off", seed=7, keys={KEY: [s for s in ALL_SCOPES if s != "profiles:read"]}
    )
    capsys.readouterr()
    uri_d = f"klaviyo://?api_key_env=BRAND_B_KEY&base_url={d.base_url}"
    http_post(a.base_url, "/__sandbox/clock/advance?seconds=3600")
    assert several(uri_a, uri_d, source_uri(e), db=db) == 1
    out = capsys.readouterr()
    failed = [line.split()[:3] for line in out.out.splitlines() if " failed " in line]
    key_env = "api_key_env=BRAND_B_KEY"
    assert failed == [[key_env, t, "failed"] for t in SEVERAL.split(",")] + [[account_of(e), "profiles", "failed"]]
    assert "the API key was refused" in out.err and "profiles:read" in out.err and KEY_B not in out.out + out.err
    current = {k: r for k, r in of_account(db, "events", account_of(a)).items() if r.get(DELETED) is None}
    assert_rows_equal_truth(current, a, "events")  # (the deleted profile's events are marked)
    # the same account twice: refused before anything is written
    assert several(uri_a, source_uri(a), db=db) == 2
    assert f"are the same ({account_of(a)}); give each once" in capsys.readouterr().err
    # keys are nowhere in the destination (tables, dlt's state)
    con = duckdb.connect(db, read_only=True)
    try:
        for (table,) in con.execute("select table_name from information_schema.tables").fetchall():
            text = str(con.execute(f'select * from "{table}"').fetchall())
            assert KEY not in text and KEY_B not in text, table
        states = [str(decode_state(r[0])) for r in con.execute("select state from _dlt_pipeline_state").fetchall()]
        assert len(states) > 9 and not any(KEY in t or KEY_B in t or "BRAND_B_KEY" in t for t in states)
    finally:
        con.close()


@pytest.mark.parametrize("dest", ["duckdb", "sqlite"])
def test_an_account_whose_replaced_table_empties_loses_its_rows_there_alone(make_sandbox, tmp_path, dest):
    """A table loaded whole each run (tags) replaces only its account's rows (a delete-insert on account_id): when the
    account has none left, a delete-insert of nothing deleted nothing, and its old rows stayed as if current."""
    a = make_sandbox(scale="tiny", rate_limits="off", seed=5)
    b = make_sandbox(scale="tiny", rate_limits="off", seed=5, account_seed=6)
    db = str(tmp_path / "t.db")
    args = ["ingest", "--source-table", "tags", "--dest-uri", f"{dest}:///{db}", "--progress", "log",
            "--source-uri", source_uri(a), "--source-uri", source_uri(b)]  # fmt: skip
    assert main(args) == 0
    tags = [t["id"] for t in truth.records(a.state, "tags")]
    http_post(a.base_url, f"/__sandbox/delete?resource=tags&ids={','.join(tags)}")  # every tag of account a
    assert main(args) == 0
    assert main(args) == 0  # and again: nothing new
    con = duckdb.connect() if dest == "duckdb" else None
    query = "select account_id, count(*) from tags group by 1"
    if con is not None:
        con.execute(f"attach '{db}' as t (read_only)")
        got = con.execute(query.replace("from tags", "from t.tags")).fetchall()
    else:
        with contextlib.closing(sqlite3.connect(db)) as lite:
            got = lite.execute(query).fetchall()
    assert got == [(account_of(b), len(truth.records(b.state, "tags")))] and len(tags) > 0


SERIES = "flow_series_report"


def series_truth(sb, first_day) -> dict:
    """``sb``'s flow series report from ``first_day`` to its today, days in the account's zone."""
    from datetime import datetime, time

    zone = account_zone(sb.state)
    today = sandbox_now(sb).astimezone(zone).replace(hour=0, minute=0, second=0, microsecond=0)
    return truth.message_report(sb.state, "flow", datetime.combine(first_day, time(), zone), today, placed_order(sb))


def series_rows(db: str, account: str) -> dict:
    return report_rows(db, account, table=SERIES, key=("flow_id", "flow_message_id", "send_channel", "period_start"))


def report_spent(sb) -> int:
    return sb.state.requests["report-spent:/api/flow-series-reports"]


def test_an_account_at_its_daily_report_limit_fails_its_reports_alone_and_resumes_them(make_sandbox, tmp_path, capsys):
    """Several accounts' reports in one run: account a's Klaviyo answers 429 for the day after 4 report requests (its
    limit spent elsewhere), c's own report_budget is 2, b has neither. a's table fails alone (named, exit 1) with its
    periods loaded so far kept; b loads all of its periods, c its budget's; the next day a resumes where it stopped,
    b and c go on from their own saved periods and budgets."""
    from datetime import timedelta

    a = make_sandbox(scale="tiny", rate_limits="off", seed=5, report_daily=4)
    b = make_sandbox(scale="tiny", rate_limits="off", seed=5, account_seed=6)
    c = make_sandbox(scale="tiny", rate_limits="off", seed=7)
    assert len({account_of(a), account_of(b), account_of(c)}) == 3
    first = (sandbox_now(a) - timedelta(days=5 * 60)).date()  # 5 requests of 60 days
    db = str(tmp_path / "r.duckdb")
    args = ["ingest", "--source-table", SERIES, "--dest-uri", f"duckdb:///{db}", "--progress", "log",
            "--interval-start", first.isoformat(), "--max-retry-after", "60", "--source-uri", source_uri(a),
            "--source-uri", source_uri(b), "--source-uri", f"{source_uri(c)}&report_budget=2"]  # fmt: skip
    assert main(args) == 1
    out = capsys.readouterr()
    summary = [line.split()[:3] for line in out.out.splitlines()[1:]]
    assert sorted(summary) == sorted([[account_of(a), SERIES, "failed"], [account_of(b), SERIES, "ok"],
                                      [account_of(c), SERIES, "ok"]]), out.out  # fmt: skip
    failed = [line for line in out.err.splitlines() if "failed error" in line]
    assert len(failed) == 1 and failed[0].startswith(f"[{account_of(a)}/{SERIES}]"), out.err
    assert "HTTP 429" in failed[0] and "--max-retry-after" in failed[0]
    assert [report_spent(sb) for sb in (a, b, c)] == [4, 5, 2]  # a: its limit (the 5th refused); c: its budget
    budget = [line for line in out.err.splitlines() if "periods left for tomorrow's budget" in line]
    assert len(budget) == 1 and budget[0].startswith(f"[{account_of(c)}/{SERIES}] note:"), out.err
    assert series_rows(db, account_of(b)) == series_truth(b, first)
    kept_a, kept_c = series_rows(db, account_of(a)), series_rows(db, account_of(c))
    for got, sb in ((kept_a, a), (kept_c, c)):  # what was loaded is right, the rest is missing
        want = series_truth(sb, first)
        assert got and {k: want.get(k) for k in got} == got and len(got) < len(want)
    # the next day: a resumes after its 4 periods done, b and c from their own saved state
    for sb in (a, b, c):
        sb.state.dataset.advance(86_400)
    assert main(args) == 0
    assert [report_spent(sb) for sb in (a, b, c)] == [6, 6, 4]  # a: 61 days left, 2; b: its horizon, 1; c: 2
    for sb in (a, b):
        assert series_rows(db, account_of(sb)) == series_truth(sb, first)
