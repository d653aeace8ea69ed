"""Values as the API sent them, over real HTTP (the sandbox's data faults strike the first record of each page):
records without their cursor are loaded and counted, values of an unexpected type land as their JSON text,
JSON nested deeper than a parser recurses lands whole, and NUL characters reach PostgreSQL without them."""

from __future__ import annotations

import json
import re

from klaviyo_sandbox.limits import DEEP, DEEP_MARK, alter
from omniload.sources.klaviyo.tables import TABLES
from omniload.types import TEXT

from .conftest import run_cli, source_uri
from .helpers import _norm, expected_rows, ingest, rows
from .test_destinations import _pg_rows


def _each_row_is_truth_or_altered(got: dict, sb, name: str, altered) -> int:
    """Every record landed once, each as the sandbox holds it or (the first record of a page) as ``altered`` of its
    attributes says it must land; returns how many landed altered."""
    cols = TABLES[name].all_columns
    plain, odd = expected_rows(sb, name), expected_rows(sb, name, alter=altered)
    assert set(got) == set(plain), f"{name}: {len(set(plain) - set(got))} missing, {len(set(got) - set(plain))} extra"
    n = 0
    for rid, want in plain.items():
        actual = {c: _norm(got[rid].get(c), cols[c]) for c in want}
        if actual != want:
            assert actual == odd[rid], f"{name} {rid}: {actual} != {odd[rid]}"
            n += 1
    return n


def _json_lines(text: str) -> list[dict]:
    return [json.loads(line) for line in text.splitlines() if line.startswith("{")]


def test_records_without_their_cursor_are_loaded_counted_and_merged(make_sandbox, tmp_path):
    sb = make_sandbox(scale="tiny", rate_limits="off", faults="nocursor=1")
    db = str(tmp_path / "k.duckdb")
    tables = ("flows", "templates", "custom-metrics", "profiles")
    args = ("ingest", "--source-uri", source_uri(sb), "--source-table", ",".join(tables), "--dest-uri", f"duckdb:///{db}",
            "--progress", "json")  # fmt: skip
    proc = run_cli(*args, "--interval-start", "2000-01-01")
    assert proc.returncode == 0, proc.stderr
    summary = {r["table"]: r for r in _json_lines(proc.stdout) if r["event"] == "summary"}
    notes = {r["table"]: r["message"] for r in _json_lines(proc.stderr) if r["event"] == "note"}
    for name in tables:
        got = rows(db, name.replace("-", "_"))
        lacking = _each_row_is_truth_or_altered(got, sb, name, lambda a: alter(a, "nocursor"))
        assert lacking >= 1 and sum(r["updated"] is None for r in got.values()) == lacking
        assert summary[name]["status"] == "ok" and summary[name]["no_cursor"] == lacking
        assert notes[name].startswith(f"{lacking:,} records came without a value for 'updated': loaded")
    proc = run_cli(*args[:-1], "log")  # incremental: the records come again (without their cursor or with it), merged
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.splitlines()[0].split()[-3:] == ["no", "cursor", "duration"]  # custom metrics: read whole again
    for name in tables:
        assert set(rows(db, name.replace("-", "_"))) == set(expected_rows(sb, name))  # rows() refuses a duplicate key


def _landed_as_json_text(name: str, kind: str):
    """The attributes ``kind`` sends, as they must land: a value that is not text in a text column as its JSON text."""
    cols = TABLES[name].columns

    def landed(attrs: dict) -> dict:
        out = alter(attrs, kind)
        return {k: json.dumps(v, separators=(",", ":")) if cols.get(k) == TEXT and v is not None and not isinstance(v, str)
                else v for k, v in out.items()}  # fmt: skip

    return landed


