"""The client against what a replay of real Klaviyo responses (revision 2026-07-15) showed, modelled in the
sandbox (docs/klaviyo-behaviour.md): hidden images listed only on request, catalog variants naming their item by
links only, microsecond timestamps, a first page of lists with a ``prev`` link, and typed money and counts."""

from __future__ import annotations

import re
from decimal import Decimal
from urllib.parse import unquote

import duckdb

from klaviyo_sandbox import testing as truth
from omniload.cli import main
from omniload.sources.klaviyo.tables import TABLES

from .conftest import http_get, http_post, source_uri
from .helpers import assert_equals_truth, expected_rows, ingest, sandbox_now

DELETED = "_omniload_deleted_at"
re_fraction = re.compile(r"\d{2}:\d{2}:\d{2}\.\d")  # a time with fractional seconds


def ingest_to(sb, tables: str, dest: str, *extra: str) -> int:
    return main(
        [
            "ingest",
            "--source-uri",
            source_uri(sb),
            "--source-table",
            tables,
            "--dest-uri",
            dest,
            "--progress",
            "log",
            *extra,
        ]
    )


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


def _pg(server, database: str, sql: str) -> list[tuple]:
    con = server.connect(database)
    try:
        with con.cursor() as cur:
            cur.execute(sql)
            return cur.fetchall()
    finally:
        con.close()


def test_prices_are_exact_decimals_and_inventory_an_integer_on_duckdb_and_postgres(postgres, make_sandbox, tmp_path):
    sb = make_sandbox(scale="tiny", rate_limits="off", seed=6)
    db = str(tmp_path / "k.duckdb")
    assert ingest(sb, "catalog-variants,catalog-items", db) == 0
    for table in ("catalog_items", "catalog_variants"):
        types = dict(
            _query(db, f"select column_name, data_type from information_schema.columns where table_name = '{table}'")
        )
        assert types["price"] == "DECIMAL(38,9)", types
    assert types["inventory_quantity"] == "BIGINT"
    want = {rid: (r["price"], r["inventory_quantity"]) for rid, r in expected_rows(sb, "catalog-variants").items()}
    got = {
        rid: (price, qty)
        for rid, price, qty in _query(db, "select id, price, inventory_quantity from catalog_variants")
    }
    assert got == want and all(
        isinstance(p, Decimal) and isinstance(q, int) for p, q in got.values()
    )  # 19.99, not 19.98999...
    postgres.create_database("kl_money")
    assert ingest_to(sb, "catalog-variants", postgres.uri("kl_money")) == 0
    cols = dict(_pg(postgres, "kl_money", "select column_name, data_type || coalesce('(' || numeric_precision || ',' || numeric_scale || ')', '') "
                                          "from information_schema.columns where table_name = 'catalog_variants'"))  # fmt: skip
    assert cols["price"] == "numeric(38,9)" and cols["inventory_quantity"].startswith("bigint"), cols
    got_pg = {
        rid: (price, qty)
        for rid, price, qty in _pg(
            postgres, "kl_money", "select id, price, inventory_quantity from public.catalog_variants"
        )
    }
    assert got_pg == got


def _asked(sb, endpoint: str) -> list[str]:
    return [unquote(q) for _, name, q in sb.state.log if name == endpoint]


