"""Klaviyo's well-known event properties lifted into their own columns, on Arrow batches.

Every event keeps its whole ``event_properties`` JSON (with ``properties=columns``, what is in no column: lift.py,
which runs after this on the whole JSON); beside it, the properties Klaviyo itself defines get
typed columns named as Fivetran names them (``$value`` -> ``property_value``): ``$value`` as a number (a
number, or text that reads as one; anything else leaves the column NULL, the value still whole in
``event_properties``), the ids ``$event_id``, ``$message``, ``$flow`` and the attribution properties as text
(a non-text value as its JSON text, so nothing is lost). Each page's properties are decoded with a msgspec struct
that reads only these keys (the rest of the document is skipped in C; the whole batch in one call), never into
row dicts; a column whose values all have its type is converted by Arrow itself.
"""

from __future__ import annotations

from operator import attrgetter
from typing import Any

import msgspec
import pyarrow as pa

from ...types import FLOAT, TEXT

# property -> column; the first is the number, the others text
KNOWN = {"$value": "property_value", "$event_id": "property_event_id", "$message": "property_message",
         "$flow": "property_flow", "$attributed_flow": "property_attributed_flow",
         "$attributed_message": "property_attributed_message", "$attributed_channel": "property_attributed_channel"}  # fmt: skip
COLUMNS = {col: (FLOAT if prop == "$value" else TEXT) for prop, col in KNOWN.items()}
SOURCE = "event_properties"

_Known = msgspec.defstruct("KnownProperties", [(c, Any, None) for c in KNOWN.values()],
                           rename={c: p for p, c in KNOWN.items()}, gc=False)  # fmt: skip
_decoder = msgspec.json.Decoder(_Known)
_all = msgspec.json.Decoder(list[_Known | None])
_EMPTY = _Known()


def _read(doc: str | bytes | None):
    if doc is None:
        return _EMPTY
    try:
        return _decoder.decode(doc)
    except (msgspec.DecodeError, RecursionError):  # not an object, or nested too deep to read: none lifted
        return _EMPTY


def _number(v: Any) -> float | None:
    if type(v) in (int, float):
        return float(v)
    if isinstance(v, str):
        try:
            return float(v.strip())
        except ValueError:
            return None
    return None


def _text(v: Any) -> str | None:
    return v if v is None or isinstance(v, str) else msgspec.json.encode(v).decode()


def _docs(texts: list[str | None]) -> list:
    """Every row's well-known properties: the batch decoded in one call, row by row only when that fails."""
    try:
        return [d or _EMPTY for d in _all.decode("[" + ",".join(t if t is not None else "null" for t in texts) + "]")]
    except (msgspec.DecodeError, RecursionError):  # a row not an object, or too deep: each on its own
        return [_read(t) for t in texts]


def _column(values: list[Any], typ: str) -> pa.Array:
    """Arrow's own conversion when every value already has the column's type (numbers, text), else value by value."""
    try:
        arr = pa.array(values)
        if typ == FLOAT and (
            pa.types.is_integer(arr.type) or pa.types.is_floating(arr.type) or pa.types.is_null(arr.type)
        ):
            return arr.cast(pa.float64())
        if typ == TEXT and (pa.types.is_string(arr.type) or pa.types.is_null(arr.type)):
            return arr.cast(pa.string())
    except (pa.ArrowInvalid, pa.ArrowTypeError, OverflowError):
        pass
    if typ == FLOAT:
        return pa.array([_number(v) for v in values], pa.float64())
    return pa.array([_text(v) for v in values], pa.string())


def add_known(table: pa.Table, raw=None) -> pa.Table:
    """``table`` (events, with ``event_properties`` as JSON text) with the well-known property columns set;
    ``raw``: that column's raw values (columns.py ``RawColumn``), decoded as they are when given."""
    docs = None
    if raw is not None:
        try:
            docs = [d or _EMPTY for d in _all.decode(raw.array_json())]
        except (msgspec.DecodeError, RecursionError):  # a row not an object, or too deep: each on its own, below
            pass
    if docs is None:
        docs = _docs(table.column(SOURCE).to_pylist())
    for col, typ in COLUMNS.items():
        arr = _column(list(map(attrgetter(col), docs)), typ)
        i = table.schema.get_field_index(col)
        table = table.set_column(i, col, arr) if i >= 0 else table.append_column(col, arr)
    return table
