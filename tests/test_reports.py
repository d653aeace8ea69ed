"""Report tables (issue #13): each loads from the sandbox and equals the sandbox's truth (recomputed from the
events it serves), runs keep within the daily budget, and an interrupted backfill resumes where it stopped."""

from __future__ import annotations

import dataclasses
import json
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import duckdb
import pytest

from klaviyo_sandbox import testing as truth
from klaviyo_sandbox.report_rules import report_rules
from omniload.sources.klaviyo.tables import TABLES
from omniload.sources.klaviyo.tables.reports import (
    FORM_STATISTICS,
    MEASUREMENTS,
    MESSAGE_STATISTICS,
    REPORTS,
    SEGMENT_STATISTICS,
)

from .conftest import KEY, source_uri
from .helpers import ingest

ZONE = ZoneInfo("America/New_York")  # the sandbox account's timezone (default seed): report days are its days
START = datetime(2026, 6, 1, tzinfo=ZONE)
END = datetime(2026, 6, 30, tzinfo=ZONE)  # the sandbox's today there (its clock: 2026-07-01T00:00Z)
PATHS = {"campaign_values_report": "/api/campaign-values-reports", "flow_values_report": "/api/flow-values-reports",
         "flow_series_report": "/api/flow-series-reports", "metric_aggregates": "/api/metric-aggregates",
         "form_values_report": "/api/form-values-reports", "form_series_report": "/api/form-series-reports",
         "segment_values_report": "/api/segment-values-reports",
         "segment_series_report": "/api/segment-series-reports"}  # fmt: skip


def unpaced(monkeypatch) -> None:
    """Klaviyo allows 2 report requests a minute; the sandbox runs without those windows (rate_limits="off"), so
    the client need not pace them. The daily budget is what these tests check, and it is unaffected."""
    for name in REPORTS:
        monkeypatch.setitem(TABLES, name, dataclasses.replace(TABLES[name], burst=1000, steady=100_000))


@pytest.fixture(autouse=True)
def fast_pacing(monkeypatch):
    unpaced(monkeypatch)


def run(sb, table: str, db, *extra: str, uri: str = "") -> int:
    return ingest(sb, table, str(db), *extra) if not uri else ingest_uri(sb, table, db, uri, *extra)


def ingest_uri(sb, table: str, db, options: str, *extra: str) -> int:
    from omniload.cli import main

    return main(["ingest", "--source-uri", f"{source_uri(sb)}&{options}", "--source-table", table, "--dest-uri",
                 f"duckdb:///{db}", "--progress", "log", *extra])  # fmt: skip


def table_rows(db, table: str) -> list[dict]:
    con = duckdb.connect(str(db), read_only=True)
    try:
        cur = con.execute(f'select * from main."{table}"')
        names = [d[0] for d in cur.description]
        return [dict(zip(names, r, strict=False)) for r in cur.fetchall()]
    finally:
        con.close()


def nonzero(rows: list[dict], key: tuple[str, ...], stats) -> dict[tuple, dict]:
    out = {}
    for r in rows:
        values = {s: r[s] for s in stats}
        if any(values.values()):
            k = tuple(r[c].astimezone(UTC) if isinstance(r[c], datetime) else r[c] for c in key)
            assert k not in out, f"duplicate key {k}"
            out[k] = values
    return out


def spent(sb, table: str) -> int:
    return sb.state.requests[f"report-spent:{PATHS[table]}"]


def placed_order(sb) -> str:
    return sb.state.builders["metrics"].id_of(0)  # metric 0 is named "Placed Order"


