"""Switching from ingestr (issue #27): every flag of ingestr's current CLI is accepted (implemented where it means
something for a source like Klaviyo, a note otherwise), ingestr's --columns renames and type names, and all of
ingestr's mask algorithms (the 13 text ones byte for byte as ingestr's masker writes them)."""

from __future__ import annotations

import hashlib
import hmac
import os
import re
from datetime import UTC, date, datetime

import duckdb
import pyarrow as pa
import pytest

from omniload.transform import Transform

from .conftest import ROOT, run_cli, source_uri
from .helpers import assert_equals_truth, column_types, expected_rows, rows

# every flag of ingestr's ingest command (bruin-data/ingestr cmd/ingest.go) that omniload refused before issue #27,
# with a value, and what omniload says about it (None: it is implemented, no note)
INGESTR_FLAGS = [
    (["--schema-contract", "evolve"], None),
    (["--schema-naming", "snake_case"], "--schema-naming snake_case is what omniload does"),
    (["--trim-whitespace"], None),
    (["--staging-dataset", "stage_x"], None),
    (["--disable-prestaging"], "--disable-prestaging is accepted"),
    (["--no-inference"], "--no-inference is accepted"),
    (["--query-annotations", '{"pipeline":"p"}'], "--query-annotations is accepted"),
    (["--incremental-predicate", "target.updated > '2000-01-01'"], None),
    (["--extract-partition-by", "updated"], "--extract-partition-by is accepted"),
    (["--extract-partition-interval", "7d"], "--extract-partition-interval is accepted"),
    (["--refresh-id", "r1"], "--refresh-id is accepted"),
    (["--cdc-table-naming", "prefixed"], "--cdc-table-naming is accepted"),
]


def _ingest(sb, table: str, db, *extra: str):
    return run_cli("ingest", "--source-uri", source_uri(sb), "--source-table", table, "--dest-uri", f"duckdb:///{db}",
                   "--progress", "log", "--yes", *extra)  # fmt: skip


def test_every_ingestr_flag_is_accepted(sandbox, tmp_path):
    db = tmp_path / "flags.duckdb"
    with duckdb.connect(
        str(db)
    ) as con:  # the user's own table in the staging schema named: the schema is theirs, it stays
        con.execute("create schema stage_x; create table stage_x.keep as select 1 as one")
    proc = _ingest(sandbox, "metrics", db, *[a for args, _ in INGESTR_FLAGS for a in args])
    assert proc.returncode == 0, proc.stderr
    for args, note in INGESTR_FLAGS:
        if note:
            assert f"note: {note}" in proc.stderr, (args, proc.stderr)
    assert_equals_truth(str(db), sandbox, "metrics")
    con = duckdb.connect(str(db), read_only=True)
    schemas = {r[0] for r in con.execute("select schema_name from information_schema.schemata").fetchall()}
    assert "main_staging" not in schemas  # --staging-dataset: dlt stages in the schema named, never <schema>_staging
    tables = con.execute("select table_schema || '.' || table_name from information_schema.tables").fetchall()
    assert {("stage_x.metrics",), ("stage_x.keep",)} <= set(tables)  # dlt staged there (emptied after the merge)
    assert con.execute("select count(*) from stage_x.metrics").fetchone() == (0,)


def test_ingestr_relative_folder_and_no_staging_schema_left(sandbox, tmp_path):
    proc = run_cli("ingest", "--source-uri", source_uri(sandbox), "--source-table", "metrics",
                   "--dest-uri", f"csv://{os.path.relpath(tmp_path / 'out', ROOT)}")  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    assert list((tmp_path / "out").glob("*/metrics/*.csv")), "csv://out writes ./out, as ingestr's csv://out"
    db = tmp_path / "s.duckdb"
    for _ in range(2):  # a first load, then a merge through dlt's staging schema
        assert _ingest(sandbox, "metrics,profiles", db).returncode == 0
    con = duckdb.connect(str(db), read_only=True)
    schemas = {r[0] for r in con.execute("select schema_name from information_schema.schemata").fetchall()}
    assert schemas == {"main", "information_schema", "pg_catalog"}, schemas
    assert_equals_truth(str(db), sandbox, "profiles")


