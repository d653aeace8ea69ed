"""The sandbox answers like Klaviyo over real HTTP: auth, revision, filters, sorting, paging, envelopes."""

from __future__ import annotations

from datetime import UTC, datetime
from urllib.parse import quote

import pytest

from klaviyo_sandbox import testing as truth
from klaviyo_sandbox.rules import endpoint_rules

from .conftest import KEY, http_get, http_post

RULES = endpoint_rules()


def _q(**params: str) -> str:
    return "?" + "&".join(f"{quote(k, safe='')}={quote(v, safe='')}" for k, v in params.items())


def _path(name: str) -> str:
    return f"/api/{name}" + (_q(filter="equals(messages.channel,'email')") if name == "campaigns" else "")


def _error(resp, status: int, code: str):
    assert resp.status == status, resp.body
    err = resp.json["errors"][0]
    assert err["code"] == code
    assert {"id", "code", "title", "detail"} <= set(err)
    return err


def test_auth_missing_header_is_not_authenticated(sandbox):
    err = _error(http_get(sandbox.base_url, "/api/events", key=None), 401, "not_authenticated")
    assert "Klaviyo-API-Key" in err["detail"]


def test_auth_wrong_scheme_is_not_authenticated(sandbox):
    resp = http_get(sandbox.base_url, "/api/events", key=None, headers={"Authorization": f"Bearer {KEY}"})
    _error(resp, 401, "not_authenticated")


def test_auth_malformed_key_fails(sandbox):
    _error(http_get(sandbox.base_url, "/api/events", key="pk_short"), 401, "authentication_failed")


def test_key_without_scope_gets_permission_denied(make_sandbox):
    other = "pk_" + "b" * 34
    sb = make_sandbox(scale="tiny", rate_limits="off", keys={KEY: ["events:read"], other: ["profiles:read"]})
    assert http_get(sb.base_url, "/api/events").status == 200
    _error(http_get(sb.base_url, "/api/profiles"), 403, "permission_denied")
    _error(http_get(sb.base_url, "/api/events", key="pk_" + "c" * 34), 401, "authentication_failed")
    assert http_get(sb.base_url, "/api/profiles", key=other).status == 200


@pytest.mark.parametrize("revision", [None, "yesterday", "2022-01-01"])
def test_revision_is_required_and_validated(sandbox, revision):
    err = _error(http_get(sandbox.base_url, "/api/events", revision=revision), 400, "invalid")
    assert err["source"]["parameter"] == "revision"


def test_a_retired_revision_is_gone(sandbox):
    assert http_get(sandbox.base_url, "/api/events", revision="2023-02-22").status == 410


def test_responses_are_jsonapi(sandbox):
    resp = http_get(sandbox.base_url, "/api/events" + _q(**{"page[size]": "2"}))
    assert resp.status == 200
    assert resp.headers["Content-Type"].startswith("application/vnd.api+json")
    doc = resp.json
    ev = doc["data"][0]
    assert ev["type"] == "event" and ev["id"]
    assert set(ev["attributes"]) == {"timestamp", "event_properties", "datetime", "uuid"}
    assert ev["links"]["self"].startswith(sandbox.base_url + "/api/events/")
    assert ev["relationships"]["profile"]["data"]["type"] == "profile"
    assert doc["links"]["prev"] is None and "page%5Bcursor%5D=" in doc["links"]["next"]
    assert "RateLimit-Limit" in resp.headers and "RateLimit-Remaining" in resp.headers


@pytest.mark.parametrize(
    "name,flt,fragment",
    [
        ("events", "equals(nope,'x')", "'nope' is not a valid field"),
        ("profiles", "greater-or-equal(updated,2024-01-01T00:00:00Z)", "not a valid operator"),
        ("lists", "less-than(updated,2024-01-01T00:00:00Z)", "not a valid operator"),
        ("events", "greater-than(datetime,'2024-01-01T00:00:00Z')", "unquoted datetime"),
        ("profiles", "equals(email,sarah@example.com)", "quoted"),
        ("events", "greater-than(datetime,2024-01-01T00:00:00Z", "Invalid filter"),
        ("campaigns", "equals(archived,false)", "channel filter is required"),
        ("campaigns", "equals(messages.channel,'fax')", "not a valid channel"),
        ("coupons", "equals(id,'x')", "not a valid field"),
    ],
)
def test_bad_filters_are_400_invalid_naming_filter(sandbox, name, flt, fragment):
    err = _error(http_get(sandbox.base_url, f"/api/{name}" + _q(filter=flt)), 400, "invalid")
    assert err["source"]["parameter"] == "filter"
    assert fragment in err["detail"]


