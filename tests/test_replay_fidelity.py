"""The client against what a replay of real Klaviyo responses (revision 2026-07-15) showed, modelled in the
sandbox (docs/klaviyo-behaviour.md): hidden images listed only on request, catalog variants naming their item by
links only, microsecond timestamps, a first page of lists with a ``prev`` link, and typed money and counts."""

from __future__ import annotations

from urllib.parse import unquote

import duckdb

from omniload.sandbox.klaviyo import truth

from .conftest import http_get, http_post
from .helpers import assert_equals_truth, ingest

DELETED = "_omniload_deleted_at"


def _query(db: str, sql: str) -> list[tuple]:
    con = duckdb.connect(db, read_only=True)
    try:
        return con.execute(sql).fetchall()
    finally:
        con.close()


def test_hidden_images_are_loaded_and_kept_by_the_id_scan(make_sandbox, tmp_path):
    sb = make_sandbox(scale="tiny", rate_limits="off", seed=4, archived_visible=False)  # hidden images: on request
    hidden = {r["id"] for r in truth.records(sb.state, "images") if r["attributes"]["hidden"]}
    listed = http_get(sb.base_url, "/api/images?page%5Bsize%5D=100").json["data"]
    assert hidden and not hidden & {r["id"] for r in listed}  # the sandbox lists them only when asked
    db = str(tmp_path / "k.duckdb")
    assert ingest(sb, "images", db) == 0
    got = assert_equals_truth(db, sb, "images")
    assert hidden <= set(got)
    asked = [unquote(q) for _, name, q in sb.state.log if name == "images"]
    assert any("equals(hidden,true)" in q for q in asked) and any("equals(hidden,false)" in q for q in asked)
    gone = http_post(sb.base_url, f"/__sandbox/delete?resource=images&ids={sorted(hidden)[0]}")["deleted"]
    assert ingest(sb, "images", db) == 0  # images are cheap to scan: reconciled on every run after the first
    marked = {r[0] for r in _query(db, f'select id from images where "{DELETED}" is not null')}
    assert marked == set(gone)  # the scan lists hidden images too: only the deleted one is marked
