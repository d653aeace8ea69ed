"""Table families beyond the 15 list endpoints: child tables (flow actions, flow messages, list and segment
memberships, read once per parent), further list endpoints, tables read from a parent's included resources,
relationship endpoints, event attributions riding along with events, and the opt-in columns.

Every row and column equals the sandbox's truth after a backfill and after the clock moves; the specs agree
with Klaviyo's OpenAPI file itself; the parents are listed cheaply and each parent is asked once per run.
"""

from __future__ import annotations

import json
from datetime import timedelta

import pytest

from klaviyo_sandbox import testing as truth
from omniload.cli import main
from omniload.sources.klaviyo.children import for_kind
from omniload.sources.klaviyo.tables import TABLES
from omniload.sources.klaviyo.tables.further_lists import COUPON_BATCH
from omniload.sources.klaviyo.tables.further_lists import MORE as MORE_SPECS
from omniload.sources.klaviyo.tables.included import INCLUDED as INCLUDED_SPECS
from omniload.sources.klaviyo.tables.relationships import RELATIONSHIPS

from .conftest import http_get, http_post, source_uri
from .helpers import assert_equals_truth, ingest, rows
from .reference import OPENAPI_NAME, deref, flat, load

CHILDREN = [t.name for t in RELATIONSHIPS if t.cursor]  # the relationship endpoints (no cursor): below
OPENAPI = load(OPENAPI_NAME)


def _requests(sb, endpoint: str) -> list[str]:
    return [query for _, name, query in sb.state.log if name == endpoint]


def test_child_tables_equal_truth_after_backfill_and_after_clock_advance(make_sandbox, tmp_path):
    sb = make_sandbox(scale="tiny", rate_limits="off", seed=5)
    db = str(tmp_path / "k.duckdb")
    assert ingest(sb, ",".join(CHILDREN), db) == 0
    first = {}
    for name in CHILDREN:
        first[name] = assert_equals_truth(db, sb, name)
        assert first[name], f"{name}: nothing loaded"
    http_post(sb.base_url, "/__sandbox/clock/advance?seconds=864000")  # ten days: new memberships, touched actions
    assert ingest(sb, ",".join(CHILDREN), db) == 0
    for name in CHILDREN:
        spec = TABLES[name]
        got = assert_equals_truth(db, sb, name)
        prev = max(r[spec.cursor] for r in first[name].values())
        assert any(r[spec.cursor] > prev for r in got.values()), f"{name}: nothing new after the clock moved"
        loads = sorted({r["_dlt_load_id"] for r in got.values()})
        second = {k for k, r in got.items() if r["_dlt_load_id"] == loads[-1]}
        assert second == {k for k, r in got.items() if r[spec.cursor] >= prev}, (
            f"{name}: the second run reloaded old rows"
        )


def test_memberships_keep_only_the_profile_id_and_joined_group_at(sandbox, tmp_path):
    db = str(tmp_path / "k.duckdb")
    assert ingest(sandbox, "list-memberships", db) == 0
    got = rows(db, "list_memberships")
    assert {c for c in next(iter(got.values())) if not c.startswith("_dlt")} == {
        "list_id",
        "profile_id",
        "joined_group_at",
    }
    profiles = {p["id"] for p in truth.records(sandbox.state, "profiles")}
    assert {k[1] for k in got} <= profiles and len({k[0] for k in got}) > 1


def test_parents_are_listed_cheaply_and_each_is_asked_once(make_sandbox, tmp_path):
    sb = make_sandbox(scale="tiny", rate_limits="off")
    db = str(tmp_path / "k.duckdb")
    assert ingest(sb, "flow-actions", db) == 0
    flows = len(truth.records(sb.state, "flows"))
    listing = _requests(sb, "flows")
    assert listing and all("fields[flow]=id" in q and "page[size]=50" in q for q in listing)
    assert len(_requests(sb, "flow-actions")) == flows  # tiny: one page per flow
    sb.state.log.clear()
    assert ingest(sb, "flow-actions", db, "--reconcile", "none") == 0  # nothing new: one filtered request per parent
    asked = _requests(sb, "flow-actions")
    assert len(asked) == flows and all("greater-or-equal(updated," in q for q in asked)


