"""Events that arrive days late (Klaviyo shows some 4+ days late): the short lookback of every run misses them,
the deep lookback (events: 7 days, at most once a day of the source's time) catches them; both configurable."""

from __future__ import annotations

from datetime import timedelta
from urllib.parse import parse_qs

from klaviyo_sandbox import testing as truth

from .conftest import http_post
from .helpers import assert_equals_truth, ingest, rows, sandbox_now


def _late(sb, days: float) -> str:
    got = http_post(sb.base_url, f"/__sandbox/events/late?count=1&before_seconds={int(days * 86400)}")
    http_post(sb.base_url, "/__sandbox/clock/advance?seconds=60")  # shown 30 s after it arrives
    return got["ids"][0]


def _event_lower_bounds(sb, since: int) -> list[str]:
    return [parse_qs(q).get("filter", [""])[0] for _, name, q in list(sb.state.log)[since:] if name == "events"]


def test_an_event_three_days_late_is_caught_by_the_next_deep_lookback_a_day_on(make_sandbox, tmp_path):
    sb = make_sandbox(scale="tiny", rate_limits="off", seed=5)
    db = str(tmp_path / "d.duckdb")
    assert ingest(sb, "events", db) == 0  # a first load: the deep lookback is done with it
    late = _late(sb, 3)
    assert ingest(sb, "events", db) == 0  # within the day: only the short lookback (1 day)
    assert late not in rows(db, "events")
    http_post(sb.base_url, "/__sandbox/clock/advance?seconds=86400")
    seen = len(sb.state.log)
    assert ingest(sb, "events", db) == 0  # a day on: the deep re-read (7 days before the cursor)
    assert late in rows(db, "events")
    assert_equals_truth(db, sb, "events")
    lowest = min(
        f.split("greater-or-equal(datetime,")[1][:19] for f in _event_lower_bounds(sb, seen) if "greater-or-equal" in f
    )
    assert lowest < (sandbox_now(sb) - timedelta(days=7)).strftime(
        "%Y-%m-%dT%H:%M:%S"
    )  # read from 7 days before the cursor
    nine = _late(sb, 9)  # beyond the deep lookback: the documented bound
    http_post(sb.base_url, "/__sandbox/clock/advance?seconds=86400")
    assert ingest(sb, "events", db) == 0
    assert nine not in rows(db, "events") and nine in {e["id"] for e in truth.records(sb.state, "events")}


def test_deep_lookback_is_configurable_and_zero_turns_it_off(make_sandbox, tmp_path):
    sb = make_sandbox(scale="tiny", rate_limits="off", seed=6)
    off, wide = str(tmp_path / "off.duckdb"), str(tmp_path / "wide.duckdb")
    for db in (off, wide):
        assert ingest(sb, "events", db) == 0
    late = _late(sb, 9)
    http_post(sb.base_url, "/__sandbox/clock/advance?seconds=7200")
    assert ingest(sb, "events", off, "--deep-lookback", "0") == 0
    assert ingest(sb, "events", wide, "--deep-lookback", "10d", "--deep-lookback-every", "1h") == 0
    assert late not in rows(off, "events")
    assert late in rows(wide, "events")
