"""What the user asks to change in the rows on their way to the destination, for any source: column type
overrides and renames (``--columns name:type``, ``name:type:source``, ``name::source``), column masking
(``--mask column:algorithm[:param]``, ingestr's syntax and algorithms), whitespace trimming
(``--trim-whitespace``) and the SCD2 row hash; and what a destination cannot store: NUL characters
(:func:`without_nul`).

All are checked against the table's columns before anything is written; the primary and incremental keys
cannot be masked, retyped or renamed (the cursor and the merge need them as they are). Nulls stay null.
Masks and types name a column as the source has it; a rename is applied last.
"""

from __future__ import annotations

import hashlib
import hmac
import math
import random
import re
import threading
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta

import pyarrow as pa
import pyarrow.compute as pc

from .errors import UsageError
from .sources.base import TableInfo
from .types import JSON, TYPE_KEY, TYPES

# --columns types (dlt's names) -> Arrow type; decimal is dlt's default precision (types.py)
COLUMN_TYPES: dict[str, pa.DataType] = {name: t.arrow for name, t in TYPES.items()}
COLUMN_TYPES.update({"bigdecimal": pa.decimal256(76, 38), "time": pa.time64("us"),
                     "binary": pa.binary()})  # fmt: skip
# ingestr's type names -> ours (varchar(n) is text too)
TYPE_ALIASES = {"string": "text", "int": "bigint", "smallint": "bigint", "tinyint": "bigint", "float": "double",
                "boolean": "bool", "uuid": "text"}  # fmt: skip


def _type_name(typ: str) -> str | None:
    """A --columns type as omniload names it, or None when it is none of ours or ingestr's."""
    typ = typ.strip().lower()
    if re.fullmatch(r"varchar\(\d+\)", typ):
        return "text"
    typ = TYPE_ALIASES.get(typ, typ)
    return typ if typ in COLUMN_TYPES else None


def _digits(v: str) -> str:
    return re.sub(r"\D", "", v)


def _partial(v: str, n: int) -> str:
    return "*" * len(v) if len(v) <= n * 2 else v[:n] + "*" * (len(v) - 2 * n) + v[-n:]


def _email(v: str) -> str:
    if "@" not in v:
        return _partial(v, 2)
    local, domain = v.split("@", 1)
    return ("*" * len(local) if len(local) <= 2 else local[0] + "*" * (len(local) - 2) + local[-1]) + "@" + domain


def _phone(v: str) -> str:
    d = _digits(v)
    return "*" * len(d) if len(d) < 10 else d[:3] + "-***-****"


def _card(v: str) -> str:
    d = _digits(v)
    return "*" * len(d) if len(d) < 12 else "*" * (len(d) - 4) + d[-4:]


def _ssn(v: str) -> str:
    d = _digits(v)
    return "***-**-" + d[-4:] if len(d) == 9 else "*" * len(d)


# algorithm -> (param -> function of a non-empty string value), as ingestr's masking engine does them
MASKS: dict[str, Callable[[str | None], Callable[[str], str]]] = {
    "hash": lambda p: lambda v: hashlib.sha256(v.encode()).hexdigest(),
    "sha256": lambda p: lambda v: hashlib.sha256(v.encode()).hexdigest(),
    "md5": lambda p: lambda v: hashlib.md5(v.encode()).hexdigest(),
    "hmac": lambda p: lambda v: hmac.new((p or "default-key").encode(), v.encode(), hashlib.sha256).hexdigest(),
    "email": lambda p: _email,
    "phone": lambda p: _phone,
    "credit_card": lambda p: _card,
    "ssn": lambda p: _ssn,
    "redact": lambda p: lambda v: "REDACTED",
    "stars": lambda p: lambda v: "*" * len(v),
    "fixed": lambda p: lambda v: p or "MASKED",
    "partial": lambda p: lambda v: _partial(v, int(p) if p else 2),
    "first_letter": lambda p: lambda v: v[0] + "*" * (len(v) - 1),
}

_ALNUM = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789"
_NUMERIC = ("bigint", "double", "decimal")


def _number(v) -> float | None:
    try:
        return float(v)
    except (TypeError, ValueError):
        return None


