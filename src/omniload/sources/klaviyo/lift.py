"""``properties=columns``: an event's properties as ``property_<name>`` columns, a profile's custom properties as
``custom_<name>``, beside the JSON column that keeps them whole.

Names are lower-cased with every run of other characters than letters and digits made one ``_`` (``$value`` ->
``property_value``, ``Item Count`` -> ``property_item_count``); the first property to claim a name has it. A
column's type is fixed when its property is first seen (a number: ``bigint`` or ``double``; ``true``/``false``:
``bool``; text; an object or array: JSON) and kept in the table's saved state, so every later batch and run uses
it: a property first seen later adds a column (earlier rows NULL), and a value that does not fit its column's type
lands, as JSON, in the column's variant ``<column>__v_json`` (created then), never failing the run or lost.
At most ``property_columns_max`` columns (default 100, variants not counted) per table: properties beyond are
left in the JSON column only, with a note. Per batch: the documents decoded in one msgspec call, Arrow infers
one struct of them in C, and each property's column is that struct's child; value by value only for JSON
columns, for values of another type than their column's, and for a batch where a property has two types.
"""

from __future__ import annotations

import re
from typing import Any

import msgspec
import pyarrow as pa

from ...types import BOOL, FLOAT, INT, JSON, TEXT, TYPES, typed_field

# table -> (the JSON column, the prefix of its lifted columns)
LIFTS = {"events": ("event_properties", "property_"), "profiles": ("properties", "custom_")}
CAP = 100
VARIANT = "__v_json"
STATE_KEY = "property_columns"
_decode = msgspec.json.Decoder().decode


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


def _fit(v: Any, typ: str) -> Any:
    """``v`` as column type ``typ`` holds it, else _MISFIT."""
    if v is None:
        return None
    if typ == JSON:
        return msgspec.json.encode(v).decode()
    if typ == FLOAT:
        return float(v) if type(v) in (int, float) else _MISFIT
    if typ == INT:
        if type(v) is float and v.is_integer():
            v = int(v)
        return v if type(v) is int and -(2**63) <= v < 2**63 else _MISFIT
    if typ == BOOL:
        return v if type(v) is bool else _MISFIT
    return v if isinstance(v, str) else _MISFIT


class Lifter:
    """Lifts one table's JSON column into columns, batch after batch, keeping each column's type."""

    def __init__(self, table: str, cap: int, saved: dict, note) -> None:
        self.source, self.prefix = LIFTS[table]
        self.cap, self.note = cap, note
        self.types: dict[str, str] = dict(saved.get(STATE_KEY) or {})  # column -> type, variants too
        self.owner: dict[str, str] = {}  # column -> the property that claimed it (this run)
        self.reserved: set[str] = set()  # columns the table has otherwise (events: the well-known ones)
        self.cols: dict[str, str | None] = {}  # property -> its column (None: not lifted), this run

    def state(self) -> dict:
        return {STATE_KEY: dict(self.types)}

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

    def _rows(self, texts: list[str | None]) -> list[dict | None]:
        try:
            rows = _decode("[" + ",".join(t if t is not None else "null" for t in texts) + "]")
        except (msgspec.DecodeError, RecursionError):  # one row too deep (left in the JSON column): each on its own
            rows = []
            for t in texts:
                try:
                    rows.append(None if t is None else _decode(t))
                except (msgspec.DecodeError, RecursionError):
                    rows.append(None)
        return [r if isinstance(r, dict) else None for r in rows]

    def _fitted(self, col: str, values: list[Any], arrays: dict[str, pa.Array]) -> None:
        """``values`` into ``col`` value by value; those that do not fit, whole as JSON, into its variant."""
        typ = self.types[col]
        fitted = [_fit(v, typ) for v in values]
        if any(f is _MISFIT for f in fitted):
            self.types.setdefault(col + VARIANT, JSON)
            arrays[col + VARIANT] = pa.array([msgspec.json.encode(v).decode() if f is _MISFIT else None
                                              for v, f in zip(values, fitted, strict=False)], pa.string())  # fmt: skip
            fitted = [None if f is _MISFIT else f for f in fitted]
        arrays[col] = pa.array(fitted, TYPES[typ].arrow)

    def apply(self, table: pa.Table) -> pa.Table:
        n = table.num_rows
        rows = self._rows(table.column(self.source).to_pylist())
        arrays: dict[str, pa.Array] = {}
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
                    self._fitted(col, [r.get(prop) if r is not None else None for r in rows], arrays)
        else:  # a property of two types in this batch: gather each property's values row by row
            values: dict[str, list[Any]] = {}
            for i, props in enumerate(rows):
                for prop, v in (props or {}).items():
                    if v is not None and (col := self._column(prop, _kind(v))) is not None:
                        values.setdefault(col, [None] * n)[i] = v
            for col, vs in values.items():
                self._fitted(col, vs, arrays)
        for col, typ in self.types.items():  # every column known so far, in every batch
            arr = arrays.get(col)
            arr = arr if arr is not None else pa.nulls(n, TYPES[typ].arrow)
            i = table.schema.get_field_index(col)
            field = typed_field(col, typ)
            table = table.set_column(i, field, arr) if i >= 0 else table.append_column(field, arr)
        return table


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