def test_sort_must_be_allowed(sandbox):
    err = _error(http_get(sandbox.base_url, "/api/events" + _q(sort="updated")), 400, "invalid")
    assert err["source"]["parameter"] == "sort"
    assert http_get(sandbox.base_url, "/api/events" + _q(sort="-datetime")).status == 200


@pytest.mark.parametrize("name", sorted(RULES))
def test_page_size_limits_follow_the_digest(sandbox, name):
    rules = RULES[name]
    base = _path(name)
    sep = "&" if "?" in base else "?"
    if rules.page_size is None:  # metrics: fixed pages, no page[size]
        err = _error(http_get(sandbox.base_url, base + sep + "page%5Bsize%5D=10"), 400, "invalid")
        assert err["source"]["parameter"] == "page[size]"
        return
    hi = rules.page_size["maximum"]
    assert http_get(sandbox.base_url, f"{base}{sep}page%5Bsize%5D={hi}").status == 200
    for bad in (hi + 1, 0):
        err = _error(http_get(sandbox.base_url, f"{base}{sep}page%5Bsize%5D={bad}"), 400, "invalid")
        assert err["source"]["parameter"] == "page[size]"


def test_unknown_parameter_include_and_fields_are_rejected(sandbox):
    assert _error(http_get(sandbox.base_url, "/api/events?foo=1"), 400, "invalid")["source"]["parameter"] == "foo"
    assert (
        _error(http_get(sandbox.base_url, "/api/events" + _q(include="lists")), 400, "invalid")["source"]["parameter"]
        == "include"
    )
    resp = http_get(sandbox.base_url, "/api/events" + _q(**{"fields[event]": "nope"}))
    assert _error(resp, 400, "invalid")["source"]["parameter"] == "fields[event]"


def test_paging_a_filtered_range_returns_exactly_its_records_once(sandbox):
    start, end = datetime(2025, 1, 1, tzinfo=UTC), datetime(2025, 7, 1, tzinfo=UTC)
    flt = "greater-or-equal(datetime,2025-01-01T00:00:00Z),less-than(datetime,2025-07-01T00:00:00Z)"
    url = "/api/events" + _q(filter=flt, sort="datetime", **{"page[size]": "37"})
    seen, pages = [], 0
    while url:
        doc = http_get(sandbox.base_url, url).json
        seen += [e["id"] for e in doc["data"]]
        url = doc["links"]["next"]
        pages += 1
        if url:
            assert "filter=" in url and "page%5Bsize%5D=37" in url and url.startswith(sandbox.base_url)
    expected = [e["id"] for e in truth.records(sandbox.state, "events", start, end)]
    assert seen == expected and len(seen) == len(set(seen)) and pages > 2


def test_profiles_updated_filter_and_sort(sandbox):
    flt = "greater-than(updated,2025-06-01T00:00:00Z)"
    doc = http_get(sandbox.base_url, "/api/profiles" + _q(filter=flt, sort="-updated", **{"page[size]": "100"})).json
    times = [p["attributes"]["updated"] for p in doc["data"]]
    assert times == sorted(times, reverse=True)
    cutoff = datetime(2025, 6, 1, tzinfo=UTC)
    assert all(datetime.fromisoformat(t) > cutoff for t in times)
    expected = {
        p["id"]
        for p in truth.records(sandbox.state, "profiles", cutoff)
        if datetime.fromisoformat(p["attributes"]["updated"]) > cutoff
    }
    assert {p["id"] for p in doc["data"]} <= expected


def test_campaigns_exclude_archived_unless_asked(sandbox):
    active = http_get(sandbox.base_url, "/api/campaigns" + _q(filter="equals(messages.channel,'sms')")).json["data"]
    archived = http_get(
        sandbox.base_url, "/api/campaigns" + _q(filter="equals(messages.channel,'sms'),equals(archived,true)")
    ).json["data"]
    assert active and archived
    assert not any(c["attributes"]["archived"] for c in active)
    assert all(c["attributes"]["archived"] for c in archived)


