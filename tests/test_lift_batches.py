"""properties=columns on single batches: the by-property fast path (lift.py) gives the columns, types and values
the row-by-row rules give where they differ (a number column's type, the order columns are claimed in), and the
raw JSON column builder (columns.py) keeps NULLs and refuses text that is not UTF-8."""

from __future__ import annotations

import json

import msgspec
import pyarrow as pa
import pytest

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


class _RowsRead(Lifter):
    """The lifter without its struct decoder of known properties: every batch read as before it existed."""

    def _by_known(self, column, arrays) -> bool:
        return False


def _varied(seed: int, n: int, late: bool = False, odd: bool = False) -> list:
    """Rows of varied properties as JSON text, written in varied ways (spaces, escapes, ``1.50``, a key twice);
    ``late``: two properties more, ``odd``: a few values not of their column's type."""
    import random

    rng = random.Random(seed)
    scalars = [0, 7, -3, 2**63 - 1, -(2**63), 2**63, 2**70, 1.5, 109.70, -0.0, 1e300, 1e-7, 3.0, True, False, None,
               "", "Größe 42", 'a"b', "line\nnext", "é\u2028😀", "12"]  # fmt: skip
    nested = [[], {}, [1, 2.50, "x"], {"b": 1, "a": [None, True]}, "DUP", [{"deep": {"er": [1e-7, 2**64]}}],
              {"é": "\u00e9"}, [2**70, 0.1, -0.0]]  # fmt: skip
    rows: list = []
    for i in range(n):
        if rng.random() < 0.03:
            rows.append(rng.choice([None, "null", "{}"]))
            continue
        props = {"Item Count": rng.choice([1, 2, 2**63 - 1]), "price": rng.choice([1.5, 2, 19.99, None, 2**53]),
                 "name": f"n{i} ü\t", "flag": rng.random() < 0.5, "items": rng.choice(nested), "$value": rng.random(),
                 "Größe": rng.choice(["S", "M", None]), "any": rng.choice(scalars + nested)}  # fmt: skip
        if late:
            props["new one"] = rng.choice(["ß", "\u00e9", "x y"])
            props["item_count"] = 5  # the same column name as 'Item Count': kept in the JSON only
        if odd and rng.random() < 0.05:
            props[rng.choice(["Item Count", "price", "name", "flag"])] = rng.choice(
                [2**63, "many", 1.25, 7, {}, True, 1e400]
            )
        if rng.random() < 0.1:
            del props["price"]
        text = json.dumps(props, ensure_ascii=rng.random() < 0.5, separators=rng.choice([(",", ":"), (", ", ": ")]))
        text = text.replace('"DUP"', '{"k": 1, "k":2}')  # a key twice: the last value counts
        rows.append(text.replace("2.5,", "2.50,").replace("109.7", "109.70"))
    return rows


def _batches() -> list[list]:
    """Batches whose properties settle (the struct decoder reads them), then change type, then gain properties."""
    first = [json.dumps({"Item Count": 1, "price": 2.5, "name": "x", "flag": True, "items": [1], "any": [1]})] * 20
    return [first, _varied(1, 400), first, _varied(2, 400, odd=True), _varied(3, 400),
            [json.dumps({"Item Count": "many", "price": "free"}), *first], _varied(4, 500), _varied(5, 500, late=True),
            _varied(6, 500, late=True), [None, "[1]", "3", *first], _varied(7, 300, late=True, odd=True),
            _varied(8, 300, late=True)]  # fmt: skip


@pytest.mark.parametrize(
    ("table", "source", "cap"), [("events", "event_properties", 100), ("profiles", "properties", 3)]
)
def test_the_known_properties_decoder_lifts_as_the_row_reading_does(table, source, cap):
    notes: list[str] = []
    fast, slow = Lifter(table, cap, {}, notes.append), _RowsRead(table, cap, {}, notes.append)
    fast.reserved = slow.reserved = {"id", source, "property_value"}
    read_fast = []
    for n, batch in enumerate(_batches()):
        rows = pa.table({"id": [str(i) for i in range(len(batch))], source: pa.array(batch, pa.string())})
        if fast.cols and fast._by_known(rows.column(source), {}):
            read_fast.append(n)
        got, want = fast.apply(rows), slow.apply(rows)
        assert got.schema == want.schema and got.schema.metadata == want.schema.metadata
        for name in want.column_names:
            assert got.column(name).to_pylist() == want.column(name).to_pylist(), name
        assert fast.state() == slow.state()
    # the others have a new property, a value of another type (in a lifted property) or a row not an object
    assert set(read_fast) >= {2, 4, 6, 8, 11} and (cap < 100 or read_fast == [2, 4, 6, 8, 11])
    types = fast.state()["property_columns"]
    if cap == 100:
        assert types["property_item_count"] == "bigint" and "property_item_count__v_json" in types
        assert types["property_items"] == "json" and types["property_any"] in ("bigint", "double", "text", "json")
    else:
        assert {c for c in types if not c.endswith("__v_json")} == {"custom_item_count", "custom_price", "custom_name"}
        assert notes and all("property_columns_max" in note for note in notes)


