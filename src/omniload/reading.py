"""The steps every caller of a :class:`~omniload.sources.base.TableReader` takes, in one place: the CLI's loader
(load.py) and the plain-dlt source (sources/klaviyo/dlt_source.py) both drive a reader through them, so both keep
the reader contract alike: :func:`plan` (``restore`` the saved state, then ``plan`` the slices from where reading
starts, :func:`resume_point`), ``read`` each slice following its newest cursor value (:func:`newest`), then save
the cursor (:func:`advance`) and the reader's own ``state_update`` with the slice's rows.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime, timedelta
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc

from .dates import iso, parse_timestamp
from .sources.base import TableReader, Window


def resume_point(saved: dict[str, Any], lookback: timedelta) -> datetime | None:
    """The saved cursor less the lookback (records the source shows late are read again); None: nothing saved.
    A saved cursor that cannot be read raises ValueError."""
    last = saved.get("last_value")
    return parse_timestamp(last) - lookback if last else None


def plan(reader: TableReader, saved: dict[str, Any], start: datetime | None, end: datetime | None,
         rows_per_slice: int) -> list[Window]:  # fmt: skip
    """The reader's slices of ``[start, end)``, after it got its saved state back (a reader may keep its own)."""
    reader.restore(saved)
    return reader.plan(start, end, rows_per_slice)


def with_parts(reader: TableReader, windows: list[Window]) -> Iterator[Window]:
    """The planned slices, each followed by the parts the reader learns while reading it (``following``); the
    caller reads each window whole before asking for the next. (load.py reads ahead, so it asks on its own.)"""
    n = 0
    while n < len(windows):
        yield windows[n]
        if n + 1 == len(windows):
            part = reader.following(windows[n])
            if part is not None:
                windows.append(part)
        n += 1


def newest(batch: pa.Table, cursor: str | None, so_far: Any) -> Any:
    """The larger of ``so_far`` (None: none yet) and the largest ``cursor`` value of ``batch``."""
    if cursor and batch.num_rows:
        m = pc.max(batch.column(cursor)).as_py()
        if m is not None and (so_far is None or m > so_far):
            return m
    return so_far


def advance(state: dict[str, Any], newest: Any, window: Window, previous: str | None) -> bool:
    """Save ``newest``, never past the slice's end, as the cursor (``last_value``) when it is after ``previous``
    (the cursor saved before, None: none); whether it moved."""
    if newest is None:
        return False
    newest = min(newest, window.hi)
    if previous and newest <= parse_timestamp(previous):
        return False
    state["last_value"] = iso(newest)
    return True
