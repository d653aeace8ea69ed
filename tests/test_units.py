"""Unit tests where the logic is: window and slice arithmetic, the disposition matrix, the error policy, the
table spec's own checks and the source registry."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from omniload.errors import UsageError
from omniload.load import disposition
from omniload.sources.base import Window
from omniload.sources.klaviyo.policy import classify, retry_after
from omniload.sources.klaviyo.spec import Parent, TableSpec
from omniload.sources.klaviyo.windows import (
    FIRST_SLICE_PAGES,
    SECOND,
    checkpoint_slices,
    even_windows,
    fetch_windows,
    slice_rows,
)
from omniload.sources.registry import SOURCES, open_source
from omniload.types import TEXT, TS

T0 = datetime(2024, 1, 1, tzinfo=UTC)
H = timedelta(hours=1)


def _contiguous(pieces, lo, hi):
    assert pieces[0][0] == lo and pieces[-1][1] == hi
    for (_a, b), (c, _) in zip(pieces, pieces[1:], strict=False):
        assert b == c, "pieces must touch: a record on an edge belongs to exactly one"
    assert all(a is None or a < b for a, b in pieces), "no empty or reversed piece"


# -- checkpoint slices -----------------------------------------------------------------------------------


def test_slices_cover_the_interval_exactly_with_about_the_wanted_rows():
    # 100 records per hour (a probe of 100 records spanning one hour), 100 hours of data: 10,000 records
    end = T0 + 200 * H
    slices = checkpoint_slices(None, end, 100, T0, T0 + H, T0 + 100 * H, 2_500)
    assert len(slices) == 5  # 10,000 / 2,500 + 1
    _contiguous([(w.lo, w.hi) for w in slices], None, end)
    inner = [w.hi - w.lo for w in slices[1:-1]]
    assert max(inner) - min(inner) <= timedelta(microseconds=1)  # equal time spans


def test_one_slice_when_everything_fits_or_the_data_has_no_span():
    end = T0 + 10 * H
    assert checkpoint_slices(T0, end, 100, T0, T0 + H, T0 + 2 * H, 1_000_000) == [Window(T0, end)]
    assert checkpoint_slices(T0, end, 1, T0, T0, T0, 10) == [Window(T0, end)]  # one instant: cannot cut


def test_slices_are_capped_for_absurd_densities():
    slices = checkpoint_slices(None, T0 + 1000 * H, 1000, T0, T0 + timedelta(microseconds=1), T0 + 900 * H, 1000)
    assert len(slices) == 1000
    _contiguous([(w.lo, w.hi) for w in slices], None, T0 + 1000 * H)


def test_slice_rows_ramp_up_from_a_small_first_slice_then_stay_at_the_wanted_rows():
    assert slice_rows(1_000_000, 500_000, 10_000) == [10_000, 20_000, 40_000, 80_000, 160_000, 320_000, 360_000, 10_000]
    assert slice_rows(5_000, 500_000, 10_000) == [5_000]  # fits in the first slice: one slice
    assert slice_rows(25_000, 500_000, 10_000) == [10_000, 15_000]  # the ramp ends where the records do
    assert slice_rows(10_000, 2_500, 10_000) == [2_000] * 5  # first >= wanted: equal slices as before
    big = slice_rows(5_000_000, 500_000, 10_000)
    assert big[:6] == [10_000, 20_000, 40_000, 80_000, 160_000, 320_000]
    assert all(r <= 500_000 for r in big) and sum(big) == pytest.approx(5_000_000)
    assert len(big) == 6 + 9 + 1 and big[-1] == 10_000  # a flat cut makes 11: the ramp adds 4, the small last slice 1
    assert len(slice_rows(1e12, 10, 1)) == 1000  # capped


def test_a_multi_million_backfill_commits_a_small_first_slice_and_grows():
    # events: a probe page of 1,000 records spanning 5 minutes; 30 days of them: 8.64 million records
    end = T0 + timedelta(days=31)
    slices = checkpoint_slices(None, end, 1000, T0, T0 + timedelta(minutes=5), T0 + timedelta(days=30), 500_000)
    _contiguous([(w.lo, w.hi) for w in slices], None, end)
    assert all(w.hi.microsecond == 0 for w in slices)
    first = FIRST_SLICE_PAGES * 1000  # 25 pages: fetched and committed within seconds
    assert [w.rows for w in slices[:5]] == [first, 2 * first, 4 * first, 8 * first, 16 * first]
    assert slices[0].hi - T0 == pytest.approx(timedelta(minutes=5) * FIRST_SLICE_PAGES, abs=SECOND)  # spans follow rows
    assert slices[2].hi - slices[2].lo == pytest.approx(4 * (slices[0].hi - T0), abs=SECOND)
    assert max(w.rows for w in slices) <= 500_000 and sum(w.rows for w in slices) == pytest.approx(8_640_000)
    assert (
        len(slices) == 5 + 16 + 1 and slices[-1].rows == first
    )  # a flat cut makes 18: the ramp adds 3, the small last 1


def test_slices_emptied_by_whole_seconds_give_their_rows_to_the_next():
    # 1,000 records a second cut into (at most 1,000) slices of 600 ms: those flooring empties are dropped
    slices = checkpoint_slices(T0, T0 + H, 1000, T0, T0 + SECOND, T0 + 600 * SECOND, 10)
    _contiguous([(w.lo, w.hi) for w in slices], T0, T0 + H)
    assert len(slices) < 1000 and sum(w.rows for w in slices) == pytest.approx(600_000)
    assert max(w.rows for w in slices) == pytest.approx(1200)  # an emptied slice's 600 went to the next


# -- parallel fetch windows ----------------------------------------------------------------------------------


def test_windows_cover_from_the_probe_end_to_the_interval_end():
    end = T0 + 500 * H
    wins = fetch_windows(T0, T0 + H, T0 + 400 * H, end, parallelism=4)
    _contiguous(wins, T0 + H, end)
    assert len(wins) == 4 * 4 + 1  # 399 pages: capped at 4 windows per worker, plus the tail to the end
    assert wins[-1] == (T0 + 400 * H + SECOND, end)  # the newest record is inside a window, not on the tail's edge


def test_sparse_data_gets_few_windows_each_of_several_pages():
    wins = fetch_windows(T0, T0 + H, T0 + 20 * H, T0 + 30 * H, parallelism=16)
    assert (
        len(wins) == 6 + 1
    )  # 19 pages cannot fill a wave of 8-page windows: one wave of 3-page windows, plus the tail


def test_windows_come_in_whole_waves_of_the_parallelism():
    from omniload.sources.klaviyo.windows import window_count

    assert window_count(25, 8) == 8  # a small first slice: one wave of ~3 pages each (4 round trips, not 8)
    assert window_count(100, 8) == 8  # 12 windows of 8 pages would run as a full wave and a wave of 4
    assert window_count(200, 8) == 24  # three full waves of 8+ pages
    assert window_count(10_000, 8) == 32  # at most WINDOWS_PER_WORKER waves
    assert window_count(2, 8) == 1 and window_count(0, 8) == 1


def test_even_windows_cover_a_dense_slice_in_whole_waves_of_whole_seconds():
    lo, hi = datetime(2024, 1, 1, tzinfo=UTC), datetime(2024, 1, 2, 0, 0, 7, tzinfo=UTC)
    ws = even_windows(lo, hi, 200, 8)
    assert ws[0][0] == lo and ws[-1][1] == hi and all(a[1] == b[0] for a, b in zip(ws, ws[1:], strict=False))
    assert len(ws) == 24 and all(w[0].microsecond == 0 and w[1].microsecond == 0 for w in ws)  # 3 waves of 8
    assert len(even_windows(lo, hi, 5, 8)) == 1 and even_windows(lo, lo + 3 * SECOND, 400, 8)[-1][1] == lo + 3 * SECOND


def test_uneven_density_still_covers_and_empty_span_gives_one_window():
    # the probe page was dense (one minute), the rest is long: the cut follows time, the cover stays exact
    wins = fetch_windows(T0, T0 + timedelta(minutes=1), T0 + 1000 * H, T0 + 1001 * H, parallelism=2)
    _contiguous(wins, T0 + timedelta(minutes=1), T0 + 1001 * H)
    wins = fetch_windows(T0, T0 + H, T0 + H, T0 + 2 * H, parallelism=8)
    assert wins == [(T0 + H, T0 + H + SECOND), (T0 + H + SECOND, T0 + 2 * H)]


def test_every_edge_is_a_whole_second_and_never_past_the_end():
    frac = timedelta(microseconds=345_678)
    end = T0 + 3 * H + frac
    wins = fetch_windows(T0 + frac, T0 + 60 * SECOND + frac, T0 + 3 * H + frac, end, parallelism=8)
    slices = checkpoint_slices(T0 + frac, end, 10, T0 + frac, T0 + 60 * SECOND + frac, end, 50)
    for lo, hi in wins + [(w.lo, w.hi) for w in slices]:
        assert lo.microsecond == 0 and hi.microsecond == 0 and lo < hi <= end
    _contiguous(wins, T0 + 60 * SECOND, T0 + 3 * H)
    # the newest record sits on the interval's end: no window reaches past it
    assert fetch_windows(T0, T0 + H, end, end, 2)[-1][1] == T0 + 3 * H


# -- disposition matrix --------------------------------------------------------------------------------------

DESTS = {"duckdb": True, "postgres": True, "files": False}  # merges in place?


@pytest.mark.parametrize("dest", sorted(DESTS))
@pytest.mark.parametrize("first", [True, False], ids=["first-slice", "later-slice"])
@pytest.mark.parametrize("strategy", ["merge", "replace", "append", "delete+insert"])
def test_disposition_matrix(strategy, dest, first):
    got = disposition(strategy, DESTS[dest], first, newer_than_loaded=False)
    if strategy in ("merge", "delete+insert"):
        assert got == ("merge" if DESTS[dest] else "append")
    elif strategy == "replace":
        assert got == ("replace" if first else "append")
    else:
        assert got == "append"


def test_newer_than_loaded_merges_become_appends_only_for_merges():
    assert disposition("merge", True, True, newer_than_loaded=True) == "append"
    assert disposition("replace", True, True, newer_than_loaded=True) == "replace"


def test_full_refresh_replaces_on_the_first_slice_then_appends():
    # a full refresh drops the table and state (dlt refresh) on slice 0; the disposition itself is the table's
    assert [disposition("replace", True, n == 0, False) for n in range(3)] == ["replace", "append", "append"]
    assert [disposition("merge", True, n == 0, False) for n in range(3)] == ["merge"] * 3


# -- error policy ----------------------------------------------------------------------------------------------

THROTTLED = (
    b'{"errors":[{"status":429,"code":"throttled","detail":"Request was throttled. Expected available in 7 seconds."}]}'
)


@pytest.mark.parametrize("status,headers,body,action,wait,fragment", [
    (429, {"Retry-After": "3"}, THROTTLED, "wait", 3.0, "429"),
    (429, {}, THROTTLED, "wait", 7.5, "429"),  # no header: the seconds in the detail, plus a margin
    (429, {}, b"{}", "wait", None, "429"),  # nothing said: back off
    (500, {}, b"", "retry", None, "HTTP 500"),
    (503, {}, b"<html>", "retry", None, "HTTP 503"),
    (200, {"Content-Type": "text/html"}, b"<html>oops</html>", "retry", None, "not a JSON:API document"),
    (401, {}, b'{"errors":[{"code":"authentication_failed","detail":"Incorrect authentication credentials."}]}',
     "fail", None, "HTTP 401 authentication_failed: Incorrect authentication credentials."),
    (403, {}, b'{"errors":[{"code":"permission_denied","detail":"missing scope"}]}', "fail", None, "permission_denied"),
    (400, {}, b'{"errors":[{"code":"invalid","detail":"bad filter"}]}', "fail", None, "invalid: bad filter"),
    (404, {"Content-Type": "text/plain"}, b"nope", "fail", None, "unreadable body (text/plain)"),
])  # fmt: skip
def test_error_policy(status, headers, body, action, wait, fragment):
    outcome = classify(status, headers, body)
    assert (outcome.action, outcome.wait) == (action, wait)
    assert fragment in outcome.problem


def test_retry_after_prefers_the_header_and_never_goes_negative():
    assert retry_after("-5", THROTTLED) == 0.0
    assert retry_after("soon", THROTTLED) == 7.5


# -- table spec v2 and the registry ------------------------------------------------------------------------------


def _spec(**kw):
    base = dict(name="t", path="/api/t", resource_type="t", columns={"updated": TS}, burst=1, steady=1, page_size=None)
    return TableSpec(**{**base, **kw})


def test_spec_accepts_composite_keys_parents_and_post_bodies():
    child = _spec(path="/api/lists/{id}/profiles", parent=Parent("lists"), primary_key=("list_id", "id"))
    assert child.parent_column == "list_id" and child.all_columns["list_id"] == TEXT
    assert child.info.primary_key == ("list_id", "id")
    report = _spec(method="POST", body={"data": {}}, cursor="updated", cursor_kind="period")
    assert report.strategy == "merge" and report.rate_bucket == "t"


@pytest.mark.parametrize("kw,problem", [
    (dict(method="POST"), "a POST needs a body"),
    (dict(parent=Parent("lists")), "lacks {id}"),
    (dict(primary_key=("list_id", "id")), r"primary key columns \['list_id'\]"),
    (dict(lower_op="greater-than"), "without a cursor"),
    (dict(cursor="updated", cursor_kind="week"), "cursor kind week"),
])  # fmt: skip
def test_spec_refuses_inconsistent_tables(kw, problem):
    with pytest.raises(ValueError, match=problem):
        _spec(**kw)


def test_destinations_offer_capabilities_apart_from_loading(tmp_path):
    from omniload.destinations import parse_destination

    def offers(uri: str) -> tuple[bool, bool, bool, bool]:
        dest = parse_destination(uri)
        return dest.deletes is not None, dest.takeover is not None, dest.views is not None, dest.fill is not None

    assert offers(f"duckdb:///{tmp_path}/a.duckdb") == (True, True, True, True)
    assert offers("postgresql://u:p@127.0.0.1:5/db") == (True, True, True, True)
    assert offers(f"parquet:///{tmp_path}/out") == (True, False, False, False)  # files: tombstones, no takeover
    assert offers(f"sqlite:///{tmp_path}/a.db") == (True, False, False, False)


def test_registry_finds_sources_by_scheme_and_names_the_known_ones():
    assert set(SOURCES) == {"klaviyo"}
    src = open_source("KLAVIYO://?api_key=pk_" + "a" * 34)
    assert type(src).__name__ == "KlaviyoSource" and "events" in src.tables()
    with pytest.raises(UsageError, match="unknown scheme 'hubspot'; allowed: klaviyo://"):
        open_source("hubspot://?key=x")


# --- which tables start first when tables load side by side ----------------------------------------------------


def test_heaviest_groups_start_first_and_ties_keep_their_order():
    from omniload.scheduling import heaviest_first

    groups = [["a"], ["b", "c"], ["d"], ["e"]]
    weights = {"a": 1, "b": 2, "c": 3, "d": 9, "e": 1}
    assert heaviest_first(groups, weights.get) == [["d"], ["b", "c"], ["a"], ["e"]]


def test_klaviyo_weights_put_fanned_out_slow_children_before_list_tables():
    source = open_source("klaviyo://?api_key=pk_" + "a" * 34)
    tables = {n: i for n, i in source.tables().items() if i.in_all}
    heaviest = max(tables.values(), key=lambda i: i.weight)
    assert heaviest.name == "flow-messages"  # 3/s 60/min, one request per flow action, itself one per flow
    assert tables["flow-actions"].weight > tables["profiles"].weight > tables["events"].weight
    assert tables["events"].weight == 60 / 3500


def test_a_klaviyo_reader_carries_the_weight_its_table_is_offered_with():
    """The run orders its tables by their readers' info (pipeline.py): each carries the weight tables() offers (a
    reader's info once carried none: every weight 0, the tables ran in the order given), with a scope too."""
    from omniload.sources.base import ReadEvents, ReadOptions

    source = open_source("klaviyo://?api_key=pk_" + "a" * 34)
    for shared in (False, True):
        if shared:
            source.share_tables({})
        tables = source.tables()
        for name in ("flow-actions", "events", "campaign_values_report"):
            info = source.reader(name, ReadOptions(), ReadEvents()).info
            assert info == tables[name] and info.weight > 0, (name, shared)