@pytest.mark.parametrize("extra,fragment", [
    (["--schema-contract", "lenient"], "argument --schema-contract: invalid choice: 'lenient'"),
    (["--schema-naming", "camel"], "argument --schema-naming: invalid choice: 'camel'"),
    (["--staging-dataset", "bad-name"], "--staging-dataset: 'bad-name' is not a valid identifier"),
    (["--columns", "x:varchar2:first_name"], "--columns: 'x:varchar2:first_name' must be name:type, name:type:source"),
    (["--columns", "id::first_name"], "would have two columns named 'id'"),
    (["--columns", "uid::id"], "'id' is a key of table 'profiles'"),
    (["--mask", "email:scramble"], "--mask: 'email:scramble' must be column:algorithm[:param]"),
])  # fmt: skip
def test_bad_values_of_ingestr_flags_exit_2(sandbox, tmp_path, extra, fragment):
    proc = _ingest(sandbox, "profiles", tmp_path / "x.duckdb", *extra)
    assert proc.returncode == 2 and fragment in proc.stderr, proc.stderr
    assert len(proc.stderr.strip().splitlines()) == 1 and not (tmp_path / "x.duckdb").exists()


def test_columns_renames_string_type_trim_and_typed_masks(sandbox, tmp_path):
    db = tmp_path / "c.duckdb"
    proc = _ingest(sandbox, "profiles", db, "--columns", "given_name:string:first_name,surname::last_name,created:string",
                   "--trim-whitespace", "--mask", "email:sequential", "--mask", "updated_at_year:year_only",
                   "--mask", "created:month_year", "--schema-contract", "evolve")  # fmt: skip
    # a mask names a column as the source has it: updated_at_year is none of profiles' columns
    assert proc.returncode == 2 and "table 'profiles' has no column 'updated_at_year'" in proc.stderr, proc.stderr
    proc = _ingest(sandbox, "profiles", db, "--columns", "given_name:string:first_name,surname::last_name,created:string",
                   "--trim-whitespace", "--mask", "email:sequential", "--mask", "last_event_date:year_only",
                   "--schema-naming", "auto")  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    assert "note: --schema-naming auto is what omniload does" in proc.stderr
    types = column_types(str(db), "profiles")
    assert "first_name" not in types and "last_name" not in types
    assert types["given_name"] == types["surname"] == types["created"] == "VARCHAR"
    assert types["email"] == types["last_event_date"] == "BIGINT"
    got, want = rows(str(db), "profiles"), expected_rows(sandbox, "profiles")
    assert set(got) == set(want)
    numbers = {(exp["email"], got[rid]["email"]) for rid, exp in want.items() if exp["email"] is not None}
    assert len({e for e, _ in numbers}) == len({n for _, n in numbers}) == len(numbers)  # one number per address
    for rid, exp in want.items():
        row = got[rid]
        strip = lambda v: v.strip() if isinstance(v, str) else v  # noqa: E731
        assert row["given_name"] == strip(exp["first_name"]) and row["surname"] == strip(exp["last_name"])
        assert row["last_event_date"] == (exp["last_event_date"].year if exp["last_event_date"] else None)
        assert (row["email"] is None) == (exp["email"] is None)
        assert row["updated"] == exp["updated"]


# the 13 algorithms ingestr's masker and omniload share: outputs written out from ingestr's rules
# (pkg/transformer/column_masker.go), byte for byte
SHARED = [
    ("hash", None, "alice@example.com", hashlib.sha256(b"alice@example.com").hexdigest()),
    ("sha256", None, "x", hashlib.sha256(b"x").hexdigest()),
    ("md5", None, "x", hashlib.md5(b"x").hexdigest()),
    ("hmac", "k3y!", "x", hmac.new(b"k3y!", b"x", hashlib.sha256).hexdigest()),
    ("email", None, "alice@example.com", "a***e@example.com"),
    ("email", None, "al@x.io", "**@x.io"),
    ("phone", None, "+1 (415) 555-0100", "141-***-****"),
    ("phone", None, "555-01", "*****"),
    ("credit_card", None, "4111 1111 1111 1234", "************1234"),
    ("ssn", None, "123-45-6789", "***-**-6789"),
    ("redact", None, "anything", "REDACTED"),
    ("stars", None, "héllo", "*****"),
    ("fixed", "N/A", "x", "N/A"),
    ("fixed", None, "x", "MASKED"),
    ("partial", "3", "abcdefghij", "abc****hij"),
    ("partial", None, "abcd", "****"),
    ("first_letter", None, "Zoë", "Z**"),
]


def _masked(spec: str, values, typ=None):
    t = Transform.parse([], [f"c:{spec}"])
    return t.apply(pa.table({"c": pa.array(values, typ)})).column("c")


@pytest.mark.parametrize("algorithm,param,value,want", SHARED)
def test_shared_masks_are_byte_identical_to_ingestr(algorithm, param, value, want):
    spec = algorithm if param is None else f"{algorithm}:{param}"
    assert _masked(spec, [value, None, ""]).to_pylist() == [want, None, ""]


