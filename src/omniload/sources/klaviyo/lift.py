"""``properties=columns``: an event's properties as ``property_<name>`` columns, a profile's custom properties as
``custom_<name>``; the JSON column (``event_properties``, ``properties``) keeps only what is in no column.

Every value is in exactly one place, never stored twice: a lifted property in its column (or its variant, below),
a well-known event property whose value its column holds as it is (text; ``$value``: a number a double holds
exactly, not an integer of more than 15 digits) in that column (properties.py fills it from the whole JSON before the
lift), and the rest in the JSON column: properties beyond the cap, one whose name another property claimed, a
well-known one of another type (``"$value": "12"``), a row that is not an object (whole). A row with nothing left has NULL there, not ``{}`` (nothing stored at all, and no JSON to
validate); a null value is as absent, as it is in a column. Rows loaded by earlier versions keep their whole JSON
beside their columns; the columns are the same either way.

Names are lower-cased with every run of other characters than letters and digits made one ``_`` (``$value`` ->
``property_value``, ``Item Count`` -> ``property_item_count``); the first property to claim a name has it. A
column's type is fixed when its property is first seen (a number: ``bigint`` or ``double``; ``true``/``false``:
``bool``; text; an object or array: JSON) and kept in the table's saved state, so every later batch and run uses
it (and, for a column the destination already has, which another account's load may have made, the destination's
type: ``loaded``; the run's accounts loading one table side by side share one set of types, :class:`Shared`): a
property first seen later adds a column (earlier rows NULL), and a value that does not fit its column's type
lands, as JSON, in the column's variant ``<column>__v_json`` (created then), never failing the run or lost (an
integer a double cannot hold exactly, beyond 2**53, is not a ``double`` column's value: Arrow's own bound).
At most ``property_columns_max`` columns (default 100, variants not counted) per table: properties beyond are
left in the JSON column, with a note. Per batch: the documents decoded in one msgspec call, Arrow infers
one struct of them in C, and each property's column is that struct's child; value by value only for JSON
columns, for values of another type than their column's, and for a batch where a property has two types.
Where the C reader (_lift.c, :class:`_Native`; built at install, optional) is there, it reads every batch first: the
new properties it finds get their columns as the by-property reading would give them (when each one's values are of
one JSON kind and the order of claims decides nothing: :meth:`Lifter._claim`) and the batch is read again; the rows
it leaves (a property of values of two kinds, a value not of its column's type, a row not an object) are read as
above, as a batch of their own, and put in place (~0.8 µs a row in C against 4.6-11 in Python; bench/RESULTS.md
row 35b). Without it, once every property of a batch has its column the batch is read by a struct decoder made of
those columns' types (:class:`_Known`): each property's values come out of msgspec typed and each column is made in
one C loop; a batch it refuses (a new property, a value not of its column's type) is read as above. Which rows keep
a property in the JSON column is found there in Arrow, field by field (most batches: none, the column all NULL), and
only those rows are written again.
"""

from __future__ import annotations

import contextlib
import gc
import re
import threading
from operator import attrgetter, methodcaller
from typing import Any

import msgspec
import pyarrow as pa
import pyarrow.compute as pc

from ...types import BOOL, FLOAT, INT, JSON, TEXT, TYPES, typed_field
from .columns import RawColumn
from .properties import COLUMNS as KNOWN_TYPES
from .properties import KNOWN

try:  # properties=columns' batch reader in C (_lift.c): optional, every batch is read in Python without it
    from ._lift import lift as _read_in_c
except ImportError:  # pragma: no cover - not built (no C compiler at install)
    _read_in_c = None

# table -> (the JSON column, the prefix of its lifted columns)
LIFTS = {"events": ("event_properties", "property_"), "profiles": ("properties", "custom_")}
CAP = 100
VARIANT = "__v_json"
LIFTED = (INT, FLOAT, BOOL, TEXT, JSON)  # the types a property column can have
STATE_KEY = "property_columns"
_decode = msgspec.json.Decoder().decode
_raw_rows = msgspec.json.Decoder(list[dict[str, msgspec.Raw] | None]).decode
_raw_row = msgspec.json.Decoder(dict[str, msgspec.Raw]).decode
_NULL = msgspec.Raw(b"null")
_encode = msgspec.json.encode