# -- reading ahead -----------------------------------------------------------------------------------------


def test_prefetch_reads_a_bounded_number_ahead_and_hands_items_then_the_error_in_order():
    import time

    from omniload.prefetch import Prefetch

    produced: list[int] = []

    def items():
        for i in range(10):
            produced.append(i)
            yield i
        raise UsageError("page 11 failed")

    ahead = Prefetch(items, depth=2)
    time.sleep(0.3)
    assert len(produced) == 3, "two items in the buffer and one waiting for room, no more"
    got = []
    with pytest.raises(UsageError, match="page 11 failed"):
        for item in ahead:
            got.append(item)
    assert got == list(range(10))


def test_prefetch_cancel_stops_the_reader_and_closes_it():
    import time

    from omniload.prefetch import Prefetch

    closed: list[bool] = []

    def items():
        try:
            yield from range(1_000)
        finally:
            closed.append(True)

    ahead = Prefetch(items, depth=1)
    time.sleep(0.1)
    ahead.cancel()
    assert closed == [True] and not ahead._thread.is_alive()


def test_client_pacing_is_klaviyos_unless_a_benchmark_lifts_it(monkeypatch):
    from omniload.sources.klaviyo.client import KlaviyoClient

    monkeypatch.delenv("OMNILOAD_BENCH_RATE_SCALE", raising=False)
    client = KlaviyoClient.__new__(KlaviyoClient)
    client._limiters = {}
    assert (client.limiter("events", 350, 3500).steady, client.limiter("events", 350, 3500).burst) == (3500, 350)
    monkeypatch.setenv("OMNILOAD_BENCH_RATE_SCALE", "100")
    client._limiters = {}
    lifted = client.limiter("events", 350, 3500)
    assert lifted.steady == 350_000
    lifted.observe("3500", "3500", "2")  # the sandbox states the published limit: scaled alike, not a cut
    assert lifted.steady == 350_000
    monkeypatch.setenv("OMNILOAD_BENCH_RATE_SCALE", "0.5")  # never below Klaviyo's own limits
    client._limiters = {}
    assert client.limiter("events", 350, 3500).steady == 3500


def test_a_signal_inside_a_weakref_callback_prints_no_traceback(capsys):
    """Interrupted raised where Python cannot propagate it (a weakref callback) is not printed with a traceback;
    other unraisable exceptions still are."""
    import gc
    import signal as sig
    import sys
    import weakref

    from omniload import signals

    saved = {s: sig.getsignal(s) for s in (sig.SIGINT, sig.SIGTERM)}, sys.unraisablehook
    try:
        signals.install()

        class Thing:
            pass

        def stop(_):
            raise signals.Interrupted(sig.SIGINT)

        def boom(_):
            raise ValueError("an ordinary failure")

        for callback in (stop, boom):
            thing = Thing()
            ref = weakref.ref(thing, callback)  # noqa: F841
            del thing
            gc.collect()
    finally:
        for s, handler in saved[0].items():
            sig.signal(s, handler)
        sys.unraisablehook = saved[1]
    err = capsys.readouterr().err
    assert "Interrupted" not in err and "ValueError: an ordinary failure" in err