def test_flow_messages_list_their_parents_through_flows(make_sandbox, tmp_path):
    sb = make_sandbox(scale="tiny", rate_limits="off")
    db = str(tmp_path / "k.duckdb")
    assert ingest(sb, "flow-messages", db) == 0
    assert_equals_truth(db, sb, "flow-messages")
    actions = len(truth.records(sb.state, "flow-actions"))
    assert all("fields[flow-action]=id" in q for q in _requests(sb, "flow-actions"))
    assert len(_requests(sb, "flow-messages")) == actions


def test_children_are_read_while_their_parents_are_still_listed(make_sandbox, tmp_path):
    # real limits: the flow actions (the parents, listed per flow) and the flow messages have buckets of their own
    sb = make_sandbox(scale="tiny", latency_ms=50, seed=3)
    db = str(tmp_path / "k.duckdb")
    assert ingest(sb, "flow-messages", db) == 0
    assert_equals_truth(db, sb, "flow-messages")
    listed = [t for t, name, _ in sb.state.log if name == "flow-actions"]
    children = [t for t, name, _ in sb.state.log if name == "flow-messages"]
    assert len(listed) == len(truth.records(sb.state, "flows")) > 3 and children
    assert min(children) < max(listed)  # not every parent listed first: the two buckets are used side by side


def _operation(spec) -> tuple[dict, dict]:
    """The spec's OpenAPI operation and its parameters by name; its rate limits and largest page are the spec's."""
    op = OPENAPI["paths"][spec.path]["get"]
    rate = op["x-klaviyo-ratelimit"]
    assert (spec.burst, spec.steady) == (int(rate["burst"].split("/")[0]), int(rate["steady"].split("/")[0]))
    params = {p["name"]: p for p in op["parameters"] if "name" in p}
    assert spec.page_size == (params["page[size]"]["schema"]["maximum"] if "page[size]" in params else None)
    return op, params


@pytest.mark.parametrize("name", CHILDREN)
def test_spec_agrees_with_the_openapi_file(name):
    spec = TABLES[name]
    op, params = _operation(spec)
    assert {spec.sort, f"-{spec.sort}"} <= set(params["sort"]["schema"]["enum"])
    ops = op["x-klaviyo-filters"][spec.cursor]["operators"]["single"]
    assert spec.lower_op in ops and spec.upper_op in ops
    assert spec.rate_bucket == name and spec.parent is not None


def test_sandbox_child_endpoints(sandbox):
    flow = truth.records(sandbox.state, "flow-actions")[0]["parent_id"]
    ok = http_get(sandbox.base_url, f"/api/flows/{flow}/flow-actions?page%5Bsize%5D=1&sort=updated")
    assert ok.status == 200 and ok.json["data"][0]["type"] == "flow-action"
    nxt = ok.json["links"]["next"]
    assert nxt is None or f"/api/flows/{flow}/flow-actions?" in nxt
    assert http_get(sandbox.base_url, "/api/flows/nope/flow-actions").status == 404
    bad = http_get(sandbox.base_url, f"/api/flows/{flow}/flow-actions?page%5Bsize%5D=51")
    assert bad.status == 400
    lst = truth.records(sandbox.state, "list-memberships")[0]["parent_id"]
    page = http_get(sandbox.base_url, f"/api/lists/{lst}/profiles?fields%5Bprofile%5D=joined_group_at").json
    assert page["data"] and all(set(p["attributes"]) == {"joined_group_at"} for p in page["data"])


def test_child_resources_scale_with_the_sandbox_scale():
    from klaviyo_sandbox.resources import SCALES

    for name in ("flow-actions", "flow-messages", "list-memberships", "segment-memberships"):
        assert SCALES["tiny"][name] < SCALES["small"][name] < SCALES["medium"][name] < SCALES["large"][name]


# -- further list endpoints (tables/further_lists.py) ------------------------------------------------------------------

MORE = [t.name for t in MORE_SPECS]