def test_values_of_an_unexpected_type_land_as_their_json_text(make_sandbox, tmp_path):
    sb = make_sandbox(scale="tiny", rate_limits="off", faults="oddtype=1")
    db = str(tmp_path / "k.duckdb")
    assert ingest(sb, "profiles", db) == 0
    got = rows(db, "profiles")
    assert _each_row_is_truth_or_altered(got, sb, "profiles", _landed_as_json_text("profiles", "oddtype")) >= 1
    texts = {v for r in got.values() for v in r.values() if isinstance(v, str)}
    assert {"123456789012345678901234567890", '{"a":1,"b":true}', "true"} <= texts  # not 1.2345678901234568e+29, 'True'
    assert any('"big":123456789012345678901234567890' in r["location"] or "" for r in got.values() if r["location"])


def test_a_number_column_that_cannot_hold_the_value_fails_the_table_naming_the_record(make_sandbox, tmp_path):
    sb = make_sandbox(scale="tiny", rate_limits="off", faults="oddnumber=1")
    proc = run_cli("ingest", "--source-uri", source_uri(sb), "--source-table", "events", "--dest-uri",
                   f"duckdb:///{tmp_path}/k.duckdb")  # fmt: skip
    assert proc.returncode == 1 and "internal error" not in proc.stderr
    assert (
        "Traceback" not in proc.stderr and "Exception ignored" not in proc.stderr
    )  # the reader's thread closed quietly
    found = re.search(r"table 'events': record '(\w+)' holds 123456789012345678901234567890 in column 'timestamp', "
                      r"which is bigint \(page \d+ of http://", proc.stderr)  # fmt: skip
    assert found and found.group(1) in expected_rows(sb, "events"), proc.stderr


def test_json_nested_1100_deep_lands_whole_as_json_text(make_sandbox, tmp_path):
    sb = make_sandbox(scale="tiny", rate_limits="off", faults="deep=1")
    db = str(tmp_path / "k.duckdb")
    assert ingest(sb, "profiles,flows", db) == 0
    deep = DEEP.decode()
    for name in ("profiles", "flows"):  # profiles: in a JSON column; flows (no object attribute): in the text 'name'
        cols = TABLES[name].columns
        got = rows(db, name)
        found = 0
        for row in got.values():  # the deep value landed exactly as sent: a marker (JSON text for JSON) stands for it
            for col, value in row.items():
                if value == deep:
                    row[col] = DEEP_MARK if cols[col] == TEXT else json.dumps(DEEP_MARK)
                    found += 1
        assert found >= 1

        def landed(attrs: dict, cols: dict = cols) -> dict:
            out = alter(attrs, "deep")
            return {k: json.dumps(v) if v == DEEP_MARK and cols[k] != TEXT else v for k, v in out.items()}

        assert _each_row_is_truth_or_altered(got, sb, name, landed) == found


def _without_nul(value):
    if isinstance(value, str):
        return value.replace("\x00", "")
    if isinstance(value, dict):
        return {_without_nul(k): _without_nul(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_without_nul(v) for v in value]
    return value


def test_nul_characters_are_removed_for_postgresql_and_kept_by_duckdb(postgres, make_sandbox, tmp_path):
    sb = make_sandbox(scale="tiny", rate_limits="off", faults="nul=1")
    postgres.create_database("kl_nul")
    proc = run_cli("ingest", "--source-uri", source_uri(sb), "--source-table", "profiles", "--dest-uri",
                   postgres.uri("kl_nul"), "--progress", "log")  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    got = _pg_rows(postgres, "kl_nul", "public", "profiles")
    # a text column ("a\u0000b" lands "ab") and a JSON property ("x\u0000y" lands "xy"): the rest of each value kept
    assert _each_row_is_truth_or_altered(got, sb, "profiles", lambda a: _without_nul(alter(a, "nul"))) >= 1
    assert any(r["location"] and r["location"].get("nul") == "xy" for r in got.values())
    db = str(tmp_path / "k.duckdb")
    assert ingest(sb, "profiles", db) == 0  # DuckDB stores NUL: the values land as sent
    assert _each_row_is_truth_or_altered(rows(db, "profiles"), sb, "profiles", lambda a: alter(a, "nul")) >= 1