def column_name(prefix: str, prop: str) -> str:
    return prefix + (re.sub(r"[^a-z0-9]+", "_", prop.lower()).strip("_") or "_")


def _kind(v: Any) -> str:
    if isinstance(v, bool):
        return BOOL
    if isinstance(v, int):
        return INT
    if isinstance(v, float):
        return FLOAT
    if isinstance(v, str):
        return TEXT
    return JSON


_MISFIT = object()
_EXACT = 2**53  # the integers a double holds exactly


def _fit(v: Any, typ: str) -> Any:
    """``v`` as column type ``typ`` holds it, else _MISFIT."""
    if v is None:
        return None
    if typ == JSON:
        return msgspec.json.encode(v).decode()
    if typ == FLOAT:  # an integer only where a double holds it exactly (Arrow's own bound): else the variant
        return float(v) if type(v) is float or (type(v) is int and -_EXACT <= v <= _EXACT) else _MISFIT
    if typ == INT:
        if type(v) is float and v.is_integer():
            v = int(v)
        return v if type(v) is int and -(2**63) <= v < 2**63 else _MISFIT
    if typ == BOOL:
        return v if type(v) is bool else _MISFIT
    return v if isinstance(v, str) else _MISFIT


class Shared:
    """One table's column types, shared by the lifters of the run's sources that load it (several accounts, side by
    side), with the lock their batches are lifted under: the first to claim a column fixes its type for all."""

    def __init__(self) -> None:
        self.types: dict[str, str] = {}
        self.lock = threading.Lock()


