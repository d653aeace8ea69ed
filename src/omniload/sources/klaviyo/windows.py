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
SHORT_WINDOW_PAGES = 3  # ... but when there are too few pages to keep every worker busy, windows this short
MAX_SLICES = 1000
FIRST_SLICE_PAGES = 25  # the first checkpoint slice holds about this many pages: its rows commit within seconds
SECOND = timedelta(seconds=1)


def whole(dt: datetime) -> datetime:
    """``dt`` floored to a whole second."""
    return dt.replace(microsecond=0)


def _cut(edges: list) -> list[tuple]:
    """Consecutive pairs of whole-second edges, without the empty ones flooring made."""
    edges = [e if e is None else whole(e) for e in edges]
    out = []
    for lo, hi in zip(edges, edges[1:], strict=False):
        if lo is None or lo < hi:
            out.append((lo, hi))
    return out


def slice_rows(estimate: float, rows_per_slice: int, first: int) -> list[float]:
    """How many records each checkpoint slice of ``estimate`` records gets: a ramp from ``first`` doubling while
    under ``rows_per_slice`` (the first commit of a large backfill comes within seconds, and the few extra
    commits overlap the reads that follow them), then equal slices of at most ``rows_per_slice``, and after a
    ramp a last slice of ``first`` again (the last slice's load and commit follow its last page, with no read
    to hide behind: a small one ends the run sooner); at most ``MAX_SLICES`` slices in all. The sizes add up to
    ``estimate``."""
    rows_per_slice = max(rows_per_slice, 1)
    ramp: list[float] = []
    size = max(1, min(first, rows_per_slice))
    left = float(estimate)
    while size < rows_per_slice and left > size and len(ramp) < MAX_SLICES - 1:
        ramp.append(float(size))
        left -= size
        size *= 2
    tail = float(ramp[0]) if ramp and left > 2 * ramp[0] else 0.0  # ... and down: the last load is not overlapped
    left -= tail
    n = max(1, min(MAX_SLICES - len(ramp) - (1 if tail else 0), int(left // rows_per_slice) + 1))
    return ramp + [left / n] * n + ([tail] if tail else [])


def checkpoint_slices(start: datetime | None, end: datetime, probe_rows: int, t0: datetime, t1: datetime, t_max: datetime,
                      rows_per_slice: int) -> list[Window]:  # fmt: skip
    """Slices of about ``rows_per_slice`` records, after a ramp of smaller ones (:func:`slice_rows`, the first of
    ``FIRST_SLICE_PAGES`` probe pages): a probe page of ``probe_rows`` records spanned ``t0..t1``, and the newest
    record is at ``t_max``. The first slice starts at ``start``, the last ends at ``end``; each slice carries
    its estimated records (slices flooring emptied give theirs to the next)."""
    if t_max <= t0:
        return [Window(*_cut([start, end])[0])]
    per_second = probe_rows / max((t1 - t0).total_seconds(), 1.0)
    estimate = per_second * (t_max - t0).total_seconds()
    sizes = slice_rows(estimate, rows_per_slice, FIRST_SLICE_PAGES * probe_rows)
    if len(sizes) == 1:
        return [Window(*_cut([start, end])[0])]
    edges, done = [start if start is None else whole(start)], 0.0
    for size in sizes[:-1]:
        done += size
        edges.append(whole(t0 + (t_max - t0) * (done / estimate)))
    edges.append(whole(end))
    out, carried = [], 0.0
    for (lo, hi), size in zip(zip(edges, edges[1:], strict=False), sizes, strict=False):
        if lo is None or lo < hi:
            out.append(Window(lo, hi, size + carried))
            carried = 0.0
        else:
            carried += size
    return out


def window_count(est_pages: float, parallelism: int) -> int:
    """How many windows ``est_pages`` pages are cut into: whole waves of ``parallelism`` windows of at least
    ``MIN_PAGES_PER_WINDOW`` pages (a window is paged one request after another, so a last wave with fewer
    windows than workers leaves workers idle while it runs); when the pages cannot fill one such wave, one wave
    of windows of at least ``SHORT_WINDOW_PAGES`` pages (a small slice then takes a few round trips, not eight)."""
    full = int(est_pages / MIN_PAGES_PER_WINDOW)
    if full >= parallelism:
        return parallelism * min(WINDOWS_PER_WORKER, full // parallelism)
    return max(1, min(parallelism, int(est_pages / SHORT_WINDOW_PAGES)))


def fetch_windows(
    t0: datetime, t1: datetime, t_max: datetime, end: datetime, parallelism: int
) -> list[tuple[datetime, datetime]]:
    """Windows for ``[t1, end)`` fetched in parallel: the probe page covered ``t0..t1``, the newest record is
    at ``t_max``. Enough windows to keep every worker busy, each spanning several pages; the last window
    reaches ``end`` (records that arrive while the run goes on)."""
    covered = max((t1 - t0).total_seconds(), 1e-3)
    est_pages = max((t_max - t1).total_seconds(), 0.0) / covered
    return even_windows(t1, whole(t_max) + SECOND, est_pages, parallelism, end)


def even_windows(lo: datetime, hi: datetime, est_pages: float, parallelism: int,
                 end: datetime | None = None) -> list[tuple[datetime, datetime]]:  # fmt: skip
    """Windows for ``[lo, end)`` (``end`` defaults to ``hi``): as many equal spans of ``[lo, hi)`` as
    :func:`window_count` gives for ``est_pages``, and, when ``end`` is later, one more for ``[hi, end)`` (records
    newer than the newest one known). Also for a checkpoint slice whose records are known to fill it (every
    slice but the last was cut from the plan's density between the oldest and the newest record), so that no
    probe round trip comes first."""
    end = hi if end is None else end
    k = window_count(est_pages, parallelism)
    step = (hi - lo) / k
    return _cut([min(e, end) for e in [lo + step * j for j in range(k)] + [hi]] + [end])
