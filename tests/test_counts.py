"""Opt-in counts (issue #25, tables/counts.py): lists' and segments' ``profile_count`` and campaigns' recipient
estimates, read from single-resource endpoints once per parent. Each equals the counts recomputed from the
memberships the sandbox serves, after a backfill and after the clock moves (new members); ``profile_count`` is
paced by its own lower limit, read from the spec (no 429); the tables join ``all`` only when the URI asks.
"""

from __future__ import annotations

import pytest

from klaviyo_sandbox import testing as truth
from omniload.pipeline import resolve_targets
from omniload.sources.klaviyo.scopes import scopes
from omniload.sources.klaviyo.source import KlaviyoSource
from omniload.sources.klaviyo.tables import TABLES
from omniload.sources.klaviyo.tables.counts import COUNTS

from .conftest import KEY, http_get, http_post, run_cli
from .helpers import asked, assert_equals_truth, ingest
from .reference import OPENAPI_NAME, load
from .test_account_config import _load as load_equal_to_truth

OPENAPI = load(OPENAPI_NAME)
NAMES = [t.name for t in COUNTS]


def test_counts_equal_truth_one_request_per_parent_at_the_lower_limit(make_sandbox, tmp_path):
    # real rate limits: the client paces profile_count at 1/s, 15/m (the spec), or the sandbox would answer 429
    sb = make_sandbox(scale="tiny,lists=4,segments=4,campaigns=6", rate_limits="real", seed=31)
    first = load_equal_to_truth(sb, NAMES, db := str(tmp_path / "k.duckdb"))
    assert all(any(v for r in rows.values() for k, v in r.items() if k.endswith("count")) for rows in first.values())
    assert sb.state.requests["status:429"] == 0
    lists = asked(sb, "lists:one")
    assert len(lists) == len(truth.records(sb.state, "lists"))  # one request per list, each asking for the count
    assert all("additional-fields[list]=profile_count" in q for q in lists)
    assert len(asked(sb, "campaign-recipient-estimations")) == len(truth.records(sb.state, "campaigns"))
    http_post(sb.base_url, "/__sandbox/clock/advance?seconds=2592000")  # 30 days: new members, lists, campaigns
    assert ingest(sb, ",".join(NAMES), db) == 0
    for n in NAMES:  # replaced: the counts now
        assert assert_equals_truth(db, sb, n) != first[n]
    assert sb.state.requests["status:429"] == 0


def test_counts_join_all_only_when_the_uri_asks(sandbox, tmp_path):
    def names(uri: str) -> set[str]:
        return {t.source for t in resolve_targets(KlaviyoSource.from_uri(uri).tables(), "all", None, "klaviyo")}

    base = f"klaviyo://?api_key={KEY}"
    assert not set(NAMES) & names(base)  # costly: opt-in
    assert set(NAMES) <= names(f"{base}&list_fields=profile_count&segment_fields=profile_count"
                               "&campaign_fields=estimated_recipient_count") and "form-versions" in names(base)  # fmt: skip
    proc = run_cli("ingest", "--source-uri", f"{base}&list_fields=members&base_url={sandbox.base_url}",
                   "--source-table", "lists", "--dest-uri", f"duckdb:///{tmp_path / 'x.duckdb'}")  # fmt: skip
    lines = proc.stderr.strip().splitlines()
    assert proc.returncode == 2 and len(lines) == 1, proc.stderr
    assert lines[0].endswith("list_fields 'members' is not allowed; allowed: profile_count")
    assert not (tmp_path / "x.duckdb").exists()


@pytest.mark.parametrize("name", NAMES)
def test_count_specs_agree_with_the_openapi_file(name):
    spec = TABLES[name]
    op = OPENAPI["paths"][spec.path]["get"]
    params = {p["name"]: p for p in op["parameters"] if "name" in p}
    assert set(scopes(spec.path)) == set(op["x-klaviyo-scopes"]) and "page[size]" not in params
    for key, value in spec.extra_params.items():  # the additional field and the sparse field exist
        assert value in params[key]["schema"]["items"]["enum"]
    rate = op["x-klaviyo-ratelimit"]
    limits = (int(rate["burst"].split("/")[0]), int(rate["steady"].split("/")[0]))
    if spec.extra_params:  # profile_count: the lower limit the description states for it
        assert f"`{next(iter(spec.extra_params))}=profile_count`" in op["description"]
        assert "Burst: `1/s`<br>Steady: `15/m`" in op["description"].split("profile_count` parameter")[1]
        limits = (1, 15)
    assert (spec.burst, spec.steady) == limits and spec.single and not spec.info.in_all


@pytest.mark.parametrize("name", ["lists:one", "segments:one", "campaign-recipient-estimations"])
def test_sandbox_count_answers_match_the_openapi_schema(sandbox, name):
    from klaviyo_sandbox.singles import SINGLES

    from .test_conformance import _validator

    path, parent = SINGLES[name]
    rid = truth.records(sandbox.state, parent)[0]["id"]
    extra = {"lists:one": "?additional-fields%5Blist%5D=profile_count",
             "segments:one": "?additional-fields%5Bsegment%5D=profile_count"}.get(name, "")  # fmt: skip
    doc = http_get(sandbox.base_url, path.replace("{id}", rid) + extra).json
    errors = list(_validator(path).iter_errors(doc))
    assert not errors, "\n".join(f"{list(e.absolute_path)}: {e.message[:300]}" for e in errors[:5])
    assert http_get(sandbox.base_url, path.replace("{id}", "nope")).status == 404
    assert http_get(sandbox.base_url, path.replace("{id}", rid) + "?page%5Bsize%5D=1").status == 400  # no pages
