"""Values as the API sent them, over real HTTP (the sandbox's data faults strike the first record of each page):
values of an unexpected type land as their JSON text, JSON nested deeper than a parser recurses lands whole."""

from __future__ import annotations

import json

from omniload.sandbox.klaviyo.limits import DEEP, DEEP_MARK, alter
from omniload.sources.klaviyo.tables import TABLES
from omniload.types import TEXT

from .helpers import _norm, expected_rows, ingest, rows


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

        def landed(attrs: dict) -> dict:
            out = alter(attrs, "deep")
            return {k: json.dumps(v) if v == DEEP_MARK and cols[k] != TEXT else v for k, v in out.items()}

        assert _each_row_is_truth_or_altered(got, sb, name, landed) == found
