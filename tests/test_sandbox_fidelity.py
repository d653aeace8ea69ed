"""The sandbox's real-Klaviyo switches over real HTTP: late events, archived flows, filter precision, future
filters and the Date header, revisions, public links, keyset cursors, and a clock no record runs ahead of."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta
from email.utils import parsedate_to_datetime
from urllib.parse import quote

import pytest

from klaviyo_sandbox import SandboxConfig
from klaviyo_sandbox import testing as truth
from klaviyo_sandbox.app import REAL_LIKE
from klaviyo_sandbox.rules import endpoint_rules

from .conftest import http_get, http_post

# Every switch at its lenient value, so that each test turns on the one behaviour it checks.
TINY = {"scale": "tiny", "rate_limits": "off", "visibility_delay_s": 0, "archived_visible": True, "filter_precision": "micro",
        "refuse_future_filters": False, "revision_policy": "exact"}  # fmt: skip


def tiny(**overrides):
    return {**TINY, **overrides}


ISO = re.compile(r"^\d{4}-\d{2}-\d{2}[T ]\d{2}:\d{2}:\d{2}")


def _q(**params: str) -> str:
    return "?" + "&".join(f"{quote(k, safe='')}={quote(v, safe='')}" for k, v in params.items())


def _all(sb, url: str, **headers) -> list[dict]:
    out = []
    while url:
        resp = http_get(sb.base_url, url, headers=headers)
        assert resp.status == 200, resp.body
        out += resp.json["data"]
        url = resp.json["links"]["next"]
    return out


def _now(sb) -> datetime:
    return datetime.fromisoformat(http_get(sb.base_url, "/__sandbox/clock").json["now"])


def _ts(text: str) -> str:
    return text.replace("+00:00", "Z")


def test_real_like_builds_a_config_from_one_dict():
    cfg = SandboxConfig.real_like(scale="tiny", visibility_delay_s=0)
    assert cfg.scale == "tiny" and cfg.visibility_delay_s == 0
    for key, value in REAL_LIKE.items():
        if key != "visibility_delay_s":
            assert getattr(cfg, key) == value
    with pytest.raises(ValueError):
        SandboxConfig(cursor_mode="pages")


# 1. late events and the visibility delay -----------------------------------------------------------------
@pytest.mark.parametrize("mode", ["keyset", "offset"])
def test_late_events_show_in_pages_and_truth_in_order(make_sandbox, mode):
    sb = make_sandbox(**tiny(cursor_mode=mode))
    added = http_post(sb.base_url, "/__sandbox/events/late?count=7&before_seconds=2592000")  # 30 days back
    assert len(added["ids"]) == 7
    now = _now(sb)
    for dt in added["datetimes"]:
        assert now - timedelta(days=30, minutes=1) <= datetime.fromisoformat(dt) <= now - timedelta(days=30)
    again = http_post(sb.base_url, "/__sandbox/events/late?count=3&before_seconds=0")
    expected = [e["id"] for e in truth.records(sb.state, "events")]
    assert set(added["ids"] + again["ids"]) <= set(expected)
    for sort, page in (("datetime", "37"), ("-datetime", "50")):
        got = [e["id"] for e in _all(sb, "/api/events" + _q(sort=sort, **{"page[size]": page}))]
        assert got == (expected if sort == "datetime" else expected[::-1])
    times = [datetime.fromisoformat(e["attributes"]["datetime"]) for e in truth.records(sb.state, "events")]
    assert times == sorted(times)
    lo = _ts(added["datetimes"][0])  # a window around the first batch, with a non-time filter too
    start = datetime.fromisoformat(added["datetimes"][0]) - timedelta(days=2)
    flt = f"greater-or-equal(datetime,{_ts(start.isoformat())}),less-than(datetime,{_ts((start + timedelta(days=4)).isoformat())})"
    window = [e["id"] for e in truth.records(sb.state, "events", start, start + timedelta(days=4))]
    assert set(added["ids"]) <= set(window) and lo
    assert [e["id"] for e in _all(sb, "/api/events" + _q(filter=flt, **{"page[size]": "3"}))] == window
    metric = http_get(sb.base_url, "/api/events" + _q(filter=flt)).json["data"]
    late = next(e for e in metric if e["id"] == added["ids"][0])
    mid = late["relationships"]["metric"]["data"]["id"]
    by_metric = _all(sb, "/api/events" + _q(filter=f"{flt},equals(metric_id,'{mid}')", **{"page[size]": "2"}))
    assert added["ids"][0] in [e["id"] for e in by_metric]
    assert all(e["relationships"]["metric"]["data"]["id"] == mid for e in by_metric)


def test_visibility_delay_hides_new_and_late_events_for_a_while(make_sandbox):
    sb = make_sandbox(**tiny(visibility_delay_s=120))
    now = _now(sb)
    newest = http_get(sb.base_url, "/api/events" + _q(sort="-datetime", **{"page[size]": "1"})).json["data"][0]
    assert datetime.fromisoformat(newest["attributes"]["datetime"]) <= now - timedelta(seconds=120)
    added = http_post(sb.base_url, "/__sandbox/events/late?count=4&before_seconds=86400")["ids"]
    flt = f"greater-or-equal(datetime,{_ts((now - timedelta(days=2)).isoformat())})"
    seen = lambda: {e["id"] for e in _all(sb, "/api/events" + _q(filter=flt))}  # noqa: E731
    assert not set(added) & seen()
    assert not set(added) & {e["id"] for e in truth.records(sb.state, "events")}
    http_post(sb.base_url, "/__sandbox/clock/advance?seconds=119")
    assert not set(added) & seen()
    http_post(sb.base_url, "/__sandbox/clock/advance?seconds=1")
    assert set(added) <= seen()
    assert set(added) <= {e["id"] for e in truth.records(sb.state, "events")}


def test_a_page_with_a_late_event_and_a_deleted_profiles_event_shows_the_one_and_hides_the_other(make_sandbox):
    """Found by the season: a page whose late event and hidden event (its profile deleted) balanced out looked like
    one run of generated events and was rendered as that run: the late event missing, the hidden one shown."""
    sb = make_sandbox(**tiny())
    window = truth.records(sb.state, "events")[-12:]
    times = [datetime.fromisoformat(e["attributes"]["datetime"]) for e in window]
    k = next(k for k in range(2, 8) if times[k + 1] - times[k] > timedelta(minutes=2))
    before = int((_now(sb) - times[k + 1]).total_seconds()) + 1  # dated within the minute before event k + 1
    late = http_post(sb.base_url, f"/__sandbox/events/late?count=1&before_seconds={before}")["ids"][0]
    owners = [e["relationships"]["profile"]["data"]["id"] for e in window]
    gone = next(i for i in range(k + 1, len(window) - 1) if owners.count(owners[i]) == 1)  # after the late one
    http_post(sb.base_url, f"/__sandbox/delete?resource=profiles&ids={owners[gone]}")
    lo, hi = times[0], times[-1] + timedelta(microseconds=1)
    want = [e["id"] for e in truth.records(sb.state, "events", lo, hi)]
    assert late in want and window[gone]["id"] not in want and len(want) == len(window)
    flt = f"greater-or-equal(datetime,{_ts(lo.isoformat())}),less-than(datetime,{_ts(hi.isoformat())})"
    assert [e["id"] for e in _all(sb, "/api/events" + _q(filter=flt, sort="datetime"))] == want


# 2. archived flows -------------------------------------------------------------------------------------
def test_archived_flows_are_hidden_unless_asked(make_sandbox):
    hidden = make_sandbox(**tiny(archived_visible=False))
    shown = make_sandbox(**tiny())
    everything = {f["id"]: f["attributes"]["archived"] for f in truth.records(hidden.state, "flows")}
    assert any(everything.values()) and not all(everything.values())
    default = _all(hidden, "/api/flows")
    assert default and not any(f["attributes"]["archived"] for f in default)
    archived = _all(hidden, "/api/flows" + _q(filter="equals(archived,true)"))
    assert archived and all(f["attributes"]["archived"] for f in archived)
    active = _all(hidden, "/api/flows" + _q(filter="equals(archived,false)"))
    assert {f["id"] for f in archived + active} == set(everything) and len(default) == len(active)
    assert len(_all(shown, "/api/flows")) == len(everything)  # archived_visible: all flows listed


def test_clock_advance_archives_flows_with_a_newer_update_time(make_sandbox):
    sb = make_sandbox(**tiny(archived_visible=False))
    before = {f["id"]: f["attributes"] for f in truth.records(sb.state, "flows")}
    http_post(sb.base_url, "/__sandbox/clock/advance?seconds=86400")
    after = {f["id"]: f["attributes"] for f in truth.records(sb.state, "flows")}
    newly = [i for i in before if after[i]["archived"] and not before[i]["archived"]]
    assert newly and all(after[i]["updated"] > before[i]["updated"] for i in newly)
    listed = {f["id"] for f in _all(sb, "/api/flows")}
    assert not set(newly) & listed


# 3. filter precision -----------------------------------------------------------------------------------
def test_filter_precision_second_truncates_both_sides(make_sandbox):
    micro = make_sandbox(**tiny())
    second = make_sandbox(**tiny(filter_precision="second"))
    prof = next(p for p in truth.records(micro.state, "profiles") if "." in p["attributes"]["updated"])
    upd = datetime.fromisoformat(prof["attributes"]["updated"])
    whole = _ts(upd.replace(microsecond=0).isoformat())
    for sb, included in ((micro, True), (second, False)):
        ids = {
            p["id"]
            for p in _all(sb, "/api/profiles" + _q(filter=f"greater-than(updated,{whole})", **{"page[size]": "100"}))
        }
        assert (prof["id"] in ids) is included
    # a filter value's fraction is dropped too: less-than(updated, S.999999) means "second < S" in second mode
    frac = _ts(upd.replace(microsecond=999_999).isoformat())
    for sb, included in ((micro, True), (second, False)):
        ids = {
            p["id"]
            for p in _all(sb, "/api/profiles" + _q(filter=f"less-than(updated,{frac})", **{"page[size]": "100"}))
        }
        assert (prof["id"] in ids) is included
    ev = next(e for e in truth.records(micro.state, "events") if "." in e["attributes"]["datetime"])
    at = _ts(datetime.fromisoformat(ev["attributes"]["datetime"]).replace(microsecond=0).isoformat())
    for sb, included in ((micro, False), (second, True)):
        page = http_get(sb.base_url, "/api/events" + _q(filter=f"less-or-equal(datetime,{at})", sort="-datetime")).json
        assert (ev["id"] in {e["id"] for e in page["data"]}) is included


# 4. future filter values and the Date header ----------------------------------------------------------
def test_future_filter_datetimes_are_refused(make_sandbox):
    sb = make_sandbox(**tiny(refuse_future_filters=True))
    lenient = make_sandbox(**tiny())
    now = _now(sb)
    later = _ts((now + timedelta(seconds=1)).isoformat())
    for path in (f"/api/events{_q(filter=f'less-than(datetime,{later})')}",
                 f"/api/profiles{_q(filter=f'greater-than(updated,{later})')}",
                 f"/api/campaigns{_q(filter=f'equals(messages.channel,{chr(39)}email{chr(39)}),less-than(updated_at,{later})')}",
                 f"/api/events{_q(filter=f'less-than(timestamp,{int(now.timestamp()) + 1})')}"):  # fmt: skip
        resp = http_get(sb.base_url, path)
        assert resp.status == 400, path
        err = resp.json["errors"][0]
        assert err["code"] == "invalid" and err["detail"] == "End date may not be in the future"
        assert err["source"]["parameter"] == "filter"
        assert http_get(lenient.base_url, path).status == 200
    at_now = _ts(now.isoformat())
    assert http_get(sb.base_url, f"/api/events{_q(filter=f'less-than(datetime,{at_now})')}").status == 200


def test_every_answer_carries_the_sandbox_clock_as_date(make_sandbox):
    sb = make_sandbox(**tiny())
    for path, kw in (("/api/events", {}), ("/api/nope", {}), ("/api/events", {"key": None}), ("/__sandbox/clock", {})):
        resp = http_get(sb.base_url, path, **kw)
        assert parsedate_to_datetime(resp.headers["Date"]) == _now(sb), path
    http_post(sb.base_url, "/__sandbox/clock/advance?seconds=3600")
    assert parsedate_to_datetime(http_get(sb.base_url, "/api/tags").headers["Date"]) == datetime(
        2026, 7, 1, 1, tzinfo=UTC
    )


# 5. revisions -------------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    "revision,status,deprecated",
    [
        ("2026-07-15", 200, None), ("2026-10-15", 200, None), ("2026-03-01", 200, None), ("2025-07-15", 200, None),
        ("2025-01-15", 200, "Fri, 15 Jan 2027 00:00:00 GMT"), ("2024-08-20", 200, "Wed, 15 Jul 2026 00:00:00 GMT"),
        ("2024-06-15", 410, None), ("2023-02-22", 410, None), ("2023-02-21", 400, None), ("2026-08-01", 400, None),
        ("2027-01-15", 400, None), ("2026-7-15", 400, None),
    ],
)  # fmt: skip
def test_revision_lifecycle(make_sandbox, revision, status, deprecated):
    sb = make_sandbox(**tiny(revision_policy="lifecycle"))
    resp = http_get(sb.base_url, "/api/tags", revision=revision)
    assert resp.status == status, resp.body
    if status == 200:
        assert resp.json["data"] and set(resp.json["data"][0]["attributes"]) == {"name"}  # the 2026-07-15 shape
        assert resp.headers.get("Sunset") == deprecated
        assert resp.headers.get("Deprecation") == ("true" if deprecated else None)
    else:
        err = resp.json["errors"][0]
        assert err["code"] == ("gone" if status == 410 else "invalid") and err["source"]["parameter"] == "revision"
        assert err["status"] == status and err["id"] and err["title"] and err["detail"]


def test_deprecation_headers_can_be_switched_off_and_exact_policy_is_todays(make_sandbox):
    sb = make_sandbox(**tiny(revision_policy="lifecycle", deprecation_headers=False))
    resp = http_get(sb.base_url, "/api/tags", revision="2025-01-15")
    assert resp.status == 200 and "Deprecation" not in resp.headers and "Sunset" not in resp.headers
    exact = make_sandbox(**tiny())
    assert http_get(exact.base_url, "/api/tags", revision="2025-01-15").status == 400


# 6. public URL ------------------------------------------------------------------------------------------
def test_links_use_public_url_then_forwarded_headers_then_the_request(make_sandbox):
    public = make_sandbox(**tiny(public_url="https://klaviyo.example.test/"))
    doc = http_get(public.base_url, "/api/events?page%5Bsize%5D=2").json
    assert doc["links"]["next"].startswith("https://klaviyo.example.test/api/events?")
    assert doc["data"][0]["links"]["self"].startswith("https://klaviyo.example.test/api/events/")
    plain = make_sandbox(**tiny())
    fwd = {"X-Forwarded-Proto": "https", "X-Forwarded-Host": "proxy.example.test:8443"}
    doc = http_get(plain.base_url, "/api/profiles?page%5Bsize%5D=2", headers=fwd).json
    assert doc["links"]["next"].startswith("https://proxy.example.test:8443/api/profiles?")
    assert doc["links"]["self"] == "https://proxy.example.test:8443/api/profiles?page%5Bsize%5D=2"
    follow = http_get(
        plain.base_url, doc["links"]["next"].replace("https://proxy.example.test:8443", plain.base_url), headers=fwd
    )
    assert follow.status == 200 and follow.json["links"]["prev"].startswith("https://proxy.example.test:8443/")
    assert http_get(plain.base_url, "/api/tags").json["links"]["self"] == plain.base_url + "/api/tags"


# 7. keyset cursors --------------------------------------------------------------------------------------
def _scan_while_advancing(sb) -> tuple[list[str], set[str], set[str]]:
    """Scan profiles by `updated`, advancing the clock a day between pages: (ids seen, ids at start, ids touched)."""
    at_start = {p["id"]: p["attributes"]["updated"] for p in truth.records(sb.state, "profiles")}
    url, seen = "/api/profiles" + _q(sort="updated", **{"page[size]": "20"}), []
    while url:
        doc = http_get(sb.base_url, url).json
        seen += [p["id"] for p in doc["data"]]
        url = doc["links"]["next"]
        if url:
            http_post(sb.base_url, "/__sandbox/clock/advance?seconds=86400")
    at_end = {p["id"]: p["attributes"]["updated"] for p in truth.records(sb.state, "profiles")}
    touched = {i for i, u in at_start.items() if at_end[i] != u}
    return seen, set(at_start), touched


def test_keyset_cursor_scan_sees_every_record_while_the_data_moves(make_sandbox):
    seen, start, touched = _scan_while_advancing(make_sandbox(**tiny(cursor_mode="keyset")))
    assert touched and len(touched) < len(start)
    for rid in start - touched:
        assert seen.count(rid) == 1, rid
    assert all(seen.count(rid) >= 1 for rid in touched)
    assert any(seen.count(rid) > 1 for rid in touched)  # moved past the cursor and returned again


def test_offset_cursor_scan_skips_records_while_the_data_moves(make_sandbox):
    seen, start, touched = _scan_while_advancing(make_sandbox(**tiny(cursor_mode="offset")))
    assert set(start) - set(seen), "offset paging should have skipped a record"


@pytest.mark.parametrize("name,sort", [("profiles", "-updated"), ("profiles", "email"), ("flows", "-name"), ("tags", None),
                                       ("events", "-timestamp"), ("forms", "created_at")])  # fmt: skip
def test_keyset_pages_equal_one_big_page(sandbox, name, sort):
    params = {"sort": sort} if sort else {}
    top = str(endpoint_rules()[name].page_size["maximum"])
    big = http_get(sandbox.base_url, f"/api/{name}" + _q(**params, **{"page[size]": top})).json["data"]
    small = _all(sandbox, f"/api/{name}" + _q(**params, **{"page[size]": "7"}))[: len(big)]
    assert [r["id"] for r in small] == [r["id"] for r in big]


def _incremental_query(name: str) -> str:
    """The query an incremental client sends: a window on the table's cursor, sorted by it when allowed."""
    rules, cursor = endpoint_rules()[name], truth.CURSORS[name]
    params = {"filter": "equals(messages.channel,'email')"} if name == "campaigns" else {}
    ops = rules.filters.get(cursor or "", {}).get("single", [])
    if cursor and "greater-than" in ops and "less-than" in ops:
        window = f"greater-than({cursor},2025-01-01T00:00:00Z),less-than({cursor},2026-06-01T00:00:00Z)"
        params["filter"] = ",".join(filter(None, [params.get("filter"), window]))
    if cursor in rules.sorts:
        params["sort"] = cursor
    if rules.page_size:
        params["page[size]"] = str(max(rules.page_size["minimum"], rules.page_size["maximum"] // 7))
    return f"/api/{name}" + _q(**params)


def test_keyset_and_offset_cursors_page_static_data_identically(make_sandbox):
    keyed, offset = make_sandbox(**tiny(cursor_mode="keyset")), make_sandbox(**tiny(cursor_mode="offset"))
    for name in endpoint_rules():
        path = _incremental_query(name)
        a, b = _all(keyed, path), _all(offset, path)
        assert a and [r["id"] for r in a] == [r["id"] for r in b], name


def test_keyset_cursor_shape_prev_links_and_bad_cursors(sandbox):
    import base64

    doc = http_get(sandbox.base_url, "/api/profiles" + _q(sort="updated", **{"page[size]": "5"})).json
    cursor = doc["links"]["next"].split("page%5Bcursor%5D=")[1]
    raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)).decode()
    assert raw.startswith("next::key::") and doc["data"][-1]["id"] in raw
    second = http_get(sandbox.base_url, doc["links"]["next"]).json
    assert [p["id"] for p in http_get(sandbox.base_url, second["links"]["prev"]).json["data"]] == [
        p["id"] for p in doc["data"]
    ]
    other_sort = doc["links"]["next"].replace("sort=updated", "sort=created")
    for url in (other_sort, "/api/profiles?page%5Bcursor%5D=bm9wZQ"):
        resp = http_get(sandbox.base_url, url)
        assert resp.status == 400 and resp.json["errors"][0]["source"]["parameter"] == "page[cursor]"