class Lifter:
    """Lifts one table's JSON column into columns, batch after batch, keeping each column's type."""

    def __init__(self, table: str, cap: int, saved: dict, note, shared: Shared | None = None) -> None:
        self.source, self.prefix = LIFTS[table]
        self.cap, self.note = cap, note
        shared = shared if shared is not None else Shared()
        self.types: dict[str, str] = shared.types  # column -> type, variants too
        for col, typ in (saved.get(STATE_KEY) or {}).items():
            self.types.setdefault(col, typ)
        self._lock = shared.lock
        self.owner: dict[str, str] = {}  # column -> the property that claimed it (this run)
        self.reserved: set[str] = set()  # columns the table has otherwise (events: the well-known ones)
        self.cols: dict[str, str | None] = {}  # property -> its column (None: not lifted), this run
        self._known: _Known | None = None  # the decoder of batches whose properties all have their column
        self._native: _Native | None = None  # the same in C (_lift.c), when it is built
        self.native = _read_in_c is not None  # whether _Native reads (tests turn it off to hold it to _Known)
        self.read_by = ""  # which reader read the last batch: native, known, property or row (for tests)
        # events: the well-known properties (properties.py) -> their column's type; a value of that type is in its
        # column as it is, so it leaves the JSON column like a lifted one
        self.well_known = {p: KNOWN_TYPES[c] for p, c in KNOWN.items()} if table == "events" else {}
        self._staying: _Staying | None = None  # finds the rows whose JSON column keeps a property

    def state(self) -> dict:
        return {STATE_KEY: dict(self.types)}

    def loaded(self, columns: dict[str, str]) -> None:  # (before the first batch: no lock needed)
        """The table's columns as the destination has them: a property column another load made (another account's,
        whose saved state this one does not read) keeps its type here too, and counts against the cap."""
        for col, typ in columns.items():
            if col.startswith(self.prefix) and col not in self.reserved and typ in LIFTED:
                self.types.setdefault(col, typ)

    def _column(self, prop: str, kind: str) -> str | None:
        """The column of ``prop`` (claimed now, of type ``kind``, if new), or None: not lifted."""
        col = self.cols.get(prop, "")
        if col != "":
            return col
        col = column_name(self.prefix, prop)
        if col in self.reserved or self.owner.get(col, prop) != prop:
            col = None  # the table's own column, or another property's: kept in the JSON column only
        elif col not in self.types:
            if sum(1 for c in self.types if not c.endswith(VARIANT)) >= self.cap:
                self.note(f"property '{prop[:60]}' is not lifted into a column: the table has the cap of "
                          f"{self.cap} property columns (property_columns_max=); it stays in {self.source}")  # fmt: skip
                col = None
            else:
                self.types[col] = kind
        if col is not None:
            self.owner[col] = prop
        self.cols[prop] = col
        return col

    def _rows(self, column: pa.ChunkedArray) -> list[dict]:
        """Each row's properties as a dict (``{}`` when NULL or not an object): the batch joined into one JSON array
        by Arrow and decoded in one call, row by row only when that fails."""
        try:
            rows = _decode(_joined(column))
        except (msgspec.DecodeError, RecursionError):  # one row too deep (left in the JSON column): each on its own
            rows = []
            for t in column.to_pylist():
                try:
                    rows.append(None if t is None else _decode(t))
                except (msgspec.DecodeError, RecursionError):
                    rows.append(None)
        return [r if isinstance(r, dict) else _NONE for r in rows]

    def _fitted(self, col: str, values: list[Any], arrays: dict[str, pa.Array]) -> None:
        """``values`` into ``col`` value by value; those that do not fit, whole as JSON, into its variant."""
        typ = self.types[col]
        if typ == JSON:  # every value fits: its JSON text (None: NULL), encoded and joined in C
            arrays[col] = _json_column(values)
            return
        fitted = [_fit(v, typ) for v in values]
        if any(f is _MISFIT for f in fitted):
            self.types.setdefault(col + VARIANT, JSON)
            arrays[col + VARIANT] = pa.array([msgspec.json.encode(v).decode() if f is _MISFIT else None
                                              for v, f in zip(values, fitted, strict=False)], pa.string())  # fmt: skip
            fitted = [None if f is _MISFIT else f for f in fitted]
        arrays[col] = pa.array(fitted, TYPES[typ].arrow)

    def _contested(self, props) -> bool:
        """Whether the order the batch's new properties claim columns in can decide anything: two of them share a
        column name, or they are more than the cap leaves room for."""
        new = [column_name(self.prefix, p) for p in props if p not in self.cols]
        new = [c for c in new if c not in self.types]
        room = self.cap - sum(1 for c in self.types if not c.endswith(VARIANT))
        return len(set(new)) < len(new) or len(new) > room

    def _by_row(self, table: pa.Table, arrays: dict[str, pa.Array]) -> None:
        """What :func:`_by_property` does not read (a row not an object, a property of two kinds in the batch)."""
        n = table.num_rows
        rows = self._rows(table.column(self.source))
        try:  # Arrow infers one struct for the batch in C when each property keeps one type in it
            struct = pa.array(rows)
            children = (
                dict(zip((f.name for f in struct.type), struct.flatten(), strict=False))
                if pa.types.is_struct(struct.type)
                else {}
            )
        except (pa.ArrowInvalid, pa.ArrowTypeError, OverflowError):
            struct = None
        if struct is not None:
            for prop, child in children.items():
                kind = _arrow_kind(child.type)
                if kind is None or (col := self._column(prop, kind)) is None:
                    continue
                if kind == self.types[col] and kind != JSON:
                    arrays[col] = child.cast(TYPES[kind].arrow)
                else:  # JSON text, or another type than the column's: value by value
                    self._fitted(col, list(map(methodcaller("get", prop), rows)), arrays)
        else:  # a property of two types in this batch: gather each property's values row by row
            values: dict[str, list[Any]] = {}
            for i, props in enumerate(rows):
                for prop, v in props.items():
                    if v is not None and (col := self._column(prop, _kind(v))) is not None:
                        values.setdefault(col, [None] * n)[i] = v
            for col, vs in values.items():
                self._fitted(col, vs, arrays)

    def apply(self, table: pa.Table) -> pa.Table:
        with self._lock, _collector_paused():
            return self._apply(table)

    def _by_known(self, column: pa.ChunkedArray, arrays: dict[str, pa.Array]) -> bool | pa.Array:
        """The columns of a batch whose every property has its column this run and every value its column's type
        (False, nothing done: one does not). In C (:class:`_Native`) when it is built: it reads the rows it can, and
        returns the mask of those it left (NULL in every column) when there are; the batch's new properties it found
        get their columns first (:meth:`_claim`) and the batch is read again. Else by :class:`_Known`, whole or not."""
        if self.native:
            read, found = self._read_in_c(column, arrays)
            if found and self._claim(found):  # (a second reading finds no property it could claim: none is new)
                arrays.clear()
                read, found = self._read_in_c(column, arrays)
            self.read_by = "native"
            return False if read is not True and read.true_count == len(read) else read
        if not self.cols:
            return False
        if self._known is None or self._known.size != len(self.cols):
            self._known = _Known(self.cols, self.types, self.well_known)
        self.read_by = "known"
        return self._known.read(column, arrays)

    def _read_in_c(self, column: pa.ChunkedArray, arrays: dict[str, pa.Array]) -> tuple[bool | pa.Array, list]:
        if self._native is None or self._native.size != len(self.cols):
            self._native = _Native(self.cols, self.types, self.well_known)
        return self._native.read(column, arrays)

    def _claim(self, found: list[tuple[bytes, int]]) -> bool:
        """The columns of the new properties the C reader found (in the order they first appear, each with the JSON
        kinds of its values), claimed as :func:`_by_property` claims them; False, none claimed, unless each property's
        values are of one kind (``_by_property`` would read a property of several, a number column's type told by
        Arrow, or the row reading by their order) and the order of claims decides nothing (:meth:`_contested`)."""
        kinds = {}
        for name, bits in found:
            bits &= ~_K_NULL  # a null is as absent: a property null in every row is not claimed
            if bits and bits not in _K_KINDS:
                return False
            if bits:
                kinds[name.decode()] = _K_KINDS[bits]
        if not kinds or self._contested(kinds):
            return False
        for prop, kind in kinds.items():
            self._column(prop, kind)
        return True

    def _apply(self, table: pa.Table, known: bool = True) -> pa.Table:
        n = table.num_rows
        arrays: dict[str, pa.Array] = {}
        read = self._by_known(table.column(self.source), arrays) if known else False
        if read is True:
            return self._complete(table, arrays, self._rest(table.column(self.source), arrays.pop("")))
        if read is not False:  # the rows the C reader left (a new property, a value of another type): read as a batch
            left = self._apply(table.filter(read), False)  # of their own first (their new columns claimed), in place
            whole = self._complete(table, arrays, self._rest(table.column(self.source), arrays.pop("")))
            self.read_by = f"native+{self.read_by}"
            return pa.table([pc.replace_with_mask(whole.column(c).combine_chunks(), read, left.column(c).combine_chunks())
                             for c in whole.column_names], schema=whole.schema)  # fmt: skip
        typed = _by_property(table.column(self.source), n)
        if typed is not None and (typed[1] or self._contested(typed[0])) and not _inferred(typed[0]):
            typed = None  # as row by row: the order of claims and a mixed number column's type are the first values'
        self.read_by = "property" if typed is not None else "row"
        if typed is not None:  # each property's values and the kind they share in this batch
            for prop, (kind, values, arr) in typed[0].items():
                if (col := self._column(prop, kind)) is None:
                    continue
                if kind == self.types[col] and kind != JSON:
                    arrays[col] = arr.cast(TYPES[kind].arrow)
                else:  # JSON text, or another type than the column's: value by value
                    self._fitted(col, values, arrays)
        else:
            self._by_row(table, arrays)
        return self._complete(table, arrays, self._rest(table.column(self.source)))

    def _rest(self, column: pa.ChunkedArray, staying: pa.Array | None | bool = False) -> pa.Array:
        """The batch's JSON column: NULL but in the rows that keep a property (``staying``, found by :class:`_Staying`
        unless given; None: no row), which :meth:`_left` writes."""
        if staying is False:
            props = [p for p, c in self.cols.items() if c is None]
            if self._staying is None or self._staying.props != props:
                self._staying = _Staying(props, self.well_known)
            staying = self._staying.rows(column)
        rest = pa.nulls(len(column), pa.string())
        if staying is None:
            return rest
        return pc.replace_with_mask(rest, staying, self._left(column.filter(staying)))

    def _stays(self, prop: str, raw: msgspec.Raw) -> bool:
        """Whether ``prop``'s value ``raw`` stays in the JSON column: the property has no column (beyond the cap,
        its name another's or the table's own), and is not a well-known one whose value its column holds as it is
        (text; ``$value``: a number)."""
        text = bytes(raw)
        if text[:1] == b"n" or self.cols.get(prop) is not None:
            return False  # null (as absent, as in a column), or lifted (a value its column cannot hold: the variant)
        typ = self.well_known.get(prop)
        return typ is None or not _holds(typ, text)

    def _left(self, column: pa.ChunkedArray) -> pa.Array:
        """Each row's properties that stay (:meth:`_stays`), in their order, NULL when none; a row that is not an
        object, or too deep to read, whole (nothing of it was lifted)."""
        try:
            rows = _raw_rows(_joined(column))
        except (msgspec.ValidationError, msgspec.DecodeError, RecursionError):
            rows = []
            for t in column.to_pylist():
                try:
                    rows.append(None if t is None else _raw_row(t))
                except (msgspec.ValidationError, msgspec.DecodeError, RecursionError):
                    rows.append(msgspec.Raw(t.encode()))
        out = []
        for row in rows:
            if type(row) is dict:
                left = {k: v for k, v in row.items() if self._stays(k, v)}
                out.append(_encode(left) if left else _NULL)
            else:
                out.append(_NULL if row is None else row)
        return _text_column(out)

    def _complete(self, table: pa.Table, arrays: dict[str, pa.Array], rest: pa.Array) -> pa.Table:
        """``table`` with ``arrays``, a NULL column for each other column known so far (every batch has all), and
        ``rest`` as its JSON column (what is in no column)."""
        n = table.num_rows
        i = table.schema.get_field_index(self.source)
        table = table.set_column(i, table.schema.field(i), rest)
        for col, typ in self.types.items():  # every column known so far, in every batch
            arr = arrays.get(col)
            arr = arr if arr is not None else pa.nulls(n, TYPES[typ].arrow)
            i = table.schema.get_field_index(col)
            field = typed_field(col, typ)
            table = table.set_column(i, field, arr) if i >= 0 else table.append_column(field, arr)
        return table


