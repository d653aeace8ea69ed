"""The rows of a Klaviyo table ingestr made, in this table's columns (issue #27; see takeover.py).

ingestr (bruin-data/ingestr, ``ingestr/src/klaviyo/__init__.py`` and ``client.py`` before its Go rewrite) loads
each record as the API sends it through dlt with ``max_table_nesting=0``: ``id``, ``type``, the attributes
lifted to columns (tags and coupons: kept as one JSON column ``attributes``), ``relationships`` and ``links``
as JSON. dlt names columns in snake_case (Klaviyo's attribute names already are), types ISO date strings as
timestamps, and creates no column for an attribute that was null in every record: such a column is null here.
What the records do not hold (the channel a campaign was listed under, a child's parent, an additional field
ingestr never asks for, such as profiles' subscriptions) cannot be taken over.
"""

from __future__ import annotations

import json
from datetime import datetime
from decimal import Decimal

import pyarrow as pa
import pyarrow.compute as pc

from ...types import DECIMAL, JSON, TS, TYPES
from ..base import CannotAdopt
from .convert import derive, read_columns
from .spec import TableSpec


def _json_values(col: pa.ChunkedArray) -> list:
    return [None if v is None else json.loads(v) if isinstance(v, str) else v for v in col.to_pylist()]


def _value(v, typ: str):
    if v is None:
        return None
    if typ == JSON:
        return v if isinstance(v, str) else json.dumps(v, separators=(",", ":"))
    if typ == TS and isinstance(v, str):
        return datetime.fromisoformat(v.replace("Z", "+00:00"))
    if typ == DECIMAL and not isinstance(v, Decimal):
        return Decimal(str(v))
    return v


def _column(col: pa.ChunkedArray, typ: str) -> pa.ChunkedArray | pa.Array:
    """One of ingestr's columns as this table's type: cast in Arrow when it can, value by value otherwise."""
    want = TYPES[typ].arrow
    if typ != JSON or pa.types.is_string(col.type):
        try:
            return pc.cast(col, want)
        except (pa.ArrowInvalid, pa.ArrowNotImplementedError):
            pass
    return pa.array([_value(v, typ) for v in col.to_pylist()], want)


def adopt(spec: TableSpec, rows: pa.Table) -> pa.Table:
    """``rows`` of ingestr's layout of ``spec``'s table as this table's columns."""
    have = set(rows.column_names)
    attributes = _json_values(rows.column("attributes")) if "attributes" in have else None
    relationships = _json_values(rows.column("relationships")) if "relationships" in have else None
    lifted = {f"{rel.replace('-', '_')}_id": rel for rel in spec.to_one}
    asked = {f for k, v in spec.extra_params.items() if k.startswith("additional-fields") for f in v.split(",")}
    out = {}
    for col, typ in read_columns(spec).items():  # the derived ones are made from these, as on a fresh read
        if col == spec.id_column and "id" in have:
            out[col] = _column(rows.column("id"), typ)
            continue
        elif col in spec.columns and attributes is not None:
            values = [None if a is None else a.get(col) for a in attributes]
        elif col in asked and col not in have:
            raise CannotAdopt(f"they lack '{col}', which Klaviyo sends only when asked for and ingestr does not ask")
        elif col in spec.columns and col in have:
            out[col] = _column(rows.column(col), typ)
            continue
        elif col in spec.columns:
            values = [None] * rows.num_rows  # null in every record: dlt made no column
        elif col in lifted:  # no relationships column: none was set
            values = [
                (((r or {}).get(lifted[col]) or {}).get("data") or {}).get("id")
                for r in relationships or [None] * rows.num_rows
            ]
        else:
            raise CannotAdopt(f"ingestr's rows do not hold column '{col}'")
        out[col] = pa.array([_value(v, typ) for v in values], TYPES[typ].arrow)
    return derive(spec, pa.table(out))
