"""properties=columns on single batches: the by-property fast path (lift.py), the struct decoder of known properties
and the C reader (_lift.c) give the columns, types, values and JSON text the row-by-row rules give where they could
differ (a number column's type, the order columns are claimed in, JSON written otherwise than msgspec writes it), and
the raw JSON column builder (columns.py) keeps NULLs and refuses text that is not UTF-8."""

from __future__ import annotations

import json

import msgspec
import pyarrow as pa
import pytest

from omniload.sources.klaviyo import lift
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


def test_the_c_reader_is_built():
    """make install builds _lift.c (setup.py); without it every batch would be read in Python, 10x slower."""
    assert lift._read_in_c is not None


# which reader reads each of _batches(): Python's by property or by row, the struct decoder (known), C (native), C
# with rows left to Python's (a new property of values of two kinds, a value its column cannot hold, not an object)
_N, _NP, _NR = "native", "native+property", "native+row"
WANT_READ_BY = {
    ("native", 100): [_N, _N, _N, _NR, _N, _NP, _N, _N, _N, _NR, _NR, _N],
    ("native", 3): ["property", _NR, _N, _NR, _N, _NP, _N, _NR, _N, _NR, _NR, _N],  # the first: claims contested
    ("known", 100): ["property", "row", "known", "row", "known", "row", "known", "row", "known", "row", "row", "known"],
    ("known", 3): ["property", "row", "known", "row", "known", "row", "known", "row", "known", "row", "row", "known"],
}


def _fields(f: pa.Field) -> tuple:
    return f.name, f.type, f.metadata


@pytest.mark.parametrize("reader", ["native", "known"])
@pytest.mark.parametrize(
    ("table", "source", "cap"), [("events", "event_properties", 100), ("profiles", "properties", 3)]
)
def test_the_known_properties_decoder_lifts_as_the_row_reading_does(table, source, cap, reader):
    """Both readers of a batch whose properties all have their column, the C one (_Native) and the struct decoder
    (_Known), give the columns, types, values, variants and JSON text the row-by-row reading gives."""
    notes: list[str] = []
    fast, slow = Lifter(table, cap, {}, notes.append), _RowsRead(table, cap, {}, notes.append)
    fast.native = reader == "native"
    fast.reserved = slow.reserved = {"id", source, "property_value"}
    read_by = []  # which reader read each batch
    for batch in _batches():
        rows = pa.table({"id": [str(i) for i in range(len(batch))], source: pa.array(batch, pa.string())})
        got, want = fast.apply(rows), slow.apply(rows)
        read_by.append(fast.read_by)
        # (the C reader's left rows, read as a batch of their own, may make the variants in another order)
        assert got.schema.metadata == want.schema.metadata
        assert [_fields(f) for f in sorted(got.schema, key=str)] == [_fields(f) for f in sorted(want.schema, key=str)]
        assert [c for c in got.column_names if not c.endswith("__v_json")] == [
            c for c in want.column_names if not c.endswith("__v_json")
        ]
        for name in want.column_names:
            assert got.column(name).to_pylist() == want.column(name).to_pylist(), name
        assert fast.state() == slow.state()
    # the struct decoder reads the batches without a new property, a value of another type (in a lifted property) or
    # a row not an object; the C reader every batch, the first too (its properties claimed from the kinds it found),
    # but where those claims are contested (cap 3), and leaves to the Python readers the rows with a property of two
    # kinds (the row reading's rules say its type), a value its column cannot hold or that are not objects
    assert read_by == WANT_READ_BY[reader, cap]
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


@pytest.mark.parametrize("reader", ["native", "known"])
def test_the_json_column_keeps_only_what_no_column_holds(reader):
    # cap 2: 'a' and 'b' lifted, 'c' stays; the well-known '$value' (a number) and '$event_id' (text) are in their own
    # columns (properties.py) unless their value is of another type; a null is as absent; a row not an object whole
    lifter = Lifter("events", 2, {}, lambda _: None)
    lifter.native = reader == "native"
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
    assert _rest(lifter, docs[:3]) == want[:3]  # a later batch, every property known: the C reader (the struct one
    assert lifter.read_by == ("native" if reader == "native" else "row")  # refuses a well-known value not text)
    later = [{"$event_id": "e9", "$value": 2, "a": 5, "c": "z"}, {"$event_id": "e8", "b": "y"}]
    assert _rest(lifter, later) == [{"c": "z"}, None]  # well-known values of their columns' type: not kept
    assert lifter.read_by == reader


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


@pytest.mark.parametrize("reader", ["native", "known"])
def test_a_value_its_double_column_cannot_hold_exactly_stays_in_the_json_column(reader):
    """``$value`` leaves the JSON column only as a number ``property_value`` (a double) holds exactly: an integer of
    more than 15 digits stays whole there, in a first batch (_Staying) as in a later one (_Native, _Known)."""
    lifter = Lifter("events", 100, {}, lambda _: None)
    lifter.native = reader == "native"
    lifter.reserved = {"property_value"}
    assert _rest(lifter, [{"$value": 2**60, "a": 1}, {"$value": 1.5, "a": 2}]) == [{"$value": 2**60}, None]
    later = [{"$value": 7, "a": 3}, {"$value": -(10**15), "a": 4}, {"$value": 10**15 - 1, "a": 5}, {"$value": 1e20}]
    assert _rest(lifter, later) == [None, {"$value": -(10**15)}, None, None]
    assert lifter.read_by == reader  # that batch was read by the C or struct reader


