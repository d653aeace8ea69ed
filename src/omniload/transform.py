"""What the user asks to change in the rows on their way to the destination, for any source: column type
overrides (``--columns name:type``), column masking (``--mask column:algorithm[:param]``, ingestr's syntax) and
the SCD2 row hash; and what a destination cannot store: NUL characters (:func:`without_nul`).

Both are checked against the table's columns before anything is written; the primary and incremental keys
cannot be masked or retyped (the cursor and the merge need them as they are). Nulls stay null.
"""

from __future__ import annotations

import hashlib
import hmac
import re
from dataclasses import dataclass, field
from typing import Callable

import pyarrow as pa
import pyarrow.compute as pc

from .errors import UsageError
from .sources.base import TableInfo
from .types import TYPES

# --columns types (dlt's names) -> Arrow type; decimal is dlt's default precision (types.py)
COLUMN_TYPES: dict[str, pa.DataType] = {name: t.arrow for name, t in TYPES.items()}
COLUMN_TYPES.update({"bigdecimal": pa.decimal256(76, 38), "time": pa.time64("us"),
                     "binary": pa.binary()})  # fmt: skip


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


@dataclass
class Transform:
    """Column types and masks for every table of a run; ``for_table`` checks them against one table."""

    columns: dict[str, str] = field(default_factory=dict)  # column -> type name
    masks: dict[str, Callable[[str], str]] = field(default_factory=dict)
    mask_specs: dict[str, str] = field(default_factory=dict)  # column -> as given, for messages

    @classmethod
    def parse(cls, columns: list[str], masks: list[str]) -> "Transform":
        t = cls()
        for item in columns:
            name, _, typ = item.partition(":")
            if not name or typ not in COLUMN_TYPES:
                raise UsageError(f"--columns: '{item}' must be name:type with a type of {', '.join(COLUMN_TYPES)}")
            t.columns[name.strip()] = typ
        for item in masks:
            parts = item.split(":")
            if len(parts) not in (2, 3) or not parts[0] or parts[1].lower() not in MASKS:
                raise UsageError(f"--mask: '{item.split(':')[0]}:{parts[1] if len(parts) > 1 else ''}' must be "
                                 f"column:algorithm[:param] with an algorithm of {', '.join(MASKS)}")  # fmt: skip
            algorithm, param = parts[1].lower(), parts[2] if len(parts) == 3 else None
            if algorithm == "partial" and param is not None and not param.isdigit():
                raise UsageError(f"--mask: partial takes a number of characters, not '{param}'")
            if algorithm == "hmac" and param:
                from .uri import register_secret

                register_secret(param)  # the hmac key is a secret
            t.masks[parts[0]] = MASKS[algorithm](param)
            t.mask_specs[parts[0]] = algorithm
        return t

    def __bool__(self) -> bool:
        return bool(self.columns or self.masks)

    def check(self, info: TableInfo) -> None:
        """Every named column exists in the table, and no key is masked or retyped."""
        keys = {*info.primary_key, *([info.cursor] if info.cursor else [])}
        for flag, names in (("--columns", self.columns), ("--mask", self.masks)):
            for name in names:
                if name not in info.columns and name not in info.primary_key:
                    raise UsageError(f"{flag}: table '{info.name}' has no column '{name}'; columns: {', '.join(info.columns)}")
                if name in keys:
                    raise UsageError(f"{flag}: '{name}' is a key of table '{info.name}' (primary or incremental) "
                                     "and must stay as it is")  # fmt: skip

    def types(self, info: TableInfo) -> dict[str, str]:
        """The table's column types after the overrides (a masked column holds text)."""
        out = dict(info.columns)
        out.update({c: t for c, t in self.columns.items() if c in out})
        out.update({c: "text" for c in self.masks if c in out})
        return out

    def apply(self, batch: pa.Table) -> pa.Table:
        for name, fn in self.masks.items():
            if name in batch.column_names:
                values = pc.cast(batch.column(name), pa.string()).to_pylist()
                masked = pa.array([v if v is None or v == "" else fn(v) for v in values], pa.string())
                batch = batch.set_column(batch.column_names.index(name), name, masked)
        for name, typ in self.columns.items():
            if name in batch.column_names and name not in self.masks:
                try:
                    col = pc.cast(batch.column(name), COLUMN_TYPES[typ])
                except (pa.ArrowInvalid, pa.ArrowNotImplementedError) as exc:
                    raise UsageError(f"--columns: column '{name}' cannot be read as {typ}: {str(exc).splitlines()[0]}") from None
                batch = batch.set_column(batch.column_names.index(name), name, col)
        return batch


def row_hash(batch: pa.Table, column: str = "_dlt_id") -> pa.Table:
    """Add ``column``: a hash of each row's values (what SCD2 compares to see that a record changed)."""
    parts = [pc.fill_null(pc.cast(batch.column(c), pa.string()), "\x00") for c in batch.column_names if not c.startswith("_dlt_")]
    joined = pc.binary_join_element_wise(*parts, "\x1f") if parts else pa.array([""] * batch.num_rows)
    hashes = pa.array([hashlib.blake2b(v.encode(), digest_size=16).hexdigest() for v in joined.to_pylist()], pa.string())
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
    column, and in ``json_columns`` also the ``\\u0000`` escape (for destinations that cannot store them)."""
    for i, field in enumerate(batch.schema):
        if not pa.types.is_string(field.type):
            continue
        col = clean = batch.column(i)
        if _holds(col, _NUL_BYTE):
            clean = pc.replace_substring(clean, "\x00", "")
        if field.name in json_columns and _holds(col, _NUL_TEXT):
            while pc.any(pc.match_substring_regex(clean, _NUL_ESCAPE)).as_py():  # a run of escapes: one per pass
                clean = pc.replace_substring_regex(clean, _NUL_ESCAPE, r"\1")
        if clean is not col:
            batch = batch.set_column(i, field.name, clean)
    return batch