def test_flow_series_report_equals_truth(make_sandbox, tmp_path, capsys):
    sb = make_sandbox(scale="tiny", rate_limits="off")
    db = tmp_path / "r.duckdb"
    assert run(sb, "flow_series_report", db, "--interval-start", START.isoformat()) == 0
    assert "conversion metric 'Placed Order'" in capsys.readouterr().err
    key = ("flow_id", "flow_message_id", "send_channel", "period_start")
    got = nonzero(table_rows(db, "flow_series_report"), key, MESSAGE_STATISTICS)
    want = truth.message_report(sb.state, "flow", START, END, placed_order(sb))
    assert want and got == want
    assert spent(sb, "flow_series_report") == 1  # a series request spans 60 days
    assert {r["conversion_metric_id"] for r in table_rows(db, "flow_series_report")} == {placed_order(sb)}


VALUES = [("campaign_values_report", "campaign"), ("flow_values_report", "flow")]


@pytest.mark.parametrize("table,family", VALUES)
def test_a_year_of_a_values_report_is_one_request(make_sandbox, tmp_path, capsys, table, family):
    """Issue #22, item 1: a values report is the totals of a timeframe, up to a year in one request (it cost one
    request per day before); the rows carry the timeframe as period_start/period_end."""
    sb = make_sandbox(scale="tiny", rate_limits="off")
    db = tmp_path / "r.duckdb"
    year = END - timedelta(days=365)
    assert run(sb, table, db, "--interval-start", year.isoformat()) == 0
    assert "conversion metric 'Placed Order'" in capsys.readouterr().err
    key = (f"{family}_id", f"{family}_message_id", "send_channel", "period_start", "period_end")
    got = nonzero(table_rows(db, table), key, MESSAGE_STATISTICS)
    want = truth.message_report(sb.state, family, year, END, placed_order(sb), whole=True)
    assert want and got == want
    assert spent(sb, table) == 1
    assert {r["conversion_metric_id"] for r in table_rows(db, table)} == {placed_order(sb)}


def test_values_reports_hold_the_last_runs_timeframe(make_sandbox, tmp_path, capsys):
    """A timeframe longer than a year costs a request per year (rows of each); the next run replaces the table
    with its own timeframe (by default the last 30 days); a budget too small for the whole timeframe today asks
    nothing and keeps the table as it was; one that no day can pay for fails the table (exit 1)."""
    sb = make_sandbox(scale="tiny", rate_limits="off")
    db, table = tmp_path / "v.duckdb", "flow_values_report"
    key = ("flow_id", "flow_message_id", "send_channel", "period_start", "period_end")
    long = END - timedelta(days=400)
    assert run(sb, table, db, "--interval-start", long.isoformat()) == 0
    assert spent(sb, table) == 2
    got = nonzero(table_rows(db, table), key, MESSAGE_STATISTICS)
    split = long + timedelta(days=365)
    want = {**truth.message_report(sb.state, "flow", long, split, placed_order(sb), whole=True),
            **truth.message_report(sb.state, "flow", split, END, placed_order(sb), whole=True)}  # fmt: skip
    assert got == want and {k[3:] for k in want} == {(long, split), (split, END)}
    assert run(sb, table, db, "--interval-start", long.isoformat(), uri="report_budget=3") == 0
    assert spent(sb, table) == 2 and "nothing asked, the table keeps the last run's totals" in capsys.readouterr().err
    assert nonzero(table_rows(db, table), key, MESSAGE_STATISTICS) == want
    sb.state.dataset.advance(86_400)  # a budget that no day can pay for is refused, not waited for
    assert run(sb, table, db, "--interval-start", long.isoformat(), uri="report_budget=1") == 1
    assert "needs 2 requests (one per year), more than report_budget=1 allows a day" in capsys.readouterr().err
    assert spent(sb, table) == 2 and nonzero(table_rows(db, table), key, MESSAGE_STATISTICS) == want
    assert run(sb, table, db) == 0  # no --interval-start: the last 30 days, replacing the table
    assert spent(sb, table) == 3
    got, today = nonzero(table_rows(db, table), key, MESSAGE_STATISTICS), END + timedelta(days=1)
    assert got == truth.message_report(
        sb.state, "flow", today - timedelta(days=30), today, placed_order(sb), whole=True
    )


