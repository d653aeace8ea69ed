"""Turn pages of JSON:API resources into Arrow tables with a table's declared column schema.

Attributes become top-level columns with their declared types (timestamps parsed leniently into UTC
``timestamp[us]``), to-one relationships become ``<name>_id`` columns, and free-form objects stay whole as
JSON text (loaded as JSON by the destination). The lenient path (a page whose values do not all have their
declared types) keeps values as the API sent them: a value that does not fit a text column lands as its JSON
text (``true``, ``{"a":1}``, a 30-digit integer exactly); one that does not fit a number, boolean or time column
raises :class:`BadData` naming the record. A record without an ``id``, or a timestamp that cannot be read, raises
:class:`BadData` naming the table and page rather than loading garbage.
"""

from __future__ import annotations

from collections.abc import Callable
from decimal import Decimal
from typing import Any

import msgspec
import pyarrow as pa
import pyarrow.compute as pc

from ...dates import parse_timestamp
from ...errors import BadData
from ...types import BOOL, DECIMAL, FLOAT, INT, JSON, TEXT, TS, TYPES
from ...types import arrow_schema as _schema
from .columns import RawColumn, field_values, relationship_ids
from .properties import SOURCE, add_known
from .spec import TableSpec

NULL_BYTES = b"null"


def arrow_schema(spec: TableSpec) -> pa.Schema:
    return _schema(spec.all_columns)


def read_columns(spec: TableSpec) -> dict[str, str]:
    """The columns read from the API: all but the derived ones."""
    return {c: t for c, t in spec.all_columns.items() if c not in spec.derived}


def derive(spec: TableSpec, table: pa.Table, raw: dict[str, RawColumn] | None = None) -> pa.Table:
    """``table`` (the columns read from the API) with the spec's derived columns added; ``raw``: the JSON columns'
    raw values of a typed page (columns.py), which the derived columns are decoded from when given."""
    if not spec.derived:
        return table
    return add_known(table, raw.get(SOURCE) if raw else None)


def timestamps(values: list[Any], table: str, column: str, where: str) -> pa.Array:
    try:  # a typed page's values are text already
        arr = pa.array(values, pa.string())
    except (pa.ArrowInvalid, pa.ArrowTypeError):
        arr = pa.array([None if v is None else str(v) for v in values], pa.string())
    try:
        return pc.cast(arr, pa.timestamp("us", tz="UTC"))
    except (pa.ArrowInvalid, pa.ArrowNotImplementedError):
        out = []
        for v in arr.to_pylist():
            try:
                out.append(None if v is None else parse_timestamp(v))
            except ValueError:
                raise BadData(f"table '{table}': unreadable timestamp {v!r} in column '{column}' ({where})") from None
        return pa.array(out, pa.timestamp("us", tz="UTC"))


def _typed(values: list[Any], spec: TableSpec, col: str, typ: str, where: str) -> pa.Array:
    """A column of a plain type (not a timestamp); a value that does not fit (text in a number, a price with more
    decimals than the column keeps) fails the page rather than loading something else."""
    if typ == DECIMAL:  # a generic parse gives floats: their shortest text is the number the JSON said
        values = [Decimal(repr(v)) if isinstance(v, float) else v for v in values]
    try:
        return pa.array(values, TYPES[typ].arrow)
    except (pa.ArrowInvalid, pa.ArrowTypeError, TypeError, ArithmeticError) as exc:
        raise BadData(f"table '{spec.name}': column '{col}' is not {typ} ({where}): {exc}") from None


def _json(value: Any) -> str | None:
    """A parsed value (or a ``msgspec.Raw``) as JSON text, integers of any width exactly."""
    return None if value is None else msgspec.json.encode(value).decode()


class _Misfit(Exception):
    """A value that cannot be held by its column's type."""


def _text(v: Any) -> str:
    return v if isinstance(v, str) else _json(v)  # type: ignore[return-value]


def _int(v: Any) -> int:
    if type(v) is float and v.is_integer():
        v = int(v)
    if type(v) is int and -(2**63) <= v < 2**63:
        return v
    raise _Misfit


def _float(v: Any) -> float:
    if type(v) in (int, float):
        return float(v)
    raise _Misfit


def _bool(v: Any) -> bool:
    if type(v) is bool:
        return v
    raise _Misfit