def _go_round(x: float) -> float:
    """Go's math.Round: halves away from zero (Python's round() goes to even)."""
    return math.copysign(math.floor(abs(x) + 0.5), x)


def _param(p: str | None, cast, default, ok=lambda x: True):
    try:
        value = cast(p) if p else default
    except ValueError:
        return default
    return value if ok(value) else default


def _when(v) -> datetime | date | None:
    """A date or timestamp value, or text that reads as one (else None: the value becomes null)."""
    if isinstance(v, (datetime, date)):
        return v
    try:
        from dateutil import parser

        return parser.parse(str(v))
    except (ValueError, OverflowError):
        return None


class _Tokens:
    """The same token for the same value within a run, for every table (ingestr's uuid and sequential)."""

    def __init__(self) -> None:
        self.lock, self.uuids, self.numbers = threading.Lock(), {}, {}

    def uuid(self, v) -> str:
        with self.lock:
            return self.uuids.setdefault(str(v), str(uuid.uuid4()))

    def sequential(self, v) -> int:
        with self.lock:
            return self.numbers.setdefault(str(v), len(self.numbers) + 1)


def _random(v, typ: str):
    if typ == "bigint":
        low = 10 ** (len(str(abs(int(v)))) - 1)
        return random.randrange(low, low * 10)
    if typ in ("double", "decimal"):
        return random.random() * 2 * (abs(float(v)) or 1.0)
    return "".join(random.choice(_ALNUM) for _ in str(v))


def _noise(v, p: str | None, typ: str):
    f = _number(v)
    if f is None:
        return None
    out = f + (random.random() * 2 - 1) * _param(p, float, 0.1) * (abs(f) or 1.0)
    return int(out) if typ == "bigint" else out


def _round(v, p: str | None):
    f = _number(v)
    precision = _param(p, float, 10.0, lambda x: x != 0)
    return None if f is None else int(_go_round(f / precision) * precision)


def _range(v, p: str | None):
    f = _number(v)
    bucket = _param(p, float, 100.0, lambda x: x > 0)
    if f is None:
        return None
    lower = int(math.floor(f / bucket)) * int(bucket)
    return f"{lower}-{lower + int(bucket)}"


def _date_shift(v, p: str | None, typ: str):
    t = _when(v)
    if t is None:
        return None
    days = _param(p, int, 30, lambda x: x > 0)
    shifted = t + timedelta(days=random.randint(-days, days))
    return shifted if typ in ("timestamp", "date") else shifted.strftime("%Y-%m-%d")


def _year(v):
    t = _when(v)
    return None if t is None else t.year


def _month_year(v):
    t = _when(v)
    return None if t is None else f"{t.year}-{t.month:02d}"


# ingestr's algorithms that keep or change the value's type: algorithm -> (param, column type, tokens) -> function of a
# value (None: null), and the type of the masked column given the column's type
TYPED_MASKS: dict[str, Callable] = {
    "random": lambda p, typ, tok: lambda v: _random(v, typ),
    "uuid": lambda p, typ, tok: tok.uuid,
    "sequential": lambda p, typ, tok: tok.sequential,
    "round": lambda p, typ, tok: lambda v: _round(v, p),
    "range": lambda p, typ, tok: lambda v: _range(v, p),
    "noise": lambda p, typ, tok: lambda v: _noise(v, p, typ),
    "date_shift": lambda p, typ, tok: lambda v: _date_shift(v, p, typ),
    "year_only": lambda p, typ, tok: _year,
    "month_year": lambda p, typ, tok: _month_year,
}


def mask_type(algorithm: str, typ: str) -> str:
    """The type a column of type ``typ`` has once masked with ``algorithm`` (as ingestr's masker says)."""
    if algorithm in ("sequential", "round", "year_only"):
        return "bigint"
    if algorithm in ("random", "noise"):
        return typ if typ in ("bigint", "double") else "double" if typ == "decimal" else "text"
    if algorithm == "date_shift":
        return typ if typ in ("timestamp", "date") else "text"
    return "text"