_NONE: dict = {}  # a row without properties (read only)
_NUMBER = int | float | None  # a double column's values as JSON has them (an integer stays one until Arrow takes it)


class _Known:
    """Reads a batch whose properties all have their column this run (``cols``, as the lifter resolved them): one
    msgspec struct whose fields are those properties, each of its column's type (JSON and properties not lifted:
    kept raw), refusing any other property. A value whose JSON type is not its column's is refused as well (an
    integer is a ``double`` column's number, as :func:`_fit` has it), so whatever the struct reads fits."""

    def __init__(self, cols: dict[str, str | None], types: dict[str, str], well_known: dict[str, str]) -> None:
        self.size = len(cols)
        fields, rename, self.columns = [], {}, []  # columns: (field, column, type) of the lifted properties
        # the fields of the properties not lifted, with their well-known column's type (None: not well-known)
        self.staying: list[tuple[str, str | None]] = []
        for i, (prop, col) in enumerate(cols.items()):
            name, typ = f"p{i}", types[col] if col is not None else JSON
            rename[name] = prop
            if col is None and well_known.get(prop) == TEXT:  # a string, else refused: that batch is read as above
                typ = TEXT
            # a double column's field takes integers as they are: one a double cannot hold exactly refuses the batch
            python = _NUMBER if typ == FLOAT and col is not None else TYPES[typ].python
            fields.append((name, msgspec.Raw, _NULL) if typ == JSON else (name, python, None))
            if col is not None:
                self.columns.append((name, col, typ))
            elif typ == JSON:  # raw: $value stays unless a number its column holds exactly (_stay_mask)
                self.staying.append((name, well_known.get(prop)))
        Props = msgspec.defstruct("Props", fields, rename=rename, forbid_unknown_fields=True, gc=False)
        self.empty = Props()
        self.decode = msgspec.json.Decoder(list[Props | None]).decode

    def read(self, column: pa.ChunkedArray, arrays: dict[str, pa.Array]) -> bool:
        try:
            rows = self.decode(_joined(column))
        except (msgspec.ValidationError, msgspec.DecodeError, RecursionError):
            return False  # a property without its column, a value of another type, a row not an object
        if None in rows:
            rows = [self.empty if r is None else r for r in rows]
        for name, col, typ in self.columns:
            values = list(map(attrgetter(name), rows))
            try:
                arrays[col] = _raw_json_column(values) if typ == JSON else pa.array(values, TYPES[typ].arrow)
            except pa.ArrowInvalid:  # an integer a double cannot hold exactly: the batch is read as above
                return False
        arrays[""] = _stay_mask(rows, self.staying)  # the rows keeping a property
        return True


