"""``properties=columns``: an event's properties as ``property_<name>`` columns, a profile's custom properties as
``custom_<name>``, beside the JSON column that keeps them whole.

Names are lower-cased with every run of other characters than letters and digits made one ``_`` (``$value`` ->
``property_value``, ``Item Count`` -> ``property_item_count``); the first property to claim a name has it. A
column's type is fixed when its property is first seen (a number: ``bigint`` or ``double``; ``true``/``false``:
``bool``; text; an object or array: JSON) and kept in the table's saved state, so every later batch and run uses
it: a property first seen later adds a column (earlier rows NULL), and a value that does not fit its column's type
lands, as JSON, in the column's variant ``<column>__v_json`` (created then), never failing the run or lost.
At most ``property_columns_max`` columns (default 100, variants not counted) per table: properties beyond are
left in the JSON column only, with a note. Columns are built per batch, column by column, from each document
decoded once (msgspec).
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
        self.left_out: set[str] = set()
        self.cols: dict[str, str | None] = {}  # property -> its column (None: not lifted), this run

    def state(self) -> dict:
        return {STATE_KEY: dict(self.types)}

    def _column(self, prop: str, value: Any) -> str | None:
        col = column_name(self.prefix, prop)
        if col in self.reserved or self.owner.get(col, prop) != prop:
            return None  # the table's own column, or another property's: kept in the JSON column only
        if col not in self.types:
            if sum(1 for c in self.types if not c.endswith(VARIANT)) >= self.cap:
                if prop not in self.left_out:
                    self.left_out.add(prop)
                    self.note(f"property '{prop[:60]}' is not lifted into a column: the table has the cap of "
                              f"{self.cap} property columns (property_columns_max=); it stays in {self.source}")  # fmt: skip
                return None
            self.types[col] = _kind(value)
        self.owner[col] = prop
        return col

    def apply(self, table: pa.Table) -> pa.Table:
        n = table.num_rows
        values: dict[str, list[Any]] = {}
        for i, doc in enumerate(table.column(self.source).to_pylist()):
            if doc is None:
                continue
            try:
                props = _decode(doc)
            except (msgspec.DecodeError, RecursionError):  # nested too deep: left in the JSON column
                continue
            if not isinstance(props, dict):
                continue
            for prop, v in props.items():
                if v is None:
                    continue
                col = self.cols.get(prop, "")
                if col == "":
                    col = self.cols[prop] = self._column(prop, v)
                if col is None:
                    continue
                values.setdefault(col, [None] * n)[i] = v
        arrays: dict[str, list[Any]] = {}
        for col, vs in values.items():
            typ = self.types[col]
            fitted = [_fit(v, typ) for v in vs]
            if any(f is _MISFIT for f in fitted):  # the odd values, whole, in the variant
                self.types.setdefault(col + VARIANT, JSON)
                arrays[col + VARIANT] = [msgspec.json.encode(v).decode() if f is _MISFIT else None for v, f in zip(vs, fitted)]
                fitted = [None if f is _MISFIT else f for f in fitted]
            arrays[col] = fitted
        for col, typ in self.types.items():  # every column known so far, in every batch
            arr = pa.array(arrays.get(col) or [None] * n, TYPES[typ].arrow)
            i = table.schema.get_field_index(col)
            field = typed_field(col, typ)
            table = table.set_column(i, field, arr) if i >= 0 else table.append_column(field, arr)
        return table
