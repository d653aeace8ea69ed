"""Form and segment report tables (issue #13): each loads from the sandbox and equals the truth recomputed from
the raw records it summarises (form events' ``form_id``/``form_version_id``, memberships' ``joined_group_at``),
a small daily budget is never exceeded, and the sandbox refuses the bodies Klaviyo refuses."""

from __future__ import annotations

import json
import urllib.error
import urllib.request
from collections import Counter
from datetime import datetime, timedelta

import pytest

from klaviyo_sandbox import testing as truth
from omniload.sources.klaviyo.tables.reports import FORM_STATISTICS, SEGMENT_STATISTICS

from .conftest import KEY
from .test_reports import END, START, nonzero, run, spent, table_rows, unpaced

FORMS = "tiny,metrics=22,events=8000"  # the form metrics are metrics 16..21 (records.FORM_METRICS)
FORM_KEY = ("form_id", "form_version_id", "period_start")
SEGMENT_KEY = ("segment_id", "period_start")


@pytest.fixture(autouse=True)
def fast_pacing(monkeypatch):
    unpaced(monkeypatch)


def first_day(table: str) -> datetime:
    """Values reports: a year's totals in one request; series: a request covers 60 days, 30 keep the tests short."""
    return END - timedelta(days=365) if "values" in table else START


def want(table: str, sb, first: datetime) -> dict:
    whole = "values" in table
    recompute = truth.form_report if table.startswith("form") else truth.segment_report
    return recompute(sb.state, first, END, whole=whole)


def key(table: str) -> tuple[str, ...]:
    return (FORM_KEY if table.startswith("form") else SEGMENT_KEY) + (("period_end",) if "values" in table else ())


@pytest.mark.parametrize("table", ["form_values_report", "form_series_report"])
def test_form_reports_equal_truth(make_sandbox, tmp_path, table):
    sb = make_sandbox(scale=FORMS, rate_limits="off")
    db = tmp_path / "f.duckdb"
    assert run(sb, table, db, "--interval-start", first_day(table).isoformat()) == 0
    got = nonzero(table_rows(db, table), key(table), FORM_STATISTICS)
    expected = want(table, sb, first_day(table))
    assert expected and got == expected
    assert len({k[:2] for k in expected}) > len({k[0] for k in expected})  # a form's versions are rows of their own
    assert spent(sb, table) == 1  # values: a year's totals in one request; series: a request spans 60 days


@pytest.mark.parametrize("table", ["segment_values_report", "segment_series_report"])
def test_segment_reports_equal_truth(make_sandbox, tmp_path, table):
    sb = make_sandbox(scale="tiny", rate_limits="off")
    db = tmp_path / "s.duckdb"
    assert run(sb, table, db, "--interval-start", first_day(table).isoformat()) == 0
    got = nonzero(table_rows(db, table), key(table), SEGMENT_STATISTICS)
    expected = want(table, sb, first_day(table))
    assert expected and got == expected
    assert any(v["members_added"] for v in expected.values())
    assert any(v["members_removed"] for v in expected.values())  # members leave segments (issue #22, 5)
    if "series" in table:  # a day on which more left than joined
        assert any(v["net_members_changed"] < 0 for v in expected.values())
    else:  # the members at the timeframe's end: those the memberships endpoint serves (ended ones gone)
        served = Counter(m["parent_id"] for m in truth.records(sb.state, "segment-memberships") if
                         datetime.fromisoformat(m["attributes"]["joined_group_at"]) < END)  # fmt: skip
        assert {k[0]: v["total_members"] for k, v in got.items() if v["total_members"]} == dict(served)
    assert spent(sb, table) == 1