def test_include_sparse_fields_and_additional_fields(sandbox):
    doc = http_get(
        sandbox.base_url,
        "/api/events" + _q(include="metric,profile", **{"fields[event]": "datetime", "page[size]": "5"}),
    ).json
    assert all(set(e["attributes"]) == {"datetime"} for e in doc["data"])
    types = {(i["type"], i["id"]) for i in doc["included"]}
    for e in doc["data"]:
        assert ("metric", e["relationships"]["metric"]["data"]["id"]) in types
        assert ("profile", e["relationships"]["profile"]["data"]["id"]) in types
    assert len(types) == len(doc["included"])  # de-duplicated
    prof = http_get(
        sandbox.base_url,
        "/api/profiles"
        + _q(**{"additional-fields[profile]": "subscriptions", "fields[profile]": "email,location.city"}),
    ).json["data"][0]
    assert set(prof["attributes"]) <= {"email", "location", "subscriptions"} and "subscriptions" in prof["attributes"]
    if prof["attributes"].get("location"):
        assert set(prof["attributes"]["location"]) == {"city"}
    plain = http_get(sandbox.base_url, "/api/profiles").json["data"][0]
    assert "subscriptions" not in plain["attributes"]


def test_relationships_agree_across_tables(sandbox):
    events = truth.records(sandbox.state, "events")
    profiles = {p["id"] for p in truth.records(sandbox.state, "profiles")}
    metrics = {m["id"] for m in truth.records(sandbox.state, "metrics")}
    assert all(e["relationships"]["profile"]["data"]["id"] in profiles for e in events)
    assert all(e["relationships"]["metric"]["data"]["id"] in metrics for e in events)


def test_timestamps_have_klaviyo_form_some_with_microseconds(sandbox):
    stamps = [e["attributes"]["datetime"] for e in truth.records(sandbox.state, "events")]
    assert all(s.endswith("+00:00") and s[10] == "T" for s in stamps)
    assert any("." in s for s in stamps) and any("." not in s for s in stamps)


def test_data_is_deterministic_from_seed(make_sandbox):
    a, b, c = (make_sandbox(scale="tiny", rate_limits="off", seed=s) for s in (7, 7, 8))
    path = "/api/profiles?page%5Bsize%5D=50"
    assert http_get(a.base_url, path).json["data"] == [
        {
            **p,
            "links": {"self": p["links"]["self"].replace(b.base_url, a.base_url)},
            "relationships": {
                k: {
                    kk: ({x: y.replace(b.base_url, a.base_url) for x, y in vv.items()} if kk == "links" else vv)
                    for kk, vv in v.items()
                }
                for k, v in p["relationships"].items()
            },
        }
        for p in http_get(b.base_url, path).json["data"]
    ]
    assert http_get(a.base_url, path).json["data"][0]["id"] != http_get(c.base_url, path).json["data"][0]["id"]


def test_clock_advance_adds_events_and_touches_records(make_sandbox):
    sb = make_sandbox(scale="tiny", rate_limits="off")
    before_events = len(truth.records(sb.state, "events"))
    before = {p["id"]: p["attributes"]["updated"] for p in truth.records(sb.state, "profiles")}
    out = http_post(sb.base_url, "/__sandbox/clock/advance?seconds=86400")
    assert out["now"].startswith("2026-07-02") and out["touched"]["profiles"] >= 1
    after = {p["id"]: p["attributes"]["updated"] for p in truth.records(sb.state, "profiles")}
    changed = [i for i in before if after[i] != before[i]]
    assert changed and all(after[i] > before[i] for i in changed)
    assert len(truth.records(sb.state, "events")) > before_events
    new_ids = set(after) - set(before)
    assert new_ids and all(after[i] > max(before.values()) for i in new_ids)  # created after the old clock


def test_ten_million_events_without_holding_them(make_sandbox):
    import resource

    sb = make_sandbox(scale="tiny,events=10000000", rate_limits="off")
    rss_before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    flt = "greater-or-equal(datetime,2026-06-30T00:00:00Z)"
    doc = http_get(sb.base_url, "/api/events" + _q(filter=flt, **{"page[size]": "1000"})).json
    assert len(doc["data"]) == 1000
    assert sb.state.events.count() >= 9_999_000
    last = http_get(sb.base_url, "/api/events" + _q(sort="-datetime", **{"page[size]": "1"})).json["data"][0]
    assert last["attributes"]["datetime"].startswith("2026-0")
    grown_kb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - rss_before
    assert grown_kb < 200_000


