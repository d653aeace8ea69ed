"""Time arithmetic of the extractor, pure and unit-tested: cutting an interval into checkpoint slices and
into parallel fetch windows, from what one probe page showed about the data's density.

Every cut is half-open and contiguous: the pieces cover exactly the interval, so a record on an edge
belongs to exactly one piece. Every edge is a whole second: a server that compares filter datetimes at
second precision (truncating the fraction of the bound and of the record) then agrees with the client's own
reading of each window, so no record falls between two windows (docs/klaviyo-behaviour.md).
"""

from __future__ import annotations

from datetime import datetime, timedelta

from ..base import Window

WINDOWS_PER_WORKER = 4
MIN_PAGES_PER_WINDOW = 8  # a window's last page is partial, so a window should span several pages
MAX_SLICES = 1000
SECOND = timedelta(seconds=1)


def whole(dt: datetime) -> datetime:
    """``dt`` floored to a whole second."""
    return dt.replace(microsecond=0)


def _cut(edges: list) -> list[tuple]:
    """Consecutive pairs of whole-second edges, without the empty ones flooring made."""
    edges = [e if e is None else whole(e) for e in edges]
    out = []
    for lo, hi in zip(edges, edges[1:]):
        if lo is None or lo < hi:
            out.append((lo, hi))
    return out


def checkpoint_slices(start: datetime | None, end: datetime, probe_rows: int, t0: datetime, t1: datetime, t_max: datetime,
                      rows_per_slice: int) -> list[Window]:  # fmt: skip
    """Slices of about ``rows_per_slice`` records: a probe page of ``probe_rows`` records spanned ``t0..t1``,
    and the newest record is at ``t_max``. The first slice starts at ``start``, the last ends at ``end``."""
    if t_max <= t0:
        return [Window(*_cut([start, end])[0])]
    per_second = probe_rows / max((t1 - t0).total_seconds(), 1.0)
    estimate = per_second * (t_max - t0).total_seconds()
    n = max(1, min(MAX_SLICES, int(estimate // max(rows_per_slice, 1)) + 1))
    if n == 1:
        return [Window(*_cut([start, end])[0])]
    step = (t_max - t0) / n
    return [Window(lo, hi) for lo, hi in _cut([start] + [t0 + step * j for j in range(1, n)] + [end])]


def fetch_windows(t0: datetime, t1: datetime, t_max: datetime, end: datetime, parallelism: int) -> list[tuple[datetime, datetime]]:
    """Windows for ``[t1, end)`` fetched in parallel: the probe page covered ``t0..t1``, the newest record is
    at ``t_max``. Enough windows to keep every worker busy, each spanning several pages; the last window
    reaches ``end`` (records that arrive while the run goes on)."""
    covered = max((t1 - t0).total_seconds(), 1e-3)
    est_pages = max((t_max - t1).total_seconds(), 0.0) / covered
    k = max(1, min(parallelism * WINDOWS_PER_WORKER, int(est_pages / MIN_PAGES_PER_WINDOW)))
    step = (t_max - t1) / k
    return _cut([min(e, end) for e in [t1 + step * j for j in range(k)] + [whole(t_max) + SECOND]] + [end])