DST_START, DST_END = datetime(2026, 2, 20, tzinfo=ZONE), datetime(2026, 3, 20, tzinfo=ZONE)  # 2026-03-08: 23 hours
STATS = {"campaign": MESSAGE_STATISTICS, "flow": MESSAGE_STATISTICS, "form": FORM_STATISTICS,
         "segment": SEGMENT_STATISTICS, "metric": MEASUREMENTS}  # fmt: skip


def report_truth(sb, table: str, start: datetime, end: datetime) -> tuple[tuple[str, ...], dict]:
    """The key columns and the truth of a report table over ``[start, end)`` (days of ``start``'s zone)."""
    family, whole = table.split("_")[0], "values" in table
    per = {"campaign": ("campaign_id", "campaign_message_id", "send_channel"),
           "flow": ("flow_id", "flow_message_id", "send_channel"), "form": ("form_id", "form_version_id"),
           "segment": ("segment_id",), "metric": ("metric_id",)}[family]  # fmt: skip
    key = (*per, "period_start", *(("period_end",) if whole else ()))
    if family in ("campaign", "flow"):
        return key, truth.message_report(sb.state, family, start, end, placed_order(sb), whole=whole)
    if family == "metric":
        return key, truth.metric_aggregates(sb.state, start, end)
    recompute = truth.form_report if family == "form" else truth.segment_report
    return key, recompute(sb.state, start, end, whole=whole)


@pytest.mark.parametrize("table", list(PATHS))
def test_report_days_are_the_accounts_across_a_dst_change(make_sandbox, tmp_path, capsys, table):
    """Issue #22, item 2: Klaviyo counts report days in the account's timezone (here America/New_York) and
    ignores a timeframe's offset; every table equals the truth recomputed over New York days, across the change
    to daylight saving time (2026-03-08 is 23 hours long), with period_start/period_end the local midnights and
    the zone in a column. Counting UTC days (the old code) gives other numbers under other labels."""
    sb = make_sandbox(scale="tiny,metrics=22,events=8000", rate_limits="off")
    assert sb.state.builders["accounts"].build(0)[0]["timezone"] == ZONE.key
    db = tmp_path / "z.duckdb"
    assert run(sb, table, db, "--interval-start", DST_START.isoformat(), "--interval-end", DST_END.isoformat()) == 0
    assert "report days in the account's timezone America/New_York" in capsys.readouterr().err
    key, want = report_truth(sb, table, DST_START, DST_END)
    rows = table_rows(db, table)
    assert want and nonzero(rows, key, STATS[table.split("_")[0]]) == want
    assert {r["timezone"] for r in rows} == {ZONE.key}
    utc = {(r["period_start"].astimezone(UTC), r["period_end"].astimezone(UTC)) for r in rows}
    if "values" in table:
        assert utc == {(DST_START, DST_END)}
    else:  # 28 local days: 27 of 24 hours, 2026-03-08 of 23 (instants: subtract in UTC)
        hours = {lo.astimezone(ZONE).date().isoformat(): (hi - lo) / timedelta(hours=1) for lo, hi in utc}
        assert len(hours) == 28 and hours.pop("2026-03-08") == 23 and set(hours.values()) == {24}
        assert min(utc)[0] == DST_START and max(utc)[1] == DST_END
    assert spent(sb, table) == (22 if table == "metric_aggregates" else 1)  # aggregates: one request per metric