def test_rate_limits_answer_429_with_retry_after(make_sandbox):
    sb = make_sandbox(scale="tiny", rate_limits="x0.01")  # flows: burst 1/s, steady 1/min
    first = http_get(sb.base_url, "/api/flows")
    assert first.status == 200 and first.headers["RateLimit-Limit"] == "1"
    assert first.headers["RateLimit-Remaining"] == "0"
    second = http_get(sb.base_url, "/api/flows")
    err = _error(second, 429, "throttled")
    assert int(second.headers["Retry-After"]) >= 1 and "RateLimit-Limit" not in second.headers
    assert "Expected available in" in err["detail"]
    assert http_get(sb.base_url, "/api/events").status == 200  # another bucket


def _first(r) -> dict:
    """The attributes of a page's first record (where the data faults strike)."""
    return r.json["data"][0]["attributes"]


@pytest.mark.parametrize(
    "fault,check",
    [
        ("error", lambda r: r.status in (500, 502, 503) and r.json["errors"][0]["code"] == "error"),
        ("throttle", lambda r: r.status == 429 and "Retry-After" not in r.headers),
        ("html403", lambda r: r.status == 403 and r.headers["Content-Type"].startswith("text/html")),
        ("html200", lambda r: r.status == 200 and r.body.startswith(b"<html>")),
        ("truncated", lambda r: r.status == 200 and not r.body.endswith(b"}")),
        (
            "nocursor",
            lambda r: "datetime" not in _first(r) and all("datetime" in e["attributes"] for e in r.json["data"][1:]),
        ),
        ("nul", lambda r: _first(r)["uuid"][1] == "\x00" and _first(r)["event_properties"]["nul"] == "x\x00y"),
        (
            "oddtype",
            lambda r: (
                _first(r)["uuid"] == 123456789012345678901234567890
                and _first(r)["event_properties"]["big"] == 123456789012345678901234567890
            ),
        ),
        ("oddnumber", lambda r: _first(r)["timestamp"] == 123456789012345678901234567890),
        ("deep", lambda r: b'"event_properties":' + b'{"d":' * 1100 + b"1" + b"}" * 1100 in r.body),
    ],
)
def test_faults_are_injected(make_sandbox, fault, check):
    sb = make_sandbox(scale="tiny", rate_limits="off", faults=f"{fault}=1")
    assert check(http_get(sb.base_url, "/api/events"))


def test_dropped_connection_fault(make_sandbox):
    import http.client
    import urllib.error

    sb = make_sandbox(scale="tiny", rate_limits="off", faults="drop=1")
    with pytest.raises((http.client.RemoteDisconnected, ConnectionError, urllib.error.URLError)):
        http_get(sb.base_url, "/api/events")


def test_faults_can_be_switched_at_runtime(make_sandbox):
    sb = make_sandbox(scale="tiny", rate_limits="off")
    assert http_post(sb.base_url, "/__sandbox/faults?spec=error%3D1")["faults"] == {"error": 1.0}
    assert http_get(sb.base_url, "/api/tags").status >= 500
    http_post(sb.base_url, "/__sandbox/faults?spec=")
    assert http_get(sb.base_url, "/api/tags").status == 200


def test_a_record_changes_only_when_its_update_time_does(make_sandbox):
    sb = make_sandbox(scale="tiny", rate_limits="off")
    names = [n for n in endpoint_rules() if n != "events"]  # the list endpoints (child records repeat ids)
    key = lambda r: (r.get("parent_id"), r["id"])  # noqa: E731 - a membership's id is its profile's, unique per parent
    before = {n: {key(r): r for r in truth.records(sb.state, n)} for n in names}
    http_post(sb.base_url, "/__sandbox/clock/advance?seconds=5184000")  # 60 days: new records of every kind
    for n in names:
        cursor = truth.CURSORS[n]
        for r in truth.records(sb.state, n):
            old = before[n].get(key(r))
            if old is not None and (cursor is None or old["attributes"][cursor] == r["attributes"][cursor]):
                assert old == r, f"{n} {r['id']} changed without a newer {cursor}"