# 8. no record after the sandbox's clock -----------------------------------------------------------------
def _times(node, out: list[str]) -> list[str]:
    if isinstance(node, dict):
        for v in node.values():
            _times(v, out)
    elif isinstance(node, list):
        for v in node:
            _times(v, out)
    elif isinstance(node, str) and ISO.match(node):
        out.append(node)
    return out


def test_no_endpoint_serves_a_time_after_the_clock(make_sandbox):
    sb = make_sandbox(**tiny())
    st = sb.state
    # the old cause: a record created exactly on the clock's second got sub-second parts in `updated`
    n0 = st.dataset.count("profiles")
    tl = st.dataset.timelines["profiles"]
    for i in [k for k in range(n0, n0 + 40) if tl.time_us(k) % 1_000_000 == 0][:8]:
        http_post(sb.base_url, f"/__sandbox/clock/advance?seconds={(tl.time_us(i) - st.dataset.now_us) // 1_000_000}")
        assert st.dataset.now_us == tl.time_us(i)
        newest = http_get(sb.base_url, "/api/profiles" + _q(sort="-updated", **{"page[size]": "1"})).json["data"][0]
        assert datetime.fromisoformat(newest["attributes"]["updated"]) <= _now(sb), newest
    now = _now(sb)
    http_post(sb.base_url, "/__sandbox/events/late?count=20&before_seconds=0")
    for name, rules in endpoint_rules().items():
        paths = [f"/api/{name}"]
        if name == "campaigns":
            paths = [f"/api/campaigns{_q(filter=f'equals(messages.channel,{ch!r}),equals(archived,{a})')}"
                     for ch in ("email", "sms", "mobile_push") for a in ("true", "false")]  # fmt: skip
        if name == "profiles":
            paths = ["/api/profiles" + _q(**{"additional-fields[profile]": "subscriptions,predictive_analytics"})]
        for path in paths:
            sep = "&" if "?" in path else "?"
            size = "" if rules.page_size is None else f"{sep}page%5Bsize%5D={rules.page_size['maximum']}"
            for rec in _all(sb, path + size):
                for t in _times(rec["attributes"], []):
                    assert datetime.fromisoformat(t.replace(" ", "T")) <= now, (name, rec["id"], t)