def test_attributed_conversions_equal_truth_and_the_message_reports(make_sandbox, tmp_path, capsys):
    """Issue #22, item 6: the conversion metric's aggregates by attributed flow and message, daily in the account's
    zone across a DST change, equal the truth; they cost one metric-aggregates request per 60 days (no daily limit)
    and their conversions and value per message agree with the campaign and flow reports' of the same days."""
    sb = make_sandbox(scale="tiny", rate_limits="off")
    db = tmp_path / "a.duckdb"
    window = ("--interval-start", DST_START.isoformat(), "--interval-end", DST_END.isoformat())
    assert run(sb, "attributed_conversions", db, *window) == 0
    key = ("conversion_metric_id", "attributed_flow", "attributed_message", "period_start")
    got = nonzero(table_rows(db, "attributed_conversions"), key, MEASUREMENTS)
    want = truth.attributed_conversions(sb.state, DST_START, DST_END, placed_order(sb))
    assert want and got == want
    assert any(k[2] for k in want) and any(not k[2] for k in want) and any(k[1] for k in want)  # flows, campaigns, none
    assert spent(sb, "metric_aggregates") == 1 and not sb.state.requests["status:400"]
    for family in ("campaign", "flow"):
        report = truth.message_report(sb.state, family, DST_START, DST_END, placed_order(sb))
        per_message = {
            (k[1], k[3]): (v["conversions"], v["conversion_value"]) for k, v in report.items() if v["conversions"]
        }
        mine = {
            (k[2], k[3]): (v["count"], v["sum_value"])
            for k, v in got.items()
            if k[2] and bool(k[1]) == (family == "flow")
        }
        assert mine == per_message


def test_metric_aggregates_equal_truth(make_sandbox, tmp_path):
    sb = make_sandbox(scale="tiny", rate_limits="off")
    db = tmp_path / "m.duckdb"
    assert run(sb, "metric_aggregates", db, "--interval-start", START.isoformat()) == 0
    got = nonzero(table_rows(db, "metric_aggregates"), ("metric_id", "period_start"), MEASUREMENTS)
    assert got == truth.metric_aggregates(sb.state, START, END) and got


SERIES_KEY = ("flow_id", "flow_message_id", "send_channel", "period_start")
SPAN = 60  # days of a series request (flow_series_report)


def test_budget_stops_a_backfill_and_the_next_days_resume_it(make_sandbox, tmp_path, capsys):
    sb = make_sandbox(scale="tiny", rate_limits="off")
    db, table = tmp_path / "b.duckdb", "flow_series_report"
    opts = "report_budget=2&report_horizon_days=0"
    first = END - timedelta(days=150)
    start = ("--interval-start", first.isoformat())
    assert run(sb, table, db, *start, uri=opts) == 0  # exit 0: the rest is planned for tomorrow
    assert spent(sb, table) == 2
    assert "30 of 150 periods left for tomorrow's budget" in capsys.readouterr().err
    assert run(sb, table, db, *start, uri=opts) == 0  # the same day: nothing left to spend
    assert spent(sb, table) == 2
    assert "30 of 30 periods left" in capsys.readouterr().err
    for _ in range(2):  # the next days: the backfill goes on where it stopped
        sb.state.dataset.advance(86_400)
        assert run(sb, table, db, *start, uri=opts) == 0
    assert spent(sb, table) == 4  # every day once (30 + 1 new days, then 1), none twice
    got = nonzero(table_rows(db, table), SERIES_KEY, MESSAGE_STATISTICS)
    assert got == truth.message_report(sb.state, "flow", first, END + timedelta(days=2), placed_order(sb))


