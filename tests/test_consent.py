"""Consent (issue #25, tables/consent.py): the ``subscriptions`` table, one row per (profile, channel), equals the
sandbox's profiles' ``subscriptions`` after a backfill and after the clock moves; the second run reads only the
profiles changed since the first (server filter on ``updated``, sparse fieldset); a deleted profile's rows are
marked with it.
"""

from __future__ import annotations

import pytest

from klaviyo_sandbox import testing as truth
from klaviyo_sandbox.openapi_rules import all_rules
from omniload.sources.klaviyo.tables import TABLES

from .conftest import http_post
from .helpers import _norm, ingest, rows, sandbox_now
from .test_deletes import delete, marks

SPEC = TABLES["subscriptions"]


def _expected(sb) -> dict:
    """(profile id, channel) -> row, walked from the answer key's profiles (every channel of ``subscriptions``) updated
    before the sandbox's now: a run reads ``less-than(updated, now)`` (the only upper bound Klaviyo offers), so a
    profile stamped exactly at the frozen clock is the next run's, once the clock has moved."""
    out = {}
    for p in truth.records(sb.state, "profiles", None, sandbox_now(sb)):
        for channel, kinds in p["attributes"]["subscriptions"].items():
            for kind, sub in kinds.items():
                can = [v for k, v in sub.items() if k.startswith("can_receive")]
                row = {"profile_id": p["id"], "channel": f"{channel}.{kind}", "can_receive": can[0],
                       "updated": p["attributes"]["updated"], **{k: sub.get(k) for k in SPEC.columns if k in sub}}  # fmt: skip
                out[(p["id"], row["channel"])] = {c: _norm(row.get(c), t) for c, t in SPEC.all_columns.items()}
    return out


def _assert_equal(db: str, sb) -> dict:
    got, want = rows(db, "subscriptions"), _expected(sb)
    assert set(got) == set(want), f"{len(set(want) - set(got))} missing, {len(set(got) - set(want))} extra"
    for key, exp in want.items():
        assert {c: _norm(got[key][c], t) for c, t in SPEC.all_columns.items()} == exp, key
    return got


def _asked(sb) -> list[str]:
    return [q for _, name, q in sb.state.log if name == "profiles"]