def test_more_tables_equal_truth_after_backfill_and_after_clock_advance(make_sandbox, tmp_path):
    sb = make_sandbox(scale="tiny", rate_limits="off", seed=7)
    db = str(tmp_path / "k.duckdb")
    assert ingest(sb, ",".join(MORE), db) == 0
    first = {name: assert_equals_truth(db, sb, name) for name in MORE}
    assert all(first.values()), [n for n, got in first.items() if not got]
    assert len(first["accounts"]) == 1  # the key's own account
    http_post(sb.base_url, "/__sandbox/clock/advance?seconds=8640000")  # 100 days: new records, touched ones
    assert ingest(sb, ",".join(MORE), db) == 0
    for name in MORE:
        got = assert_equals_truth(db, sb, name)
        spec = TABLES[name]
        if spec.cursor:  # merged: the records touched by the clock came in the second load, the others stayed
            prev = max(r[spec.cursor] for r in first[name].values())
            assert any(r[spec.cursor] > prev for r in got.values()), f"{name}: nothing new after the clock moved"
            loads = sorted({r["_dlt_load_id"] for r in got.values()})
            assert {k for k, r in got.items() if r["_dlt_load_id"] == loads[-1]} >= {
                k for k, r in got.items() if r[spec.cursor] >= prev}  # fmt: skip