@dataclass
class Transform:
    """Column types, renames, masks and trimming for every table of a run; ``check`` checks them against one
    table."""

    columns: dict[str, str] = field(default_factory=dict)  # source column -> type name
    renames: dict[str, str] = field(default_factory=dict)  # source column -> the name it lands as
    masks: dict[str, tuple[str, str | None]] = field(default_factory=dict)  # column -> (algorithm, param)
    trim: bool = False  # --trim-whitespace
    tokens: _Tokens = field(default_factory=_Tokens)

    @classmethod
    def parse(cls, columns: list[str], masks: list[str], trim: bool = False) -> Transform:
        t = cls(trim=trim)
        for item in columns:
            parts = item.split(":")
            name, typ = parts[0].strip(), parts[1] if len(parts) > 1 else ""
            source = parts[2].strip() if len(parts) == 3 else ""
            known = _type_name(typ) if typ.strip() else None
            if not name or len(parts) > 3 or (typ.strip() and not known) or (not typ.strip() and not source):
                raise UsageError(f"--columns: '{item}' must be name:type, name:type:source (rename) or name::source "
                                 f"(rename only), with a type of {', '.join([*COLUMN_TYPES, *TYPE_ALIASES])}, varchar(n)")  # fmt: skip
            column = source or name
            if known:
                t.columns[column] = known
            if source and source != name:
                t.renames[source] = name
        for item in masks:
            parts = item.split(":", 2)
            algorithm = parts[1].lower() if len(parts) > 1 else ""
            if len(parts) < 2 or not parts[0] or (algorithm not in MASKS and algorithm not in TYPED_MASKS):
                raise UsageError(f"--mask: '{parts[0]}:{algorithm}' must be column:algorithm[:param] with an algorithm "
                                 f"of {', '.join([*MASKS, *TYPED_MASKS])}")  # fmt: skip
            param = parts[2] if len(parts) == 3 else None
            if algorithm == "partial" and param is not None and not param.isdigit():
                raise UsageError(f"--mask: partial takes a number of characters, not '{param}'")
            if algorithm == "hmac" and param:
                from .uri import register_secret

                register_secret(param)  # the hmac key is a secret
            t.masks[parts[0]] = (algorithm, param)
        return t

    def __bool__(self) -> bool:
        return bool(self.columns or self.masks or self.renames or self.trim)

    def check(self, info: TableInfo) -> None:
        """Every named column exists in the table, no key is masked, retyped or renamed, and no rename takes the
        name of another column."""
        keys = {*info.primary_key, *([info.cursor] if info.cursor else [])}
        for flag, names in (("--columns", [*self.columns, *self.renames]), ("--mask", self.masks)):
            for name in names:
                if name not in info.columns and name not in info.primary_key:
                    raise UsageError(
                        f"{flag}: table '{info.name}' has no column '{name}'; columns: {', '.join(info.columns)}"
                    )
                if name in keys:
                    raise UsageError(f"{flag}: '{name}' is a key of table '{info.name}' (primary or incremental) "
                                     "and must stay as it is")  # fmt: skip
        landed = [self.renames.get(c, c) for c in info.columns]
        twice = sorted({n for n in landed if landed.count(n) > 1})
        if twice:
            raise UsageError(
                f"--columns: table '{info.name}' would have two columns named '{twice[0]}'; rename to a free name"
            )

    def types(self, info: TableInfo) -> dict[str, str]:
        """The table's columns as they land: names after renames, types after overrides and masks."""
        out = dict(info.columns)
        out.update({c: t for c, t in self.columns.items() if c in out})
        out.update({c: mask_type(a, out[c]) for c, (a, _) in self.masks.items() if c in out})
        return {self.renames.get(c, c): t for c, t in out.items()}

    def apply(self, batch: pa.Table) -> pa.Table:
        if self.trim:
            for i, f in enumerate(batch.schema):
                if pa.types.is_string(f.type):
                    batch = batch.set_column(i, f, pc.utf8_trim_whitespace(batch.column(i)))  # its metadata kept
        for name, typ in self.columns.items():
            if name in batch.column_names:
                try:
                    col = pc.cast(batch.column(name), COLUMN_TYPES[typ])
                except (pa.ArrowInvalid, pa.ArrowNotImplementedError) as exc:
                    raise UsageError(
                        f"--columns: column '{name}' cannot be read as {typ}: {str(exc).splitlines()[0]}"
                    ) from None
                batch = batch.set_column(batch.column_names.index(name), name, col)
        for name, (algorithm, param) in self.masks.items():
            if name in batch.column_names:
                batch = batch.set_column(
                    batch.column_names.index(name), name, self._mask(batch.column(name), algorithm, param)
                )
        if self.renames:
            batch = batch.rename_columns([self.renames.get(c, c) for c in batch.column_names])
        return batch

    def _mask(self, col: pa.ChunkedArray, algorithm: str, param: str | None) -> pa.Array:
        if algorithm in MASKS:  # the 13 text algorithms, byte for byte as ingestr's; "" stays ""
            fn = MASKS[algorithm](param)
            values = pc.cast(col, pa.string()).to_pylist()
            return pa.array([v if v is None or v == "" else fn(v) for v in values], pa.string())
        typ = _type_of(col.type)
        fn = TYPED_MASKS[algorithm](param, typ, self.tokens)
        out = mask_type(algorithm, typ)
        values = (
            col.to_pylist() if out == typ or typ in ("timestamp", "date") else pc.cast(col, pa.string()).to_pylist()
        )
        return pa.array([None if v is None else fn(v) for v in values], COLUMN_TYPES[out])


