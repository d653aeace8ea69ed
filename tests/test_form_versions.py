"""A form's versions (issue #25, tables/config.py): equal to the sandbox's truth after a backfill and after the clock
moves, read once per form, a deleted form's versions marked with it; the versions are those the form events name;
the sandbox's answers validate against the OpenAPI schema (the spec's values: test_account_config.py).
"""

from __future__ import annotations

from datetime import timedelta

from klaviyo_sandbox import testing as truth

from .conftest import http_get, http_post
from .helpers import asked, assert_equals_truth, assert_rows_equal_truth, ingest, rows, sandbox_now
from .test_conformance import _validator
from .test_deletes import DELETED, assert_converged, delete, marks


def test_form_versions_equal_truth_one_request_per_form_after_clock_advance_and_delete(make_sandbox, tmp_path):
    sb = make_sandbox(scale="tiny,forms=8,metrics=22", rate_limits="off", seed=21)  # the client paces 3/s: few forms
    db = str(tmp_path / "k.duckdb")
    assert ingest(sb, "forms,form-versions", db) == 0
    first = assert_equals_truth(db, sb, "form-versions")
    forms = truth.records(sb.state, "forms")
    assert len(asked(sb, "form-versions")) == len(forms) and len(first) > len(forms)  # one request per form; A/B tests
    now = sandbox_now(sb)
    reported = {k[:2] for k in truth.form_report(sb.state, now - timedelta(days=800), now, whole=True)}
    assert reported and reported <= {(r["form_id"], r["id"]) for r in first.values()}
    http_post(sb.base_url, "/__sandbox/clock/advance?seconds=8640000")  # 100 days: new forms, touched ones
    gone = delete(sb, "forms", 1)
    assert ingest(sb, "forms,form-versions", db) == 0  # forms are cheap: reconciled, their versions marked
    assert_converged(db, sb, "form-versions")
    current = {k: r for k, r in rows(db, "form_versions").items() if r[DELETED] is None}
    assert_rows_equal_truth(current, sb, "form-versions")
    got = marks(db, "form_versions")
    assert {k for k, at in got.items() if at} == {k for k, r in first.items() if r["form_id"] in gone}
    later = [q for q in asked(sb, "form-versions")[len(forms) :] if "fields[form-version]=id" not in q]  # (id scans)
    assert later and all("greater-or-equal(updated_at," in q and "sort=updated_at" in q for q in later)  # incremental


def test_form_versions_answer_matches_the_openapi_schema(sandbox):
    form = truth.records(sandbox.state, "form-versions")[0]["parent_id"]
    doc = http_get(sandbox.base_url, f"/api/forms/{form}/form-versions").json
    assert doc["data"]
    errors = list(_validator("/api/forms/{id}/form-versions").iter_errors(doc))
    assert not errors, "\n".join(f"{list(e.absolute_path)}: {e.message[:300]}" for e in errors[:5])
    assert http_get(sandbox.base_url, "/api/forms/nope/form-versions").status == 404