@pytest.mark.parametrize("table,first,total", [("form_series_report", 2, 3), ("segment_series_report", 2, 3)])
def test_small_budget_is_never_exceeded(make_sandbox, tmp_path, capsys, table, first, total):
    sb = make_sandbox(scale=FORMS, rate_limits="off")
    db = tmp_path / "b.duckdb"
    days = 150  # a series request covers 60 days: 150 days cost 3
    start = ("--interval-start", (END - timedelta(days=days)).isoformat())
    opts = f"report_budget={first}&report_horizon_days=0"
    for _ in range(2):  # the second run on the same day has nothing left to spend
        assert run(sb, table, db, *start, uri=opts) == 0
        assert spent(sb, table) == first
    assert "left for tomorrow's budget" in capsys.readouterr().err
    advances = 0
    while True:  # the next days go on where the budget stopped, at most a budget a day
        sb.state.dataset.advance(86_400)
        advances += 1
        before = spent(sb, table)
        assert run(sb, table, db, *start, uri=opts) == 0
        assert 0 < spent(sb, table) - before <= first
        if "left for tomorrow's budget" not in capsys.readouterr().err:
            break
    assert spent(sb, table) == total  # every day asked once, none twice: 60 days a request


def test_segment_reports_start_where_klaviyo_has_data(make_sandbox, tmp_path):
    sb = make_sandbox(scale="tiny", rate_limits="off")
    db = tmp_path / "e.duckdb"
    window = ("--interval-start", "2023-05-01T00:00:00+00:00", "--interval-end", "2023-09-01T00:00:00+00:00")
    assert run(sb, "segment_series_report", db, *window) == 0  # a timeframe from May 2023 would be refused (400)
    assert not sb.state.requests["status:400"]
    assert spent(sb, "segment_series_report") == 2  # 2023-06-01..09-01 is 92 days (from 05-01: 123 days, 3)


def _post(sb, path: str, attrs: dict):
    rtype = path.rsplit("/", 1)[1][:-1]
    req = urllib.request.Request(sb.base_url + path, method="POST",
                                 data=json.dumps({"data": {"type": rtype, "attributes": attrs}}).encode(),
                                 headers={"Authorization": f"Klaviyo-API-Key {KEY}", "revision": "2026-07-15"})  # fmt: skip
    with pytest.raises(urllib.error.HTTPError) as exc:
        urllib.request.urlopen(req, timeout=30)
    return exc.value.code, json.loads(exc.value.read())["errors"][0]


WEEK = {"key": "last_7_days"}
LONG = {"start": "2026-03-01T00:00:00Z", "end": "2026-06-30T00:00:00Z"}


@pytest.mark.parametrize("path,attrs,detail", [
    ("/api/form-values-reports", {"statistics": ["opens"], "timeframe": WEEK}, "'opens' is not a valid choice for statistics"),
    ("/api/form-values-reports", {"statistics": ["submits"], "timeframe": WEEK, "group_by": ["campaign_id"]},
     "'campaign_id' is not a valid choice for group_by"),
    ("/api/form-values-reports", {"statistics": ["submits"], "timeframe": WEEK, "group_by": ["form_version_id"]},
     "group_by must include form_id"),
    ("/api/form-values-reports", {"statistics": ["submits"], "timeframe": {"start": "2025-01-01T00:00:00Z",
                                  "end": "2026-06-01T00:00:00Z"}}, "at most 1 year long"),  # fmt: skip
    ("/api/form-series-reports", {"statistics": ["submits"], "timeframe": LONG, "interval": "daily"},
     "too long for the daily interval"),
    ("/api/form-series-reports", {"statistics": ["submits"], "timeframe": WEEK}, "'interval' is a required field"),
    ("/api/segment-values-reports", {"statistics": ["total_members", "viewed_form"], "timeframe": WEEK},
     "'viewed_form' is not a valid choice for statistics"),
    ("/api/segment-values-reports", {"statistics": ["total_members"], "timeframe": WEEK, "group_by": ["segment_id"]},
     "'group_by' is not a valid attribute"),
    ("/api/segment-series-reports", {"statistics": ["total_members"], "timeframe": LONG, "interval": "daily"},
     "too long for the daily interval"),
    ("/api/segment-series-reports", {"statistics": ["total_members"], "interval": "daily",
                                     "timeframe": {"start": "2023-05-01T00:00:00Z", "end": "2023-06-15T00:00:00Z"}},
     "unavailable before June 1st, 2023"),
])  # fmt: skip
def test_sandbox_refuses_bad_form_and_segment_bodies(sandbox, path, attrs, detail):
    status, error = _post(sandbox, path, attrs)
    assert status == 400 and error["code"] == "invalid" and detail in error["detail"], error
