"""Account configuration tables (issue #25, tables/config.py): data sources, tracking settings, web feeds, webhook
topics and webhooks. Each equals the sandbox's truth after a backfill and after the clock moves; the specs agree
with Klaviyo's OpenAPI file; the sandbox's answers validate against the spec's schemas; a deleted webhook is marked.
"""

from __future__ import annotations

import pytest

from klaviyo_sandbox import testing as truth
from omniload.sources.klaviyo.scopes import scopes
from omniload.sources.klaviyo.tables import TABLES
from omniload.sources.klaviyo.tables.config import CONFIG

from .conftest import http_get, http_post
from .helpers import assert_equals_truth, ingest
from .reference import OPENAPI_NAME, load
from .test_conformance import _validator
from .test_deletes import assert_converged, delete, marks

NAMES = [t.name for t in CONFIG if t.parent is None]
OBJECTS = ["object-types", "object-records", "object-schemas"]
TRIGGERS = [t.name for t in CONFIG if t.parent is not None and t.name.endswith("flow-triggers")]
OPENAPI = load(OPENAPI_NAME)


def _load(sb, names: list[str], db: str) -> dict:
    """Load ``names`` in one run; each table equal to the sandbox's truth, and not empty."""
    assert ingest(sb, ",".join(names), db) == 0
    got = {name: assert_equals_truth(db, sb, name) for name in names}
    assert all(got.values()), [n for n, rows in got.items() if not rows]
    return got


def _asked(sb, name: str) -> list[str]:
    return [q for _, n, q in sb.state.log if n == TABLES[name].path.rsplit("/", 1)[-1]]


def test_config_tables_equal_truth_after_backfill_clock_advance_and_delete(make_sandbox, tmp_path):
    sb = make_sandbox(scale="tiny,webhooks=12,web-feeds=12", rate_limits="off", seed=11)
    db = str(tmp_path / "k.duckdb")
    first = _load(sb, NAMES, db)
    assert len(first["tracking-settings"]) == 1  # the account's own settings
    assert all(
        len(_asked(sb, n)) == 1 for n in NAMES if not TABLES[n].splittable and n != "tracking-settings"
    )  # one page
    http_post(sb.base_url, "/__sandbox/clock/advance?seconds=8640000")  # 100 days: new records, touched ones
    gone = delete(sb, "webhooks", 1)
    assert ingest(sb, ",".join(NAMES), db, "--reconcile", "webhooks") == 0
    for name in NAMES:
        got = assert_equals_truth(db, sb, name)
        spec = TABLES[name]
        if spec.cursor:  # merged: something new came, and only the new and touched records were loaded again
            prev = max(r[spec.cursor] for r in first[name].values())
            assert any(r[spec.cursor] > prev for r in got.values()), f"{name}: nothing new after the clock moved"
            loads = sorted({r["_dlt_load_id"] for r in got.values()})
            assert {k for k, r in got.items() if r["_dlt_load_id"] == loads[-1]} == {
                k for k, r in got.items() if r[spec.cursor] >= prev}, f"{name}: old rows loaded again"  # fmt: skip
    assert_converged(db, sb, "webhooks")
    assert {k for k, at in marks(db, "webhooks").items() if at} == set(gone) & set(first["webhooks"])
    feeds = [q for q in _asked(sb, "web-feeds") if "fields[web-feed]=id" not in q]  # (the id scans aside)
    assert all(
        "less-than(updated," in q and "updated&page" in q for q in feeds
    )  # filtered and sorted on the server, "\n".join(feeds)
    assert "greater-or-equal(updated," in feeds[-1]  # the second run from its cursor


def test_flow_triggers_equal_truth_one_request_per_parent_and_after_clock_advance(make_sandbox, tmp_path):
    sb = make_sandbox(
        scale="tiny,flows=40,lists=6,segments=6,metrics=6", rate_limits="off", seed=12
    )  # the client paces 3/s: few parents
    db = str(tmp_path / "k.duckdb")
    assert ingest(sb, ",".join(TRIGGERS), db) == 0
    for name in TRIGGERS:
        got = assert_equals_truth(db, sb, name)
        assert got, f"{name}: no flow is triggered"
        parent = TABLES[name].parent.table
        asked = [q for _, n, q in sb.state.log if n == name]
        assert len(asked) == len(truth.records(sb.state, parent))  # one request per list, segment or metric
    http_post(sb.base_url, "/__sandbox/clock/advance?seconds=8640000")  # 100 days: new flows, lists, segments
    assert ingest(sb, ",".join(TRIGGERS), db) == 0
    for name in TRIGGERS:
        assert_equals_truth(db, sb, name)