def test_coupon_codes_are_read_a_batch_of_coupons_at_a_time(make_sandbox, tmp_path):
    sb = make_sandbox(scale="small", rate_limits="off")
    db = str(tmp_path / "k.duckdb")
    assert ingest(sb, "coupon-codes", db) == 0
    assert_equals_truth(db, sb, "coupon-codes")
    coupons = len(truth.records(sb.state, "coupons"))
    asked = [q for q in _requests(sb, "coupon-codes") if "page%5Bcursor%5D" not in q and "page[cursor]" not in q]
    assert len(asked) == -(-coupons // COUPON_BATCH) > 1  # one query per batch of coupons
    assert all("any%28coupon.id" in q or "any(coupon.id" in q for q in asked)
    assert all("fields%5Bcoupon%5D=id" in q or "fields[coupon]=id" in q for q in _requests(sb, "coupons"))
    assert http_get(sb.base_url, "/api/coupon-codes").status == 400  # the filter is required, as in Klaviyo


@pytest.mark.parametrize("name", MORE)
def test_more_specs_agree_with_the_openapi_file(name):
    spec = TABLES[name]
    op, params = _operation(spec)
    filters = op.get("x-klaviyo-filters") or {}
    if spec.cursor:
        ops = (filters.get(spec.cursor) or {}).get("operators", {}).get("single", [])
        assert (spec.lower_op in ops) if spec.lower_op else not {"greater-or-equal", "greater-than"} & set(ops)
        assert spec.sort is None or {spec.sort, f"-{spec.sort}"} <= set(params["sort"]["schema"]["enum"])
    else:  # replaced whole: no time attribute the API filters on and that moves with a change
        assert spec.strategy == "replace"
    if spec.parent is not None and spec.parent.filter:
        assert params["filter"]["required"] and spec.parent.filter in filters
    assert name in TABLES and TABLES[name].info.in_all


def test_more_tables_reconcile_deletes_or_are_replaced_whole(make_sandbox, tmp_path):
    from .test_deletes import assert_converged, delete, marks

    sb = make_sandbox(scale="tiny", rate_limits="off", seed=8)
    db = str(tmp_path / "k.duckdb")
    merged = [n for n in MORE if TABLES[n].cursor]
    assert ingest(sb, ",".join(MORE) + ",coupons", db) == 0
    loaded = {n: rows(db, n.replace("-", "_")) for n in merged}
    gone = {n: set(delete(sb, n, 1)) for n in ("reviews", "universal-content", "custom-metrics")}
    gone_coupon = delete(sb, "coupons", 1)[0]
    assert ingest(sb, ",".join(MORE) + ",coupons", db, "--reconcile", ",".join(merged)) == 0
    for name in merged:  # scanned by id (fields[<type>]=id), the deleted ones marked
        assert_converged(db, sb, name)
    for name, ids in gone.items():  # (a record stamped at the first run's end was not loaded then: not marked)
        marked = {k for k, at in marks(db, name.replace("-", "_")).items() if at}
        assert marked == ids & set(loaded[name]) and (marked or name == "custom-metrics")
    assert_equals_truth(db, sb, "coupon-codes")  # replaced whole: the deleted coupon's codes are gone
    assert gone_coupon not in {r["coupon_id"] for r in rows(db, "coupon_codes").values()}


# -- tables read from a parent's included resources (tables/included.py) -----------------------------------------

INCLUDES = [t.name for t in INCLUDED_SPECS if not t.cursor]  # event attributions: below


def test_include_tables_equal_truth_after_backfill_and_after_clock_advance(make_sandbox, tmp_path):
    sb = make_sandbox(scale="tiny", rate_limits="off", seed=9)
    db = str(tmp_path / "k.duckdb")
    assert ingest(sb, ",".join(INCLUDES), db) == 0
    for name in INCLUDES:
        got = assert_equals_truth(db, sb, name)
        assert (
            len(got) > len({r[TABLES[name].to_one[0] + "_id"] for r in got.values()}) > 1
        )  # several parents, some with two
    asked = _requests(sb, "campaigns")
    assert len(asked) == 2 * 6 and all(
        "fields[campaign]=id" in q for q in asked
    )  # two tables x six partitions, one page
    assert {q.split("include=")[1].split("&")[0] for q in asked} == {"campaign-messages", "tags"}
    assert all("include=tags" in q and "fields[flow]=id" in q for q in _requests(sb, "flows"))
    http_post(sb.base_url, "/__sandbox/clock/advance?seconds=8640000")  # new campaigns and flows, touched campaigns
    assert ingest(sb, ",".join(INCLUDES), db) == 0
    for name in INCLUDES:
        assert_equals_truth(db, sb, name)


@pytest.mark.parametrize("name", INCLUDES)
def test_include_specs_agree_with_the_openapi_file(name):
    spec = TABLES[name]
    parent = TABLES[{"campaign": "campaigns", "flow": "flows"}[spec.to_one[0]]]
    op, params = _operation(spec)
    assert spec.include in params["include"]["schema"]["items"]["enum"]
    assert spec.extra_params[f"fields[{parent.resource_type}]"] == "id" and spec.rate_bucket == parent.rate_bucket
    included = {_ref_type(r) for r in _included_types(op)}
    assert spec.resource_type in included and spec.strategy == "replace" and spec.info.in_all


def _included_types(op) -> list[str]:
    body = flat(OPENAPI, op["responses"]["200"]["content"]["application/vnd.api+json"]["schema"])
    return [r["$ref"] for r in body["properties"]["included"]["items"]["oneOf"]]


def _ref_type(ref: str) -> str:
    node = flat(OPENAPI, {"$ref": ref})
    return deref(OPENAPI, node["properties"]["type"])["enum"][0]


# -- relationship endpoints: resource identifiers only ------------------------------------------------------------

LINKS = ["tag-links", "catalog-item-categories"]


def test_relationship_tables_equal_truth_after_backfill_and_after_clock_advance(make_sandbox, tmp_path):
    sb = make_sandbox(scale="tiny,tags=8", rate_limits="off", seed=10)  # the client paces 3/s per kind: few tags
    db = str(tmp_path / "k.duckdb")
    assert ingest(sb, ",".join(LINKS), db) == 0
    links = assert_equals_truth(db, sb, "tag-links")
    assert {k[1] for k in links} == {"campaigns", "flows", "lists", "segments"}
    assert len(assert_equals_truth(db, sb, "catalog-item-categories")) == len(truth.records(sb.state, "catalog-items"))
    tags = len(truth.records(sb.state, "tags"))
    for kind in ("campaigns", "flows", "lists", "segments"):  # one request per tag and kind, no paging parameters
        asked = _requests(sb, f"tag-links:{kind}")
        assert len(asked) == tags and not any("page" in q for q in asked)
    http_post(sb.base_url, "/__sandbox/clock/advance?seconds=8640000")  # new tags, campaigns, items: new links
    assert ingest(sb, ",".join(LINKS), db) == 0
    assert len(assert_equals_truth(db, sb, "tag-links")) > len(links)
    assert_equals_truth(db, sb, "catalog-item-categories")


@pytest.mark.parametrize("name", LINKS)
def test_relationship_specs_agree_with_the_openapi_file(name):
    spec = TABLES[name]
    for kind in spec.kinds or ("",):
        op, params = _operation(for_kind(spec, kind) if kind else spec)
        item = OPENAPI["components"]["schemas"][op["responses"]["200"]["content"]["application/vnd.api+json"]["schema"]
                                               ["$ref"].split("/")[-1]]["properties"]["data"]["items"]  # fmt: skip
        assert "attributes" not in _resolve(item).get("properties", {})  # identifiers only
    assert spec.columns == {} and spec.strategy == "replace" and spec.parent is not None and spec.info.in_all


def test_sandbox_relationship_endpoints(sandbox):
    tag = next(r for r in truth.records(sandbox.state, "tag-links"))
    page = http_get(sandbox.base_url, f"/api/tags/{tag['parent_id']}/relationships/{tag['kind']}").json
    assert {"type": tag["kind"].rstrip("s"), "id": tag["id"]} in page["data"] and page["links"]["next"] is None
    assert all(set(r) == {"type", "id"} for r in page["data"])
    assert http_get(sandbox.base_url, "/api/tags/nope/relationships/flows").status == 404
    assert (
        http_get(sandbox.base_url, f"/api/tags/{tag['parent_id']}/relationships/flows?page%5Bsize%5D=5").status == 400
    )


def _resolve(node: dict) -> dict:
    return flat(OPENAPI, node)


# -- event attributions (include=attributions on /api/events), riding along with events ---------------------------


def _own_reads(sb) -> list[str]:
    """Requests the event_attributions table made itself (its sparse fieldset; the events table asks for none)."""
    return [q for q in _requests(sb, "events") if "fields[event]=datetime" in q]


def test_event_attributions_ride_along_with_events_and_equal_truth(make_sandbox, tmp_path):
    sb = make_sandbox(scale="tiny", rate_limits="off", seed=11)
    db = str(tmp_path / "k.duckdb")
    assert ingest(sb, "events,event_attributions", db) == 0
    first = assert_equals_truth(db, sb, "event_attributions")
    assert_equals_truth(db, sb, "events")
    assert len(first) > 10 and {r["campaign_id"] is None for r in first.values()} == {True, False}
    asked = _requests(sb, "events")
    assert asked and all("include=attributions" in q for q in asked) and not _own_reads(sb)
    http_post(sb.base_url, "/__sandbox/clock/advance?seconds=864000")  # ten days of new events
    sb.state.log.clear()
    assert ingest(sb, "events,event_attributions", db) == 0
    got = assert_equals_truth(db, sb, "event_attributions")
    assert len(got) > len(first) and not _own_reads(sb)
    loads = sorted({r["_dlt_load_id"] for r in got.values()})
    assert len(loads) == 2 and min(r["datetime"] for r in got.values() if r["_dlt_load_id"] == loads[-1]) >= max(
        r["datetime"] for r in first.values()
    ) - timedelta(days=7)  # fmt: skip  (the deep lookback, due after ten days, not the whole history)


def test_event_attributions_alone_read_events_with_a_sparse_fieldset(make_sandbox, tmp_path):
    sb = make_sandbox(scale="tiny", rate_limits="off", seed=11)
    db = str(tmp_path / "k.duckdb")
    assert ingest(sb, "event_attributions", db) == 0
    assert_equals_truth(db, sb, "event_attributions")
    assert _own_reads(sb) and len(_own_reads(sb)) == len(_requests(sb, "events"))
    http_post(sb.base_url, "/__sandbox/clock/advance?seconds=864000")
    assert ingest(sb, "event_attributions,events", db) == 0  # named first: it cannot ride, and reads on its own
    assert_equals_truth(db, sb, "event_attributions")
    assert_equals_truth(db, sb, "events")


def test_event_attributions_agree_with_the_events_the_reports_count(make_sandbox, tmp_path):
    sb = make_sandbox(scale="tiny", rate_limits="off", seed=12)
    db = str(tmp_path / "k.duckdb")
    assert ingest(sb, "all", db) == 0
    events = rows(db, "events")
    attributed = {
        k: json.loads(e["event_properties"]) for k, e in events.items() if "$message" in e["event_properties"]
    }
    got = rows(db, "event_attributions")
    assert {k[0] for k in got} == set(attributed)
    for (event_id, _), r in got.items():
        props = attributed[event_id]
        assert (r["flow_message_id"] or r["campaign_message_id"]) == props["$message"]
        assert r["flow_id"] == props.get("$flow") and r["datetime"] == events[event_id]["datetime"]
    assert not _own_reads(sb)  # "all" lists events once


def test_event_attributions_spec_agrees_with_the_openapi_file():
    spec = TABLES["event_attributions"]
    op, params = _operation(spec)
    assert spec.include in params["include"]["schema"]["items"]["enum"] and spec.rate_bucket == "events"
    assert set(spec.extra_params["fields[event]"].split(",")) <= set(params["fields[event]"]["schema"]["items"]["enum"])
    resource = OPENAPI["components"]["schemas"]["AttributionResponseObjectResource"]["properties"]
    assert "attributes" not in resource and set(spec.to_one) == set(resource["relationships"]["properties"])
    assert "attribution" in {_ref_type(r) for r in _included_types(op)}
    assert spec.cursor == TABLES["events"].cursor and spec.info.in_all and spec.info.immutable


# -- opt-in columns: profile_fields=predictive_analytics, template_fields=definition (options.py) -------------------


def _reads(sb, endpoint: str, rtype: str) -> list[str]:
    """The requests of a load (a reconcile's key listing, ``fields[<type>]=id``, aside)."""
    return [q for q in _requests(sb, endpoint) if f"fields[{rtype}]=id" not in q]


def _additional(sb, name: str, field: str, ids) -> dict[str, object]:
    """id -> the sandbox's value of additional field ``field`` for records ``ids`` of ``name``."""
    b = sb.state.builders[name]
    return {rid: b.build(b.index_of(rid))[2]["_additional"][field] for rid in ids}


def test_opt_in_columns_equal_truth_after_backfill_and_after_clock_advance(make_sandbox, tmp_path):
    sb = make_sandbox(scale="tiny,profiles=2500", seed=13)  # real rate limits: the predictive bucket is 10/s
    db = str(tmp_path / "k.duckdb")
    uri = source_uri(sb) + "&profile_fields=predictive_analytics&template_fields=definition"
    for _run in range(2):
        assert main(["ingest", "--source-uri", uri, "--source-table", "profiles,templates", "--dest-uri",
                     f"duckdb:///{db}", "--progress", "log"]) == 0  # fmt: skip
        for name, field in (("profiles", "predictive_analytics"), ("templates", "definition")):
            got = assert_equals_truth(db, sb, name)
            want = _additional(sb, name, field, got)  # got's keys are the truth's (checked just above)
            assert {k: json.loads(r[field]) if r[field] else None for k, r in got.items()} == want
            assert any(want.values())
        profile_asks = _reads(sb, "profiles", "profile")
        assert profile_asks and all(
            "additional-fields[profile]=subscriptions,predictive_analytics" in q for q in profile_asks
        )
        assert all("additional-fields[template]=definition" in q for q in _reads(sb, "templates", "template"))
        assert sb.state.requests["status:429"] == 0  # paced by the predictive bucket (the sandbox enforces it)
        http_post(sb.base_url, "/__sandbox/clock/advance?seconds=864000")
        sb.state.log.clear()


def test_an_opt_in_column_turned_on_later_is_backfilled_and_said(make_sandbox, tmp_path, capsys):
    """Issue #20, item 10: a plain load, then the same table with profile_fields=predictive_analytics: the column
    exists and equals the truth for every row (the table is read again as a first load, with a note saying why);
    the run after that is incremental again."""
    sb = make_sandbox(scale="tiny", rate_limits="off")
    db = str(tmp_path / "k.duckdb")
    plain, opted = source_uri(sb), source_uri(sb) + "&profile_fields=predictive_analytics"
    args = ["--source-table", "profiles", "--dest-uri", f"duckdb:///{db}", "--progress", "log"]
    assert main(["ingest", "--source-uri", plain, *args]) == 0
    assert "predictive_analytics" not in next(iter(rows(db, "profiles").values()))
    capsys.readouterr()
    assert main(["ingest", "--source-uri", opted, *args]) == 0
    err = capsys.readouterr().err
    assert "columns new since the table's last load (predictive_analytics)" in err and "--full-refresh" not in err
    got = assert_equals_truth(db, sb, "profiles")
    want = _additional(sb, "profiles", "predictive_analytics", got)
    assert {
        k: json.loads(r["predictive_analytics"]) if r["predictive_analytics"] else None for k, r in got.items()
    } == want
    assert any(want.values())
    sb.state.log.clear()
    assert main(["ingest", "--source-uri", opted, *args]) == 0  # the same columns: incremental again, no note
    assert "columns new" not in capsys.readouterr().err
    assert all("greater-than(updated," in q for q in _reads(sb, "profiles", "profile"))
    assert main(["ingest", "--source-uri", plain, *args]) == 0  # turned off: said, and the column stays
    assert "no longer read (predictive_analytics)" in capsys.readouterr().err


def test_a_backfill_for_new_columns_that_fails_resumes_where_it_stopped(make_sandbox, tmp_path, capsys):
    """The first load that fills new columns commits in slices like any backfill: after a failure the rerun goes on
    from the last committed slice (not from the cursor of the load before the columns), and every row gets them."""
    sb = make_sandbox(scale="tiny,profiles=5000", rate_limits="off")
    db = str(tmp_path / "k.duckdb")
    plain, opted = source_uri(sb), source_uri(sb) + "&profile_fields=predictive_analytics"
    args = ["--source-table", "profiles", "--dest-uri", f"duckdb:///{db}", "--progress", "log", "--checkpoint-rows", "1000",
            "--extract-parallelism", "1"]  # fmt: skip
    assert main(["ingest", "--source-uri", plain, *args]) == 0
    capsys.readouterr()
    http_post(sb.base_url, "/__sandbox/faults?spec=noid=1,after=20")  # a bad page in the second slice (of ~14 pages)
    rc = main(["ingest", "--source-uri", opted, *args])
    err = capsys.readouterr().err
    assert rc == 1 and "committed:" in err, err  # fails after some slices committed
    http_post(sb.base_url, "/__sandbox/faults?spec=")
    assert main(["ingest", "--source-uri", opted, *args]) == 0
    got = assert_equals_truth(db, sb, "profiles")
    want = _additional(sb, "profiles", "predictive_analytics", got)
    assert {
        k: json.loads(r["predictive_analytics"]) if r["predictive_analytics"] else None for k, r in got.items()
    } == want


def test_opt_in_columns_pace_profiles_by_the_lower_limit_and_change_nothing_without_them():
    from omniload.sources.klaviyo.source import KlaviyoSource

    key = "pk_" + "a" * 34
    plain = KlaviyoSource.from_uri(f"klaviyo://?api_key={key}")
    opted = KlaviyoSource.from_uri(
        f"klaviyo://?api_key={key}&profile_fields=predictive_analytics&template_fields=definition"
    )
    assert plain.specs["profiles"] == TABLES["profiles"] and plain.specs["templates"] == TABLES["templates"]
    assert (opted.specs["profiles"].burst, opted.specs["profiles"].steady) == (10, 150)  # the spec's description
    assert (
        "predictive_analytics" in opted.tables()["profiles"].columns
        and "definition" in opted.tables()["templates"].columns
    )
    assert opted.specs["templates"].steady == TABLES["templates"].steady  # definition costs no rate limit
    desc = OPENAPI["paths"]["/api/profiles"]["get"]["description"]
    assert "predictive_analytics` parameter in your API request:<br>Burst: `10/s`<br>Steady: `150/m`" in desc
    for table, rtype, value in (
        ("profiles", "profile", "predictive_analytics"),
        ("templates", "template", "definition"),
    ):
        _, params = _operation(TABLES[table])
        assert value in params[f"additional-fields[{rtype}]"]["schema"]["items"]["enum"]


@pytest.mark.parametrize("option", ["profile_fields=predictive", "template_fields=definition,html"])
def test_opt_in_columns_refuse_unknown_values(option, tmp_path, capsys):
    db = tmp_path / "k.duckdb"
    uri = f"klaviyo://?api_key=pk_{'a' * 34}&base_url=http://127.0.0.1:9&{option}"
    assert main(["ingest", "--source-uri", uri, "--source-table", "profiles", "--dest-uri", f"duckdb:///{db}"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    allowed = "predictive_analytics" if option.startswith("profile") else "definition"
    assert len(err) == 1 and "is not allowed; allowed: " + allowed in err[0] and not db.exists()