def _type_of(t: pa.DataType) -> str:
    """omniload's name of an Arrow type (what a typed mask keeps)."""
    if pa.types.is_integer(t):
        return "bigint"
    if pa.types.is_floating(t):
        return "double"
    if pa.types.is_decimal(t):
        return "decimal"
    if pa.types.is_timestamp(t):
        return "timestamp"
    if pa.types.is_date(t):
        return "date"
    return "text"


def row_hash(batch: pa.Table, column: str = "_dlt_id") -> pa.Table:
    """Add ``column``: a hash of each row's values (what SCD2 compares to see that a record changed)."""
    parts = [
        pc.fill_null(pc.cast(batch.column(c), pa.string()), "\x00")
        for c in batch.column_names
        if not c.startswith("_dlt_")
    ]
    joined = pc.binary_join_element_wise(*parts, "\x1f") if parts else pa.array([""] * batch.num_rows)
    hashes = pa.array(
        [hashlib.blake2b(v.encode(), digest_size=16).hexdigest() for v in joined.to_pylist()], pa.string()
    )
    return batch.append_column(column, hashes)


# a JSON text's \u0000 escape: after an even number of backslashes (``\\u0000`` is a backslash, then "u0000")
_NUL_ESCAPE = r"((?:^|[^\\])(?:\\\\)*)\\u0000"
_NUL_BYTE, _NUL_TEXT = re.compile(b"\x00"), re.compile(rb"\\u0000")


def _holds(col: pa.ChunkedArray, pattern: re.Pattern) -> bool:
    """Whether the column's character data may hold ``pattern``: a scan of its buffers, ten times faster than
    Arrow's substring kernels (bytes of values sliced away may say yes: the exact replace follows)."""
    return any(c.buffers()[2] is not None and pattern.search(memoryview(c.buffers()[2])) for c in col.chunks)


def without_nul(batch: pa.Table, json_columns: set[str]) -> pa.Table:
    """``batch`` with NUL characters removed from its text, the rest of each value kept: from every string
    column, and in ``json_columns`` and the columns whose field says JSON (a source's columns added on the fly,
    ``types.typed_field``) also the ``\\u0000`` escape (for destinations that cannot store them). Each field is
    kept as it is, its type metadata too: the load's hints read it (a JSON column lost as text, dlt's schema said
    text beside PostgreSQL's jsonb)."""
    for i, column in enumerate(batch.schema):
        if not pa.types.is_string(column.type):
            continue
        col = clean = batch.column(i)
        if _holds(col, _NUL_BYTE):
            clean = pc.replace_substring(clean, "\x00", "")
        is_json = column.name in json_columns or (column.metadata or {}).get(TYPE_KEY) == JSON.encode()
        if is_json and _holds(col, _NUL_TEXT):
            while pc.any(pc.match_substring_regex(clean, _NUL_ESCAPE)).as_py():  # a run of escapes: one per pass
                clean = pc.replace_substring_regex(clean, _NUL_ESCAPE, r"\1")
        if clean is not col:
            batch = batch.set_column(i, column, clean)
    return batch