# _Native's modes: a property left in the JSON column (0), or its column's type; and which values of a property left
# there its well-known column holds (_HELD)
_MODES = {None: 0, INT: 1, FLOAT: 2, BOOL: 3, TEXT: 4, JSON: 5}
_HELD_CODES = {TEXT: 1, FLOAT: 2}
# the JSON kinds of a new property's values the C reader tells (_lift.c's K_*), by the column type each gives
_K_KINDS = {1: TEXT, 2: BOOL, 4: INT, 8: FLOAT, 16: JSON}  # 32: an integer beyond 64 bits (Python tells its type)
_K_NULL = 64


class _Native:
    """What :class:`_Known` reads, read in C (_lift.c), the GIL released: each lifted property's Arrow buffers made
    there, no Python object per row or value. It reads row by row: the rows it leaves are those :class:`_Known`
    would refuse the batch for (and a few more: a number of more than 63 characters, a lone surrogate escape), and it
    names the properties it was not given; a JSON column's value keeps the text the API sent unless msgspec may write
    it otherwise (the C code names those rows), written again here, so every path gives each column the same text."""

    def __init__(self, cols: dict[str, str | None], types: dict[str, str], well_known: dict[str, str]) -> None:
        self.size = len(cols)
        self.names = [p.encode() for p in cols]
        self.modes = bytes(_MODES[types[c] if c is not None else None] for c in cols.values())
        self.helds = bytes(_HELD_CODES.get(well_known.get(p), 0) if c is None else 0 for p, c in cols.items())
        self.columns = [(i, c, types[c]) for i, c in enumerate(cols.values()) if c is not None]

    def read(self, column: pa.ChunkedArray, arrays: dict[str, pa.Array]) -> tuple[bool | pa.Array, list]:
        """The rows read (True: all; else the mask of those left) and the properties not given (see _lift.c)."""
        arr = column.combine_chunks() if isinstance(column, pa.ChunkedArray) else column
        if not (pa.types.is_string(arr.type) or pa.types.is_large_string(arr.type)):
            return pa.array([True] * len(arr)), []
        n = len(arr)
        validity, offsets, data = arr.buffers()
        empty = pa.py_buffer(b"")
        got = _read_in_c(validity, offsets, data if data is not None else empty, arr.offset, n,
                         pa.types.is_large_string(arr.type), self.names, self.modes, self.helds)  # fmt: skip
        built, stay, left, found = got
        for i, col, typ in self.columns:
            buffers, nulls, fixes = built[i]
            out = pa.Array.from_buffers(TYPES[typ].arrow, n, [pa.py_buffer(b) for b in buffers], null_count=nulls)
            if fixes is not None:  # JSON text msgspec may write otherwise: written again here
                fixes = _mask(fixes)
                again = [_decode(t) for t in out.filter(fixes).to_pylist()]
                out = pc.replace_with_mask(out, fixes, _json_column(again))
            arrays[col] = out
        arrays[""] = None if stay is None else _mask(stay)
        return (True if left is None else _mask(left)), found