def test_subscriptions_equal_truth_after_backfill_and_clock_advance_and_follow_deleted_profiles(make_sandbox, tmp_path):
    sb = make_sandbox(scale="tiny", rate_limits="off", seed=13)
    db = str(tmp_path / "k.duckdb")
    assert ingest(sb, "subscriptions", db) == 0
    first = _assert_equal(db, sb)
    channels = {k[1] for k in first}
    assert {
        "email.marketing",
        "sms.marketing",
        "sms.transactional",
        "mobile_push.marketing",
    } <= channels
    assert any(r["suppression"] for r in first.values()) and any(r["list_suppressions"] for r in first.values())
    profiles = len(truth.records(sb.state, "profiles"))
    asked = _asked(sb)
    assert all("fields[profile]=updated" in q and "additional-fields[profile]=subscriptions" in q for q in asked)
    assert len(asked) <= -(-profiles // 100) + 4  # a page per 100 profiles (+ the windows' edges)
    cursor = max(r["updated"] for r in first.values())

    http_post(sb.base_url, "/__sandbox/clock/advance?seconds=864000")  # ten days: touched profiles, new consent
    before = len(sb.state.log)
    assert ingest(sb, "subscriptions", db) == 0
    got = _assert_equal(db, sb)
    changed = {k for k, r in got.items() if r["updated"] > cursor}
    assert changed and any(got[k]["consent"] != first[k]["consent"] for k in changed if k in first)
    second = [q for _, name, q in list(sb.state.log)[before:] if name == "profiles"]
    assert second and all("greater-than(updated," in q for q in second)  # from the cursor, not a full re-read
    last = max(r["_dlt_load_id"] for r in got.values())
    assert {k for k, r in got.items() if r["_dlt_load_id"] == last} <= {
        k for k, r in got.items() if r["updated"] >= cursor - SPEC.lookback}  # fmt: skip

    assert ingest(sb, "profiles", db) == 0
    gone = delete(sb, "profiles", 2)
    assert ingest(sb, "profiles", db, "--reconcile", "profiles") == 0
    marked = {k for k, at in marks(db, "subscriptions").items() if at}
    assert {k[0] for k in marked} == set(gone) and marked == {k for k in got if k[0] in gone}


@pytest.mark.parametrize("seed", [3, 6])
def test_subscriptions_profile_stamped_at_the_servers_now_comes_with_the_next_run(make_sandbox, tmp_path, seed):
    """Seeds 3 and 6 hold a profile updated exactly at the sandbox's (frozen) now: a run ending at the
    server's now reads ``less-than(updated, now)``, so it waits for the next run after the clock moves (the
    lookback's ``greater-than`` reads it); nothing is lost, and no row is read twice."""
    sb = make_sandbox(scale="tiny", rate_limits="off", seed=seed)
    db = str(tmp_path / "k.duckdb")
    now = sandbox_now(sb).isoformat()
    edge = {p["id"] for p in truth.records(sb.state, "profiles") if p["attributes"]["updated"] == now}
    assert len(edge) == 1
    assert ingest(sb, "subscriptions", db) == 0
    assert not edge & {k[0] for k in _assert_equal(db, sb)}
    http_post(sb.base_url, "/__sandbox/clock/advance?seconds=60")
    assert ingest(sb, "subscriptions", db) == 0
    assert edge <= {k[0] for k in _assert_equal(db, sb)}


def test_subscriptions_spec_reads_the_profiles_endpoint_as_the_spec_allows():
    profiles, rules = TABLES["profiles"], all_rules()["profiles"]
    assert (SPEC.path, SPEC.resource_type, SPEC.rate_bucket) == (
        profiles.path,
        profiles.resource_type,
        "profiles",
    )
    assert (SPEC.burst, SPEC.steady, SPEC.page_size) == (
        rules.burst,
        rules.steady,
        rules.page_size["maximum"],
    )
    assert (SPEC.cursor, SPEC.lower_op, SPEC.upper_op, SPEC.sort) == (
        "updated",
        profiles.lower_op,
        profiles.upper_op,
        "updated",
    )
    assert SPEC.extra_params["fields[profile]"] in rules.fields["profile"]
    assert "subscriptions" in rules.additional_fields["profile"] and SPEC.info.in_all
    assert (
        "subscriptions",
        "profile_id",
    ) in profiles.dependents  # marked with a deleted profile


def test_suppressions_list_only_suppressed_profiles_and_drop_lifted_ones(make_sandbox, tmp_path):
    sb = make_sandbox(scale="tiny,profiles=1000", rate_limits="off", seed=17)
    db = str(tmp_path / "k.duckdb")

    def want() -> dict:
        out = {}
        for p in truth.records(sb.state, "profiles"):
            for s in p["attributes"]["subscriptions"]["email"]["marketing"]["suppression"]:
                out[(p["id"], s["reason"])] = (
                    p["attributes"]["email"],
                    _norm(s["timestamp"], "timestamp"),
                )
        return out

    def got() -> dict:
        return {k: (r["email"], _norm(r["timestamp"], "timestamp")) for k, r in rows(db, "suppressions").items()}

    assert ingest(sb, "suppressions", db) == 0
    first = want()
    assert got() == first and 0 < len(first) < len(truth.records(sb.state, "profiles")) / 4
    asked = _asked(sb)
    assert len(asked) == -(
        -len({k[0] for k in first}) // 100
    )  # a page per 100 suppressed profiles, not per 100 profiles
    assert all("greater-than(subscriptions.email.marketing.suppression.timestamp," in q for q in asked)
    http_post(sb.base_url, "/__sandbox/clock/advance?seconds=864000")  # touched profiles: some suppressed, some lifted
    assert ingest(sb, "suppressions", db) == 0
    second = want()
    assert got() == second and set(first) - set(second) and set(second) - set(first)