@pytest.mark.parametrize("budget", [1, 2, 7])
def test_any_budget_catches_up_within_the_days_the_note_computed(make_sandbox, tmp_path, capsys, budget):
    """Issue #20 item 19, #22 item 4: with any report_budget, each day's run loads periods never loaded before
    (a request spans 60 days), the backlog shrinks by budget * 60 - 1 days a day, the table is current within the
    days the note computed and then equals the truth."""
    import re

    sb = make_sandbox(scale="tiny", rate_limits="off")
    db, table = tmp_path / "b.duckdb", "flow_series_report"
    first = END - timedelta(days=8 * SPAN)
    start = ("--interval-start", first.isoformat())
    left = re.compile(r"(\d+) of (\d+) periods left for tomorrow's budget")
    assert run(sb, table, db, *start, uri=f"report_budget={budget}") == 0
    err = capsys.readouterr().err
    behind = int(left.search(err).group(1))
    assert behind == 8 * SPAN - budget * SPAN
    days = int(re.search(r"current in about (\d+) day", err).group(1))
    assert days == -(-behind // (budget * SPAN - 1))
    for day in range(1, days + 1):
        sb.state.dataset.advance(86_400)
        assert run(sb, table, db, *start, uri=f"report_budget={budget}") == 0
        err = capsys.readouterr().err
        found = left.search(err)
        if day < days:
            assert spent(sb, table) == budget * (day + 1)  # the whole budget, every day until current
            assert int(found.group(1)) == behind - day * (budget * SPAN - 1), err
        else:
            assert found is None, err  # current
    got = nonzero(table_rows(db, table), SERIES_KEY, MESSAGE_STATISTICS)
    assert got == truth.message_report(sb.state, "flow", first, END + timedelta(days=days), placed_order(sb))


def test_recent_periods_are_queried_again(make_sandbox, tmp_path):
    sb = make_sandbox(scale="tiny", rate_limits="off")
    db = tmp_path / "h.duckdb"
    assert run(sb, "flow_series_report", db, "--interval-start", (END - timedelta(days=3)).isoformat()) == 0
    assert spent(sb, "flow_series_report") == 1
    sb.state.dataset.advance(86_400)
    assert run(sb, "flow_series_report", db) == 0  # the default horizon reaches past the start: one request
    assert spent(sb, "flow_series_report") == 2


def test_attribution_changes_within_the_window_are_picked_up(make_sandbox, tmp_path):
    """Issue #22, item 3: conversions attributed late to a period 20 days back (older than the old 7-day horizon,
    within the default 30-day one) are in the table after the next run; report_horizon_days=7 misses them."""
    from .conftest import http_post

    sb = make_sandbox(scale="tiny", rate_limits="off")
    table, first = "flow_series_report", END - timedelta(days=40)
    for db in (tmp_path / "default.duckdb", tmp_path / "week.duckdb"):
        assert run(sb, table, db, "--interval-start", first.isoformat()) == 0
    before = truth.message_report(sb.state, "flow", first, END, placed_order(sb))
    http_post(sb.base_url, f"/__sandbox/events/late?count=400&before_seconds={20 * 86_400}")
    sb.state.dataset.advance(86_400)  # the late events are visible the next day
    changed = truth.message_report(sb.state, "flow", first, END, placed_order(sb))
    day = END - timedelta(
        days=20
    )  # the late events are dated in the minute before 2026-06-11T00:00Z: June 10 in New York
    assert {k for k in changed if changed[k] != before.get(k)} and {
        k[3] for k in changed if changed[k] != before.get(k)
    } == {day}
    spent_before = spent(sb, table)
    assert run(sb, table, tmp_path / "default.duckdb") == 0
    assert spent(sb, table) == spent_before + 1  # the 30-day horizon: one series request
    want = truth.message_report(sb.state, "flow", first, END + timedelta(days=1), placed_order(sb))
    assert nonzero(table_rows(tmp_path / "default.duckdb", table), SERIES_KEY, MESSAGE_STATISTICS) == want
    assert run(sb, table, tmp_path / "week.duckdb", uri="report_horizon_days=7") == 0
    assert nonzero(table_rows(tmp_path / "week.duckdb", table), SERIES_KEY, MESSAGE_STATISTICS) != want


def test_server_daily_limit_fails_the_table_and_keeps_what_was_loaded(make_sandbox, tmp_path, capsys):
    sb = make_sandbox(scale="tiny", rate_limits="off", report_daily=4)
    db, table = tmp_path / "d.duckdb", "flow_series_report"
    first = END - timedelta(days=5 * SPAN)
    assert run(sb, table, db, "--interval-start", first.isoformat(), "--max-retry-after", "60") == 1
    err = capsys.readouterr().err
    assert "HTTP 429" in err and "--max-retry-after" in err
    assert {r["period_start"].astimezone(UTC) for r in table_rows(db, table)} <= {
        first + timedelta(days=d) for d in range(4 * SPAN)
    }
    sb.state.dataset.advance(86_400)
    assert run(sb, table, db, "--interval-start", first.isoformat(), uri="report_budget=4") == 0
    state = json.dumps(sb.state.requests)
    assert spent(sb, table) == 6, state  # resumed after the 4 spans done (61 days left: 2), not from the start


def test_conversion_metric_from_the_uri(make_sandbox, tmp_path, capsys):
    sb = make_sandbox(scale="tiny", rate_limits="off")
    other = sb.state.builders["metrics"].id_of(1)
    db = tmp_path / "c.duckdb"
    assert run(sb, "campaign_values_report", db, "--interval-start", (END - timedelta(days=2)).isoformat(),
               uri=f"conversion_metric_id={other}") == 0  # fmt: skip
    assert f"conversion metric {other} (conversion_metric_id=)" in capsys.readouterr().err
    assert {r["conversion_metric_id"] for r in table_rows(db, "campaign_values_report")} == {other}


def test_reports_are_not_part_of_all():
    from omniload.pipeline import resolve_targets
    from omniload.sources.klaviyo.source import KlaviyoSource

    src = KlaviyoSource.from_uri(f"klaviyo://?api_key={KEY}")
    names = {t.source for t in resolve_targets(src.tables(), "all", None, "klaviyo")}
    assert names and not names & set(REPORTS)


def test_report_specs_agree_with_the_openapi_spec():
    rules = report_rules()
    for name, path in PATHS.items():
        spec, r = TABLES[name], rules[path]
        assert spec.path == path and spec.resource_type == r.resource_type and spec.method == "POST"
        assert set(spec.body.get("statistics") or spec.body.get("measurements")) <= set(r.statistics)
        assert set(spec.body.get("group_by", ())) <= set(r.group_by)
        assert spec.body.get("interval") in (r.intervals if REPORTS[name].series else (None,))
        assert (REPORTS[name].daily, spec.bucket or spec.name) == (r.daily, name)
    assert (rules["/api/campaign-values-reports"].burst, rules["/api/campaign-values-reports"].steady) == (1, 2)


@pytest.mark.parametrize("attrs,detail", [
    ({"statistics": ["opens"], "timeframe": {"key": "last_7_days"}}, "'conversion_metric_id' is a required field"),
    ({"statistics": ["nope"], "timeframe": {"key": "last_7_days"}, "conversion_metric_id": "X"}, "'nope' is not a valid choice"),
    ({"statistics": ["opens"], "interval": "daily", "conversion_metric_id": "X",
      "timeframe": {"start": "2026-04-01T00:00:00Z", "end": "2026-06-30T00:00:00Z"}}, "too long for the daily interval"),
])  # fmt: skip
def test_sandbox_refuses_bad_report_bodies(sandbox, attrs, detail):
    import urllib.error
    import urllib.request

    path = "/api/flow-series-reports" if "interval" in attrs else "/api/campaign-values-reports"
    rtype = "flow-series-report" if "interval" in attrs else "campaign-values-report"
    req = urllib.request.Request(sandbox.base_url + path, method="POST",
                                 data=json.dumps({"data": {"type": rtype, "attributes": attrs}}).encode(),
                                 headers={"Authorization": f"Klaviyo-API-Key {KEY}", "revision": "2026-07-15"})  # fmt: skip
    with pytest.raises(urllib.error.HTTPError) as exc:
        urllib.request.urlopen(req, timeout=30)
    body = json.loads(exc.value.read())
    assert exc.value.code == 400 and body["errors"][0]["code"] == "invalid" and detail in body["errors"][0]["detail"]
