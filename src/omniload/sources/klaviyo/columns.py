"""Build Arrow columns from a page's typed records (decode.py) without a Python step per value where C can do it.

A field of every record is read with ``map(attrgetter(...))`` (one C loop, no frame per record); a free-form
object's raw JSON bytes (``msgspec.Raw``) become an Arrow string column from one ``b"".join`` and an offsets
buffer, not one ``bytes`` copy and comparison per record; the same bytes, joined as one JSON array, are what the
well-known event properties are decoded from (properties.py) and what ``properties=columns`` lifts (lift.py).
Each builder returns None when its fast path does not apply, and the caller keeps its value-by-value path.
"""

from __future__ import annotations

from operator import attrgetter
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc

NULL_TEXT = pa.scalar("null", pa.string())


def field_values(items: list[Any], name: str) -> list[Any]:
    """``getattr(item, name)`` of each item."""
    return list(map(attrgetter(name), items))


def relationship_ids(records: list[Any], rel: str) -> list[Any] | None:
    """Each record's ``relationships.<rel>.data.id``; None when a record lacks a step of that path (the caller
    walks it record by record then)."""
    try:
        return list(map(attrgetter(f"relationships.{rel}.data.id"), records))
    except AttributeError:  # None on the way (no relationships, no such relationship, no data)
        return None


class RawColumn:
    """One column of raw JSON values (``msgspec.Raw``, ``null`` where absent): its bytes joined once."""

    def __init__(self, values: list[Any]) -> None:
        self.values = values

    def text(self) -> pa.Array | None:
        """The values as an Arrow string column (JSON ``null`` as NULL), or None when they are not valid UTF-8
        or too long for one column (the caller converts them one by one then)."""
        n, data = len(self.values), b"".join(self.values)
        if len(data) >= 2**31:
            return None
        lengths = pa.array(map(len, self.values), pa.int32(), size=n)
        offsets = pa.concat_arrays([pa.array([0], pa.int32()), pc.cumulative_sum(lengths)])
        arr = pa.Array.from_buffers(pa.string(), n, [None, offsets.buffers()[1], pa.py_buffer(data)])
        try:
            arr.validate(full=True)
        except pa.ArrowInvalid:
            return None
        valid = pc.not_equal(arr, NULL_TEXT)
        if valid.false_count:
            arr = pa.Array.from_buffers(pa.string(), n, [valid.buffers()[1], *arr.buffers()[1:]])
        return arr

    def array_json(self) -> bytes:
        """The values as one JSON array (``[v1,v2,...]``), to decode them all in one call."""
        return b"[" + b",".join(self.values) + b"]"