def _mask(flags: bytes) -> pa.Array:
    """One byte a row (0 or 1) as a boolean array."""
    return pc.not_equal(pa.Array.from_buffers(pa.uint8(), len(flags), [None, pa.py_buffer(flags)]), 0)


class _Staying:
    """Finds the rows of a batch whose JSON column keeps a property (``props``, those without a column this run): a
    msgspec struct of them (every other property skipped in C), the well-known ones of their column's type (a batch
    it refuses: all raw, their type told by :func:`_stay_mask`), then :func:`_stay_mask` for the others."""

    def __init__(self, props: list[str], well_known: dict[str, str]) -> None:
        self.props = props
        rename = {f"p{i}": p for i, p in enumerate(props)}
        self.readers = []
        for typed in (True, False):
            fields = [(f"p{i}", TYPES[TEXT].python, None) if typed and well_known.get(p) == TEXT
                      else (f"p{i}", msgspec.Raw, _NULL) for i, p in enumerate(props)]  # fmt: skip
            Props = msgspec.defstruct("Staying", fields, rename=rename, gc=False)
            told = [(f"p{i}", well_known.get(p)) for i, p in enumerate(props)
                    if not (typed and well_known.get(p) == TEXT)]  # fmt: skip
            self.readers.append((msgspec.json.Decoder(list[Props | None]).decode, Props(), told))

    def rows(self, column: pa.ChunkedArray) -> pa.Array | None:
        joined = _joined(column)
        for decode, empty, fields in self.readers:
            try:
                rows = decode(joined)
            except msgspec.ValidationError:  # a well-known value of another type; or a row not an object
                continue
            except (msgspec.DecodeError, RecursionError):
                break
            return _stay_mask([empty if r is None else r for r in rows], fields)
        return pa.array([True] * len(column))  # a row not an object: each row on its own