def _decimal(v: Any) -> Any:
    if type(v) in (int, float) or isinstance(v, Decimal):
        return v  # _typed reads a float as the number its JSON text said
    raise _Misfit


def _str(v: Any) -> str:
    if isinstance(v, str):
        return v
    raise _Misfit


# the lenient path: a parsed JSON value -> what its column holds (_Misfit: it cannot)
_FIT: dict[str, Callable[[Any], Any]] = {TEXT: _text, JSON: _json, INT: _int, FLOAT: _float, BOOL: _bool,
                                         DECIMAL: _decimal}  # fmt: skip


def typed_to_arrow(decoder, records: list[Any], consts: dict[str, str], where: str) -> pa.Table:
    """Fast path: typed records from :class:`PageDecoder` -> Arrow, each column read in one C loop (columns.py)."""
    spec = decoder.spec
    ids = field_values(records, "id")
    if None in ids:
        raise BadData(f"table '{spec.name}': a record without an id ({where})")
    n = len(ids)
    attrs = field_values(records, "attributes")
    if None in attrs:
        attrs = [a if a is not None else decoder.empty_attrs for a in attrs]
    arrays: dict[str, pa.Array] = {spec.id_column: pa.array(ids, pa.string())}
    raw: dict[str, RawColumn] = {}
    for ident, col, typ in decoder.attr_names:
        values = field_values(attrs, ident)
        if typ == JSON:
            raw[col] = RawColumn(values)
            text = raw[col].text()
            if text is None:  # not UTF-8 (Arrow says which value)
                text = pa.array([None if v == NULL_BYTES else v for v in map(bytes, values)], pa.string())
            arrays[col] = text
        elif typ == TS:
            arrays[col] = timestamps(values, spec.name, col, where)
        else:
            arrays[col] = _typed(values, spec, col, typ, where)
    for ident, col in decoder.rel_names:
        ids_ = relationship_ids(records, ident)
        if ids_ is None:
            ids_ = []
            for r in records:
                rel = getattr(r.relationships, ident, None) if r.relationships is not None else None
                ids_.append(rel.data.id if rel is not None and rel.data is not None else None)
        arrays[col] = pa.array(ids_, pa.string())
    for col, value in consts.items():
        arrays[col] = pa.array([value] * n, pa.string())
    schema = _schema(read_columns(spec))
    return derive(spec, pa.Table.from_arrays([arrays[f.name] for f in schema], schema=schema), raw)


def records_to_arrow(spec: TableSpec, records: list[dict[str, Any]], consts: dict[str, str], where: str) -> pa.Table:
    """Convert resource objects (``data[]`` items as dicts) to an Arrow table in the spec's schema (lenient)."""
    cols = read_columns(spec)
    data: dict[str, list[Any]] = {c: [] for c in cols}
    ids = data[spec.id_column]
    attr_cols = [(col, typ, _FIT.get(typ, _str)) for col, typ in spec.columns.items()]
    rels = [(r, f"{r.replace('-', '_')}_id") for r in spec.to_one]
    for rec in records:
        rid = rec.get("id")
        if not rid:
            raise BadData(f"table '{spec.name}': a record without an id ({where})")
        ids.append(_text(rid))
        attrs = rec.get("attributes") or {}
        for col, typ, fit in attr_cols:
            v = attrs.get(col)
            try:
                data[col].append(None if v is None else fit(v))
            except _Misfit:
                shown = _json(v) or ""
                shown = shown if len(shown) <= 60 else shown[:57] + "..."
                raise BadData(f"table '{spec.name}': record '{rid}' holds {shown} in column '{col}', which is {typ} "
                              f"({where}); the API's value does not fit the column's type: report it") from None  # fmt: skip
        relationships = rec.get("relationships") or {}
        for rel, col in rels:
            d = (relationships.get(rel) or {}).get("data")
            data[col].append(_text(d["id"]) if isinstance(d, dict) and d.get("id") is not None else None)
    n = len(ids)
    arrays = []
    for col, typ in cols.items():
        if col in consts:
            arrays.append(pa.array([consts[col]] * n, pa.string()))
        elif typ == TS:
            arrays.append(timestamps(data[col], spec.name, col, where))
        else:
            arrays.append(_typed(data[col], spec, col, typ, where))
    return derive(spec, pa.Table.from_arrays(arrays, schema=_schema(cols)))