def _random_json(rng, depth: int = 0) -> str:
    """A JSON value's text written in the ways an API may write it: spaces, escapes, ``1.50``, ``1e0``, ``-0``, a key
    twice, integers beyond 64 bits."""
    kind = rng.randrange(7 if depth < 3 else 4)
    if kind == 0:
        text = rng.choice(["a", "é", 'x"y', "b\\s", "\n", "\u2028", "😀", "/", "\x7f", "\x01", ""])
        return json.dumps(text, ensure_ascii=rng.random() < 0.5).replace("/", "\\/" if rng.random() < 0.3 else "/")
    if kind == 1:
        return _random_number(rng)
    if kind == 2:
        return rng.choice(["true", "false"])
    if kind == 3:
        return "null"
    sep = rng.choice([",", ", "])
    if kind == 4:
        return "[" + sep.join(_random_json(rng, depth + 1) for _ in range(rng.randrange(4))) + "]"
    items = [
        f'"k{rng.randrange(4)}"{rng.choice([":", ": "])}{_random_json(rng, depth + 1)}' for _ in range(rng.randrange(4))
    ]
    return "{" + sep.join(items) + "}"


def _random_number(rng) -> str:
    n = rng.choice([rng.randrange(-1000, 1000), rng.randrange(-(10**25), 10**25), rng.randrange(-(2**63), 2**63),
                    rng.choice([0.0, -0.0, 1e-5, 1e-4, 0.00025, 1e15, 1e16, 123456789012345.0, 1.0, 100.5]),
                    rng.random() * 10 ** rng.randrange(-8, 20), round(rng.random() * 1000, rng.randrange(4))])  # fmt: skip
    text = json.dumps(n)
    return rng.choice([text, text, text + ("0" if "." in text and "e" not in text else ""), text + "e0", "-0"])


@pytest.mark.parametrize("seed", range(4))
def test_the_c_reader_reads_random_batches_as_python_does(seed):
    """Random batches (properties of one or several kinds, first seen in either batch, values written in every way)
    lifted with the C reader and without it: the same rows, columns, types and state."""
    import random

    rng = random.Random(seed)
    for trial in range(60):
        kinds = {f"p{i}": rng.choice(["int", "number", "bool", "text", "json"]) for i in range(rng.randrange(1, 9))}
        values = {"int": lambda: str(rng.randrange(-(2**63), 2**63)), "number": lambda: _random_number(rng),
                  "bool": lambda: rng.choice(["true", "false"]), "json": lambda: _random_json(rng),
                  "text": lambda: json.dumps(rng.choice(["a", "é", 'q"', "t\tab", "😀", ""]), ensure_ascii=rng.random() < 0.5)}  # fmt: skip
        rows = []
        for _ in range(rng.randrange(2, 40)):
            items = [f'"{p}"{rng.choice([":", ": "])}{values[k]() if rng.random() < 0.9 else "null"}'
                     for p, k in kinds.items() if rng.random() < 0.8]  # fmt: skip
            rows.append("{" + rng.choice([",", ", "]).join(items) + "}")
        half = len(rows) // 2
        got = {}
        for native in (True, False):
            lifter = Lifter("profiles", 100, {}, lambda _: None)
            lifter.native = native
            tables = [lifter.apply(pa.table({"properties": pa.array(part)})) for part in (rows[:half], rows[half:])]
            got[native] = [dict(sorted(r.items())) for t in tables for r in t.to_pylist()], lifter.state()
        assert got[True] == got[False], (seed, trial)


def test_the_c_reader_reads_a_sliced_column_with_null_rows():
    """A batch that is a slice of a longer column (its offset not 0) with NULL rows: the rows read are the slice's."""
    import random

    rng = random.Random(5)
    docs = [None if rng.random() < 0.1 else {"a": rng.randrange(100), "b": rng.choice(["x", "é"]), "c": [1, 2.5]}
            for _ in range(500)]  # fmt: skip
    column = pa.array([None if d is None else json.dumps(d) for d in docs], pa.string())
    for start in (1, 7, 13):
        got = {}
        for native in (True, False):
            lifter = Lifter("profiles", 100, {}, lambda _: None)
            lifter.native = native
            lifter.apply(pa.table({"properties": pa.array(['{"a":1,"b":"x","c":[1]}'])}))
            got[native] = lifter.apply(pa.table({"properties": column.slice(start, 300)})).to_pylist(), lifter.read_by
        assert got[True][1] == "native" and got[True][0] == got[False][0]
        assert [r["custom_a"] for r in got[True][0]] == [
            None if d is None else d["a"] for d in docs[start : start + 300]
        ]


def test_the_c_reader_refuses_buffers_that_do_not_match():
    """Arguments that do not describe an array (which lift.py never passes) raise, and never read out of bounds."""
    arr = pa.array(['{"a":1}', None])
    validity, offsets, data = arr.buffers()
    read = lift._read_in_c
    with pytest.raises(ValueError, match="differ in length"):
        read(validity, offsets, data, 0, 2, False, [b"a"], b"\x01\x01", b"\x00")
    with pytest.raises(ValueError, match="shorter than the array"):
        read(validity, offsets, data, 0, 5, False, [b"a"], b"\x01", b"\x00")
    with pytest.raises(ValueError, match="offsets outside the text"):
        read(
            None, pa.py_buffer(pa.array([0, 99], pa.int32()).buffers()[1]), data, 0, 1, False, [b"a"], b"\x01", b"\x00"
        )
    with pytest.raises(ValueError, match="a name given twice"):
        read(validity, offsets, data, 0, 2, False, [b"a", b"a"], b"\x01\x01", b"\x00\x00")
    columns, stay, left, found = read(validity, offsets, data, 0, 2, False, [b"a"], b"\x01", b"\x00")
    assert (stay, left, found) == (None, None, []) and columns[0][1:] == (1, None)  # one NULL: the second row