def test_ingestr_only_masks_follow_its_rules():
    ts = pa.timestamp("us", tz="UTC")
    assert _masked("round:5", [12.5, 7.4, -12.5, None]).to_pylist() == [15, 5, -15, None]  # halves away from zero
    assert _masked("round", [1234], pa.int64()).to_pylist() == [1230]
    assert _masked("range", [250, -1, 99.9]).to_pylist() == ["200-300", "-100-0", "0-100"]
    assert _masked("range:1000", ["2500"]).to_pylist() == ["2000-3000"]
    assert _masked("year_only", [datetime(2024, 3, 1, tzinfo=UTC), None], ts).to_pylist() == [2024, None]
    assert _masked("month_year", ["2024-05-06T10:00:00Z", "not a date"]).to_pylist() == ["2024-05", None]
    seq = _masked("sequential", ["b", "a", "b", None, "c"])
    assert seq.type == pa.int64() and seq.to_pylist() == [1, 2, 1, None, 3]
    uu = _masked("uuid", ["p", "q", "p"]).to_pylist()
    assert uu[0] == uu[2] != uu[1] and all(re.fullmatch(r"[0-9a-f-]{36}", u) for u in uu)
    rnd = _masked("random", [123, 9, -4567], pa.int64()).to_pylist()
    assert 100 <= rnd[0] < 1000 and 1 <= rnd[1] < 10 and 1000 <= rnd[2] < 10000
    text = _masked("random", ["héllo"]).to_pylist()[0]
    assert len(text) == 5 and text.isalnum() and text.isascii()
    noisy = _masked("noise:0.5", [100.0, 0.0, None]).to_pylist()
    assert 50 <= noisy[0] <= 150 and -0.5 <= noisy[1] <= 0.5 and noisy[2] is None
    shifted = _masked("date_shift:3", [date(2024, 1, 1)], pa.date32())
    assert shifted.type == pa.date32() and abs((shifted.to_pylist()[0] - date(2024, 1, 1)).days) <= 3
    on_text = _masked("date_shift:3", ["2024-01-10 12:00"]).to_pylist()[0]
    assert re.fullmatch(r"2024-01-(0[7-9]|1[0-3])", on_text)


def test_schema_contract_freeze_refuses_a_change_of_columns(sandbox, tmp_path):
    db = tmp_path / "f.duckdb"
    proc = _ingest(sandbox, "metrics", db, "--schema-contract", "freeze")  # a new table is no change
    assert proc.returncode == 0, proc.stderr
    proc = _ingest(sandbox, "metrics", db, "--schema-contract", "freeze", "--mask", "name:sequential",
                   "--incremental-strategy", "replace")  # fmt: skip
    assert proc.returncode == 1
    assert ("which --schema-contract freeze refuses; use evolve to allow it" in proc.stderr
            and "failed error: table 'metrics'" in proc.stderr), proc.stderr  # fmt: skip
    assert_equals_truth(str(db), sandbox, "metrics")  # the table as it was


def test_incremental_predicate_narrows_the_merge_match(make_sandbox, tmp_path):
    from .conftest import http_post

    sb = make_sandbox(scale="tiny", rate_limits="off", seed=7)
    db = tmp_path / "p.duckdb"
    assert _ingest(sb, "profiles", db).returncode == 0
    http_post(sb.base_url, "/__sandbox/clock/advance?seconds=86400")
    proc = _ingest(
        sb, "profiles", db, "--incremental-predicate", "target.updated >= '2000-01-01'"
    )  # every row: as without
    assert proc.returncode == 0, proc.stderr
    assert_equals_truth(str(db), sb, "profiles")
    http_post(sb.base_url, "/__sandbox/clock/advance?seconds=86400")
    before = expected_rows(sb, "profiles")
    proc = _ingest(
        sb, "profiles", db, "--incremental-predicate", "target.updated > '2999-01-01'"
    )  # no row: none matched
    assert proc.returncode == 0, proc.stderr
    with duckdb.connect(str(db), read_only=True) as con:
        twice = {r[0] for r in con.execute("select id from profiles group by id having count(*) = 2").fetchall()}
    fetched = int(re.search(r"\[profiles\] finish: .*\((\d+) fetched\)", proc.stderr).group(1))
    assert twice and len(twice) == fetched  # each re-read record added beside its old row, as ingestr warns
    assert twice <= set(before)
    proc = _ingest(sb, "profiles", db, "--incremental-predicate", "x", "--full-refresh")
    assert proc.returncode == 2 and "--incremental-predicate cannot be combined with --full-refresh" in proc.stderr