def _stay_mask(rows: list, fields: list[tuple[str, str | None]]) -> pa.Array | None:
    """Which rows keep a property in the JSON column (as :meth:`Lifter._stays` has it): ``fields``, each a struct
    field of raw values and its well-known column's type (None: not well-known), found in Arrow, field by field;
    None: no row."""
    masks = []
    for name, typ in fields:
        text = RawColumn(list(map(attrgetter(name), rows))).text()
        if text is None:  # cannot be (the batch's text is UTF-8): the row's own reading decides
            return pa.array([True] * len(rows))
        stays = pc.is_valid(text)
        if typ is not None:  # a well-known property: stays when its value is not of its column's type
            stays = pc.and_(stays, pc.invert(pc.fill_null(pc.match_substring_regex(text, _HELD[typ]), False)))
        if stays.true_count:
            masks.append(stays)
    if not masks:
        return None
    out = masks[0]
    for m in masks[1:]:
        out = pc.or_(out, m)
    return out


def _raw_json_column(raws: list[msgspec.Raw]) -> pa.Array:
    """Raw JSON values as a JSON text column, each value as :func:`_json_column` has it (parsed and encoded): each
    distinct text once (Arrow finds them; most are NULL or repeat, as ``[]``), then taken for every row."""
    text = RawColumn(raws).text()
    if text is None:  # not UTF-8 (cannot be: the batch's text is) or too long: value by value
        return _json_column(list(map(_decode, raws)))
    distinct = text.dictionary_encode()
    return _json_column(list(map(_decode, distinct.dictionary.to_pylist()))).take(distinct.indices)


# a JSON value its well-known column holds as it is: text; a number that a double holds exactly (a fraction or an
# exponent: written from a double; an integer of at most 15 digits), so a longer integer stays whole in the JSON
_HELD = {FLOAT: "^-?([0-9]{1,15}$|[0-9]+[.eE])", TEXT: '^"'}
_HELD_BYTES = {typ: re.compile(regex.encode()) for typ, regex in _HELD.items()}


