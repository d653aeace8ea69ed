"""properties=columns on single batches: the by-property fast path (lift.py) gives the columns, types and values
the row-by-row rules give where they differ (a number column's type, the order columns are claimed in), and the
raw JSON column builder (columns.py) keeps NULLs and refuses text that is not UTF-8."""

from __future__ import annotations

import json

import msgspec
import pyarrow as pa

from omniload.sources.klaviyo.columns import RawColumn
from omniload.sources.klaviyo.lift import Lifter


def _lift(docs: list, cap: int = 100) -> tuple[dict, dict, list[str]]:
    notes: list[str] = []
    lifter = Lifter("events", cap, {}, notes.append)
    texts = [d if isinstance(d, str) or d is None else json.dumps(d) for d in docs]
    table = lifter.apply(
        pa.table({"id": [str(i) for i in range(len(docs))], "event_properties": pa.array(texts, pa.string())})
    )
    lifted = {c: table.column(c).to_pylist() for c in table.column_names if c.startswith("property_")}
    return lifted, lifter.state()["property_columns"], notes


def test_numbers_take_one_double_column_when_every_property_infers():
    lifted, types, _ = _lift([{"i": 1, "h": {"x": 1}}, {"i": 2.5, "h": {"x": 2}}])
    assert types == {"property_i": "double", "property_h": "json"}
    assert lifted["property_i"] == [1.0, 2.5]
    assert lifted["property_h"] == ['{"x":1}', '{"x":2}']


def test_a_batch_that_does_not_infer_reads_row_by_row():
    # 'h' holds objects whose fields differ in type: no struct for the batch, so the first value's kind decides 'i'
    lifted, types, _ = _lift([{"i": 1, "h": {"x": 1}}, {"i": 2.5, "h": {"x": "s"}}])
    assert types == {"property_i": "bigint", "property_h": "json", "property_i__v_json": "json"}
    assert lifted["property_i"] == [1, None] and lifted["property_i__v_json"] == [None, "2.5"]
    assert lifted["property_h"] == ['{"x":1}', '{"x":"s"}']


def test_json_text_nulls_and_rows_that_are_not_objects():
    lifted, types, _ = _lift([{"n": [1, 109.70], "s": "a"}, None, "[1, 2]", '"text"', {"n": None, "s": "b"}])
    assert types == {"property_n": "json", "property_s": "text"}
    assert lifted["property_n"] == ["[1,109.7]", None, None, None, None]
    assert lifted["property_s"] == ["a", None, None, None, "b"]


def test_the_cap_goes_to_the_first_property_seen_even_when_null():
    lifted, types, notes = _lift([{"a": None, "b": 1}, {"a": 2}], cap=1)
    assert types == {"property_a": "bigint"} and lifted["property_a"] == [None, 2]
    assert len(notes) == 1 and "property 'b' is not lifted" in notes[0]


def test_raw_column_keeps_nulls_and_refuses_bad_utf8():
    raws = [msgspec.Raw(b'{"a":1}'), msgspec.Raw(b"null"), msgspec.Raw(b'"nul"'), msgspec.Raw(b"[]")]
    assert RawColumn(raws).text().to_pylist() == ['{"a":1}', None, '"nul"', "[]"]
    assert RawColumn([msgspec.Raw(b'"\xff"')]).text() is None
