"""Child tables (issue #12): flow actions, flow messages, list and segment memberships, read once per parent.

Every row and column equals the sandbox's truth after a backfill and after the clock moves; the specs agree
with Klaviyo's OpenAPI file itself; the parents are listed cheaply and each parent is asked once per run.
"""

from __future__ import annotations

import json

import pytest

from omniload.sandbox.klaviyo import truth
from omniload.sandbox.klaviyo.digest import OPENAPI_NAME, reference_dir
from omniload.sources.klaviyo.tables import TABLES
from omniload.sources.klaviyo.tables.relationships import RELATIONSHIPS

from .conftest import http_get, http_post
from .helpers import assert_equals_truth, ingest, rows

CHILDREN = [t.name for t in RELATIONSHIPS]
OPENAPI = json.loads((reference_dir() / OPENAPI_NAME).read_text())


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
        assert second == {k for k, r in got.items() if r[spec.cursor] >= prev}, f"{name}: the second run reloaded old rows"


def test_memberships_keep_only_the_profile_id_and_joined_group_at(sandbox, tmp_path):
    db = str(tmp_path / "k.duckdb")
    assert ingest(sandbox, "list-memberships", db) == 0
    got = rows(db, "list_memberships")
    assert {c for c in next(iter(got.values())) if not c.startswith("_dlt")} == {"list_id", "profile_id", "joined_group_at"}
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


@pytest.mark.parametrize("name", CHILDREN)
def test_spec_agrees_with_the_openapi_file(name):
    spec = TABLES[name]
    op = OPENAPI["paths"][spec.path]["get"]
    rate = op["x-klaviyo-ratelimit"]
    assert (spec.burst, spec.steady) == (int(rate["burst"].split("/")[0]), int(rate["steady"].split("/")[0]))
    params = {p["name"]: p for p in op["parameters"] if "name" in p}
    assert spec.page_size == params["page[size]"]["schema"]["maximum"]
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
    from omniload.sandbox.klaviyo.dataset import SCALES

    for name in ("flow-actions", "flow-messages", "list-memberships", "segment-memberships"):
        assert SCALES["tiny"][name] < SCALES["small"][name] < SCALES["medium"][name] < SCALES["large"][name]