def test_metric_properties_equal_truth_one_request_per_metric_with_sample_values(make_sandbox, tmp_path):
    sb = make_sandbox(scale="tiny,metrics=4", rate_limits="off", seed=14)  # the client paces 1/s: few metrics
    db = str(tmp_path / "k.duckdb")
    assert ingest(sb, "metric-properties", db) == 0
    got = assert_equals_truth(db, sb, "metric-properties")
    assert len({r["metric_id"] for r in got.values()}) > 1 and any(r["sample_values"] for r in got.values())
    asked = [q for _, n, q in sb.state.log if n == "metric-properties"]
    assert len(asked) == len(truth.records(sb.state, "metrics"))  # one request per metric (fixed pages)
    assert all("additional-fields[metric-property]=sample_values" in q for q in asked)
    http_post(sb.base_url, "/__sandbox/clock/advance?seconds=8640000")  # new metrics and properties
    assert ingest(sb, "metric-properties", db) == 0
    assert len(assert_equals_truth(db, sb, "metric-properties")) > len(got)


@pytest.mark.parametrize("name", NAMES + TRIGGERS + ["metric-properties", "form-versions"] + OBJECTS)
def test_config_specs_agree_with_the_openapi_file(name):
    spec = TABLES[name]
    op = OPENAPI["paths"][spec.path]["get"]
    rate = op["x-klaviyo-ratelimit"]
    assert (spec.burst, spec.steady) == (
        int(rate["burst"].split("/")[0]),
        int(rate["steady"].split("/")[0]),
    )
    params = {p["name"]: p for p in op["parameters"] if "name" in p}
    assert spec.page_size == (params["page[size]"]["schema"]["maximum"] if "page[size]" in params else None)
    assert set(scopes(spec.path)) == set(op["x-klaviyo-scopes"])
    filters = op.get("x-klaviyo-filters") or {}
    if spec.lower_op:
        assert {spec.lower_op, spec.upper_op} <= set(filters[spec.cursor]["operators"]["single"])
        assert {spec.sort, f"-{spec.sort}"} <= set(params["sort"]["schema"]["enum"])
    else:  # no server filter: a client-side interval (webhooks) or read whole and replaced
        assert spec.cursor not in filters
    assert spec.rate_bucket == name and TABLES[name].info.in_all


@pytest.mark.parametrize(
    "name",
    NAMES + TRIGGERS + ["metric-properties", "object-types", "object-records", "object-schemas"],
)
def test_sandbox_config_answers_match_the_openapi_schema(sandbox, name):
    spec = TABLES[name]
    path, url = spec.path, spec.path
    if spec.parent is not None:  # a child endpoint: the first parent that has children
        key = TABLES[name].parent_column
        owners = [r[key] if key in r else r["parent_id"] for r in truth.records(sandbox.state, name)]
        url = path.replace("{id}", owners[0])
    doc = http_get(sandbox.base_url, url).json
    assert doc["data"], f"{name}: no records to validate"
    errors = list(_validator(path).iter_errors(doc))
    assert not errors, "\n".join(f"{list(e.absolute_path)}: {e.message[:300]}" for e in errors[:5])


def test_custom_objects_equal_truth_after_backfill_and_clock_advance(make_sandbox, tmp_path):
    sb = make_sandbox(scale="tiny", rate_limits="off", seed=15)
    db = str(tmp_path / "k.duckdb")
    first = _load(sb, OBJECTS, db)
    assert len({r["object_type_id"] for r in first["object-records"].values()}) > 1
    types = len(truth.records(sb.state, "object-types"))
    assert len([q for _, n, q in sb.state.log if n == "object-schemas"]) == types  # one request per type
    http_post(sb.base_url, "/__sandbox/clock/advance?seconds=8640000")  # new types, records and schema versions
    assert ingest(sb, ",".join(OBJECTS), db) == 0
    for n in OBJECTS:
        assert len(assert_equals_truth(db, sb, n)) >= len(first[n])