def test_variants_get_their_item_from_the_items_side(make_sandbox, tmp_path):
    sb = make_sandbox(scale="tiny", rate_limits="off", seed=8)
    page = http_get(sb.base_url, "/api/catalog-variants?page%5Bsize%5D=5").json["data"]
    assert all(set(v["relationships"]["item"]) == {"links"} for v in page)  # as recorded: links, no data
    db = str(tmp_path / "k.duckdb")
    assert ingest(sb, "catalog-variants", db) == 0
    got = assert_equals_truth(db, sb, "catalog-variants")
    assert got and all(r["item_id"] for r in got.values())
    items = len(truth.records(sb.state, "catalog-items"))
    listing = _asked(sb, "catalog-items")
    assert len(listing) == -(-items // 100)  # the items once, 100 a page, each naming its variants
    assert all(
        "include=variants" in q and "fields[catalog-item]=id" in q and "fields[catalog-variant]=id" in q
        for q in listing
    )
    assert not _asked(sb, "catalog-item-variants")  # the include named every variant: no request per item
    http_post(sb.base_url, "/__sandbox/clock/advance?seconds=86400")  # new and touched variants
    sb.state.log.clear()
    assert ingest(sb, "catalog-variants", db) == 0
    assert all(r["item_id"] for r in assert_equals_truth(db, sb, "catalog-variants").values())
    assert len(_asked(sb, "catalog-items")) == -(-items // 100)


def test_variants_an_include_leaves_out_are_asked_per_item(make_sandbox, tmp_path):
    sb = make_sandbox(scale="tiny", rate_limits="off", seed=8, include_limit=1)  # an item's include names one variant
    db = str(tmp_path / "k.duckdb")
    assert ingest(sb, "catalog-variants", db) == 0
    got = assert_equals_truth(db, sb, "catalog-variants")
    assert got and all(r["item_id"] for r in got.values())
    items = len(truth.records(sb.state, "catalog-items"))
    assert len(_asked(sb, "catalog-item-variants")) == items  # each item's relationship endpoint once


def test_the_first_page_of_lists_has_a_prev_link_and_the_client_never_follows_it(make_sandbox, tmp_path):
    sb = make_sandbox(scale="tiny", rate_limits="off", seed=3)
    first = http_get(sb.base_url, "/api/lists?page%5Bsize%5D=5").json["links"]
    assert first["prev"] and "page%5Bcursor%5D=%3CFilters" in first["prev"] and first["next"]  # as recorded
    assert http_get(sb.base_url, first["prev"].split(sb.base_url, 1)[-1]).status == 400  # no cursor to follow
    sb.state.log.clear()
    db = str(tmp_path / "k.duckdb")
    assert ingest(sb, "lists", db) == 0
    assert_equals_truth(db, sb, "lists")
    assert not any("<Filters" in q for q in _asked(sb, "lists"))


MICRO = ("profiles", "templates", "universal-content", "mapped-metrics", "catalog-items")


def _has_micro(value) -> bool:
    return value is not None and value.microsecond != 0


def test_microsecond_records_on_slice_window_and_cursor_edges_are_loaded_once(make_sandbox, tmp_path):
    sb = make_sandbox(scale="tiny,profiles=3000", rate_limits="off", seed=11, filter_precision="second")
    db = str(tmp_path / "k.duckdb")
    # a profile whose update time has microseconds: the first run ends on its second, 10:00:00 for 10:00:00.400
    edge = next(r for r in sorted(truth.records(sb.state, "profiles"), key=lambda r: r["attributes"]["updated"])[1000:]
                if ".0" not in r["attributes"]["updated"][19:] and "." in r["attributes"]["updated"])  # fmt: skip
    cut = edge["attributes"]["updated"][:19] + "+00:00"
    tables = ",".join(MICRO)
    bounded = ",".join(n for n in MICRO if TABLES[n].splittable)  # the server filters both ends: slices and windows
    assert ingest(sb, bounded, db, "--interval-start", "2020-01-01", "--interval-end", cut, "--checkpoint-rows", "1000",
                  "--extract-parallelism", "6") == 0  # fmt: skip
    assert edge["id"] not in {r[0] for r in _query(db, "select id from profiles")}  # after the end: the next run's
    assert ingest(sb, tables, db, "--checkpoint-rows", "1000", "--extract-parallelism", "6") == 0  # resumes at the cut
    for name in MICRO:
        got = assert_equals_truth(db, sb, name)  # nothing lost, and no key twice (rows() fails on a duplicate)
        cursor = TABLES[name].cursor
        assert any(_has_micro(r[cursor]) for r in got.values()), f"{name}: no microsecond timestamps to test with"
    for _ in range(3):  # the clock moves: new records and touched ones, many with microseconds
        before = sandbox_now(sb)
        http_post(sb.base_url, "/__sandbox/clock/advance?seconds=7200")
        assert ingest(sb, tables, db, "--checkpoint-rows", "1000", "--extract-parallelism", "6") == 0
        for name in MICRO:
            got = assert_equals_truth(db, sb, name)
            touched = [r for r in got.values() if r[TABLES[name].cursor] >= before]
            assert touched, f"{name}: nothing new after the clock moved"
            if (
                name == "profiles"
            ):  # enough touched to have some with microseconds (the first of a batch is on a minute)
                assert any(_has_micro(r["updated"]) for r in touched)
    for *_, query in list(sb.state.log):
        assert not re_fraction.search(unquote(query))  # filter bounds in whole seconds