def _holds(typ: str, text: bytes) -> bool:
    return _HELD_BYTES[typ].match(text) is not None


def _text_column(raws: list[Any]) -> pa.Array:
    """JSON texts (bytes or ``msgspec.Raw``; ``null``: NULL) as a string column."""
    text = RawColumn(raws).text()
    return text if text is not None else pa.array([None if bytes(r) == b"null" else bytes(r).decode() for r in raws])


def _joined(column: pa.ChunkedArray) -> bytes:
    """The column's JSON texts as one JSON array (NULL as ``null``), joined by Arrow."""
    flat = pc.fill_null(column.combine_chunks(), "null")
    listed = pa.ListArray.from_arrays(pa.array([0, len(flat)], pa.int32()), flat)
    return b"[" + pc.binary_join(listed, ",")[0].as_buffer() + b"]"  # one copy: the buffer is read in place


def _by_property(
    column: pa.ChunkedArray, n: int
) -> tuple[dict[str, tuple[str, list[Any], pa.Array | None]], bool] | None:
    """The batch's properties in the order they first appear: the kind of their values (a property null in every
    row is left out), the values (None where a row lacks the property) and, for a scalar kind, the Arrow array
    Arrow inferred; and whether a property holds both integers and fractions. Each row is decoded with its property values kept raw (nothing nested is built), and each
    property's raw values are decoded together, so only what a column needs is parsed. None: a row is not an
    object, or a property's values are not all of one kind (the caller reads the batch row by row)."""
    try:
        rows = _raw_rows(_joined(column))
    except (msgspec.ValidationError, msgspec.DecodeError, RecursionError):
        return None
    raws: dict[str, list[Any]] = {}
    for i, row in enumerate(rows):
        if row:
            for prop, v in row.items():
                vs = raws.get(prop)
                if vs is None:
                    vs = raws[prop] = [_NULL] * n
                vs[i] = v
    out, mixed_numbers = {}, False
    for prop, vs in raws.items():
        try:
            values = _decode(b"[" + b",".join(vs) + b"]")
        except (msgspec.DecodeError, RecursionError):
            return None
        kinds = set(map(type, values)) - {type(None)}
        if not kinds:
            continue  # only nulls in this batch: nothing to lift yet
        if kinds <= {dict, list}:
            out[prop] = (JSON, values, None)
            continue
        if kinds & {dict, list}:
            return None
        mixed_numbers |= kinds == {int, float}
        try:
            arr = pa.array(values)
        except (pa.ArrowInvalid, pa.ArrowTypeError, OverflowError):
            return None
        out[prop] = (_arrow_kind(arr.type), values, arr)
    return out, mixed_numbers


def _inferred(props: dict[str, tuple[str, list[Any], pa.Array | None]]) -> bool:
    """Whether Arrow infers a type for every nested property's values (the scalar ones have theirs)."""
    for kind, values, _ in props.values():
        if kind == JSON:
            try:
                pa.array(values)
            except (pa.ArrowInvalid, pa.ArrowTypeError, OverflowError):
                return False
    return True


def _json_column(values: list[Any]) -> pa.Array:
    """Parsed values as a JSON text column (None: NULL), each encoded as ``msgspec.json.encode`` does."""
    text = RawColumn(list(map(_encode, values))).text()
    return text if text is not None else pa.array([_fit(v, JSON) for v in values], pa.string())


@contextlib.contextmanager
def _collector_paused():
    """The cyclic garbage collector paused while a batch's properties are parsed: their dicts and lists are
    acyclic and freed by reference counting, yet each allocation burst made the collector walk every live object
    (measured: 16 µs of lifting per row with it, 6 without)."""
    was = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was:
            gc.enable()


def _arrow_kind(t: pa.DataType) -> str | None:
    if pa.types.is_null(t):
        return None  # only nulls in this batch: nothing to lift yet
    if pa.types.is_boolean(t):
        return BOOL
    if pa.types.is_integer(t):
        return INT
    if pa.types.is_floating(t):
        return FLOAT
    if pa.types.is_string(t) or pa.types.is_large_string(t):
        return TEXT
    return JSON