def _rest(lifter: Lifter, docs: list) -> list:
    texts = [d if isinstance(d, str) or d is None else json.dumps(d) for d in docs]
    table = lifter.apply(pa.table({"event_properties": pa.array(texts, pa.string())}))
    return [None if t is None else json.loads(t) for t in table.column("event_properties").to_pylist()]


def test_the_json_column_keeps_only_what_no_column_holds():
    # cap 2: 'a' and 'b' lifted, 'c' stays; the well-known '$value' (a number) and '$event_id' (text) are in their own
    # columns (properties.py) unless their value is of another type; a null is as absent; a row not an object whole
    lifter = Lifter("events", 2, {}, lambda _: None)
    lifter.reserved = {"property_value", "property_event_id"}
    docs = [
        {"$event_id": "e1", "$value": 1.5, "a": 1, "b": "x"},
        {"$event_id": 7, "$value": "12", "a": 2, "c": [1], "b": None},
        {"$value": 3, "a": 3, "c": None},
        None,
        {},
        "[1, 2]",
    ]
    want = [None, {"$event_id": 7, "$value": "12", "c": [1]}, None, None, None, [1, 2]]
    assert _rest(lifter, docs) == want
    assert _rest(lifter, docs[:3]) == want[:3]  # a later batch, every property known: the struct reader (_Known)
    assert lifter._known is not None and lifter._known.size == 5
    later = [{"$event_id": "e9", "$value": 2, "a": 5, "c": "z"}, {"$event_id": "e8", "b": "y"}]
    assert _rest(lifter, later) == [{"c": "z"}, None]  # well-known values of their columns' type: not kept


@pytest.mark.parametrize("batches", [[[{"a": 1.5}], [{"a": 2**53 + 1}, {"a": 2}]], [[{"a": 1.5}, {"a": -(2**60) - 1}]],
                                     [[{"a": 1.5}], [{"a": 2.5, "b": 1}, {"a": 2**53 + 1}]]],
                         ids=["later-batch", "same-batch", "later-batch-mixed"])  # fmt: skip
def test_an_integer_a_double_column_cannot_hold_exactly_is_in_its_variant(batches):
    """A double column holds an integer only where a double holds it exactly (|n| <= 2**53, Arrow's own bound);
    another one lands, whole, in the variant: the JSON column no longer keeps it, so a rounded double would lose it."""
    lifter = Lifter("events", 100, {}, lambda _: None)
    got: list = []
    for docs in batches:
        table = lifter.apply(pa.table({"event_properties": pa.array([json.dumps(d) for d in docs], pa.string())}))
        a = table.column("property_a").to_pylist()
        v = (
            table.column("property_a__v_json").to_pylist()
            if "property_a__v_json" in table.column_names
            else [None] * len(a)
        )
        got += [(x, None if y is None else json.loads(y)) for x, y in zip(a, v, strict=True)]
        assert not any(t and "a" in json.loads(t) for t in table.column("event_properties").to_pylist())
    want = [(d["a"], None) if type(d["a"]) is float or abs(d["a"]) <= 2**53 else (None, d["a"])
            for docs in batches for d in docs]  # fmt: skip
    assert [(a if a is None else float(a), v) for a, v in got] == [(a if a is None else float(a), v) for a, v in want]
    assert lifter.state()["property_columns"]["property_a"] == "double"


def test_a_value_its_double_column_cannot_hold_exactly_stays_in_the_json_column():
    """``$value`` leaves the JSON column only as a number ``property_value`` (a double) holds exactly: an integer of
    more than 15 digits stays whole there, in a first batch (_Staying) as in a later one (_Known)."""
    lifter = Lifter("events", 100, {}, lambda _: None)
    lifter.reserved = {"property_value"}
    assert _rest(lifter, [{"$value": 2**60, "a": 1}, {"$value": 1.5, "a": 2}]) == [{"$value": 2**60}, None]
    later = [{"$value": 7, "a": 3}, {"$value": -(10**15), "a": 4}, {"$value": 10**15 - 1, "a": 5}, {"$value": 1e20}]
    assert _rest(lifter, later) == [None, {"$value": -(10**15)}, None, None]
    assert lifter._known is not None and lifter._known.size == 2  # that batch was read by the struct reader
