"""Column types, one map for all: each type's Arrow type, dlt type and Python type for typed decoding.

Sources declare their columns with these names; the loader, the converters and the tests read the rest here.
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal
from typing import Annotated, Any, Optional

import msgspec
import pyarrow as pa

TS, TEXT, INT, FLOAT, BOOL, JSON, DATE = "timestamp", "text", "bigint", "double", "bool", "json", "date"
DECIMAL = "decimal"  # exact numbers such as money: dlt's default precision, 29 digits before the point and 9 after
DECIMAL_PRECISION, DECIMAL_SCALE = 38, 9


@dataclass(frozen=True)
class ColumnType:
    arrow: pa.DataType
    dlt: str
    python: Any  # what a typed decoder reads (JSON stays raw bytes)


TYPES: dict[str, ColumnType] = {
    TEXT: ColumnType(pa.string(), "text", Optional[str]),
    INT: ColumnType(pa.int64(), "bigint", Optional[Annotated[int, msgspec.Meta(ge=-(2**63), le=2**63 - 1)]]),  # 64 bits
    FLOAT: ColumnType(pa.float64(), "double", Optional[float]),
    BOOL: ColumnType(pa.bool_(), "bool", Optional[bool]),
    TS: ColumnType(pa.timestamp("us", tz="UTC"), "timestamp", Optional[str]),
    DATE: ColumnType(pa.date32(), "date", Optional[str]),
    DECIMAL: ColumnType(
        pa.decimal128(DECIMAL_PRECISION, DECIMAL_SCALE), "decimal", Optional[Decimal]
    ),  # JSON numbers read exactly
    JSON: ColumnType(pa.string(), "json", None),
}


# a column's type as DuckDB and PostgreSQL name it (information_schema) -> its type here: the types a column a source
# adds on the fly can have (types.undeclared), those it must keep when another load (another account) made it
DATABASE_TYPES = {"bigint": INT, "double": FLOAT, "double precision": FLOAT, "boolean": BOOL, "varchar": TEXT,
                  "character varying": TEXT, "text": TEXT, "json": JSON, "jsonb": JSON}  # fmt: skip


def from_database(name: str) -> str | None:
    """The type here of a column the database names ``name`` (None: none of :data:`DATABASE_TYPES`)."""
    return DATABASE_TYPES.get(name.lower())


def arrow_schema(columns: dict[str, str]) -> pa.Schema:
    return pa.schema([(col, TYPES[typ].arrow) for col, typ in columns.items()])


TYPE_KEY = b"omniload.type"  # Arrow field metadata: the type of a column a source adds on the fly (not declared)


def typed_field(name: str, typ: str) -> pa.Field:
    """A field of a column not declared in advance, carrying its type (JSON is text in Arrow) for the load's hints."""
    return pa.field(name, TYPES[typ].arrow, metadata={TYPE_KEY: typ.encode()})


def undeclared(schema: pa.Schema, declared) -> dict[str, str]:
    """The columns of ``schema`` that carry their type and are not in ``declared``: name -> type."""
    return {f.name: f.metadata[TYPE_KEY].decode() for f in schema
            if f.name not in declared and f.metadata and TYPE_KEY in f.metadata}  # fmt: skip


def column_hints(
    columns: dict[str, str], primary_key: tuple[str, ...], cursor: str | None, merge: bool
) -> dict[str, dict]:
    """dlt column hints for declared columns: types, nullability, and (for merge tables) keep the newest
    version of a record when one load holds two."""
    hints: dict[str, dict[str, Any]] = {}
    for col, typ in columns.items():
        hint: dict[str, Any] = {"name": col, "data_type": TYPES[typ].dlt, "nullable": col not in primary_key}
        if typ == TS:
            hint["timezone"] = True
            hint["precision"] = 6
        if typ == DECIMAL:
            hint["precision"], hint["scale"] = DECIMAL_PRECISION, DECIMAL_SCALE
        if col == cursor and merge:
            hint["dedup_sort"] = "desc"
        hints[col] = hint
    return hints