def test_html403_fault_can_repeat_in_bursts(make_sandbox):
    sb = make_sandbox(**tiny(faults="html403=0.2,html403_burst=3"))
    statuses = [http_get(sb.base_url, "/api/tags").status for _ in range(60)]
    runs = re.findall(r"4+", "".join("4" if s == 403 else "2" for s in statuses))
    assert len(runs) >= 2 and set(statuses) == {200, 403}
    assert all(len(r) % 3 == 0 for r in runs[:-1])  # each challenge lasts three requests (runs may chain)
    assert len(runs[-1]) % 3 == 0 or statuses[-1] == 403  # the last one may be cut short by the end


def test_cli_sandbox_accepts_the_new_flags():
    import subprocess
    import sys
    import time
    import urllib.request

    cmd = [sys.executable, "-m", "klaviyo_sandbox", "--scale", "tiny", "--rate-limits", "off",
           "--visibility-delay-s", "5", "--filter-precision", "second", "--public-url", "https://k.example.test"]  # fmt: skip
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        base = proc.stdout.readline().strip()
        assert base.startswith("http://"), proc.stderr.read()
        deadline = time.time() + 10
        while True:
            try:
                doc = http_get(base, "/api/tags").json
                break
            except OSError:
                assert time.time() < deadline
                time.sleep(0.1)
        assert doc["links"]["self"] == "https://k.example.test/api/tags"
        assert urllib.request.urlopen(base + "/__sandbox/clock").status == 200
    finally:
        proc.terminate()
        proc.wait(timeout=10)
