"""A child table read and committed in parts, some parents at a time, so that a failure keeps what was committed
and the rerun does not start over.

The parents' children come as one stream (:func:`.children.child_pages`); a part ends at a page boundary once it
has read its share of pages: ``FIRST_SLICE_PAGES``, doubling up to ``--checkpoint-rows`` worth of full pages (as
checkpoint slices ramp up, windows.py), so the first rows commit soon. With each part the progress is saved in
the table's state (key ``children``): the interval ``[lo, hi)`` being read and the parents whose children are all
in committed parts. The cursor moves only with the last part, so the same command plans the same ``lo`` again: it
then finishes that interval, skipping the parents done and reading the others up to the same ``hi``, and the
next run goes on from the cursor as usual. A parent in flight when a part ended is read again whole (merged).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from datetime import datetime

from ...dates import iso, parse_timestamp
from ..base import Window
from .extract import Page
from .windows import FIRST_SLICE_PAGES

STATE_KEY = "children"


class Parts:
    """The parts of one child table's interval: which parents are done, where the current part ends."""

    def __init__(
        self, saved: dict, lo: datetime | None, hi: datetime, rows_per_slice: int, records_per_page: int
    ) -> None:
        progress = saved.get(STATE_KEY) or None
        self.stale = progress is not None  # progress of another interval: cleared with the first commit
        self.resumed = progress is not None and progress.get("lo") == (iso(lo) if lo is not None else "")
        self.lo = lo
        self.hi = parse_timestamp(progress["hi"]) if self.resumed else hi
        self.done: set[str] = set(progress.get("done") or ()) if self.resumed else set()
        self.cap = max(1, rows_per_slice // max(1, records_per_page))  # pages of a full part
        self.windows = [Window(lo, self.hi)]
        self.more = False  # the last part read ended at its budget: another follows
        self.finished = False  # the stream ended
        self._stream: Iterator[Page] | None = None

    def on_done(self, parent: str, gone: bool) -> None:
        """Every page of ``parent`` was handed on: the next commit counts it done (one that was gone is not: the
        rerun asks again, should the 404 have been no deletion)."""
        if not gone:
            self.done.add(parent)

    def read(self, window: Window, make: Callable[[frozenset[str], datetime], Iterator[Page]]) -> Iterator[Page]:
        """The pages of part ``window``: the shared stream (``make(parents to skip, hi)`` on the first part) up to
        the part's budget of pages, or to its end."""
        if self._stream is None:
            self._stream = make(frozenset(self.done), self.hi)
        budget = min(FIRST_SLICE_PAGES * 2**window.part, self.cap)
        pages = 0
        try:
            for page in self._stream:
                yield page
                pages += 1
                if pages >= budget:
                    self.more = True
                    return
        except GeneratorExit:  # the part was abandoned (a failure, a stop): the stream stops too
            self._stream.close()
            raise
        self.more, self.finished = False, True

    def following(self, window: Window) -> Window | None:
        """The part after ``window``: known once the part read last ended at its budget (``more``)."""
        if window.part + 1 < len(self.windows):
            return self.windows[window.part + 1]
        if not self.more:
            return None
        self.windows.append(Window(self.lo, self.hi, part=window.part + 1))
        return self.windows[-1]

    def state(self) -> dict:
        """The progress to save with the part just read: the parents done while parts follow (or before a resumed
        read began); cleared once the interval is done, or when it belonged to another interval."""
        if self.more or (self.resumed and not self.finished):
            return {
                STATE_KEY: {
                    "lo": iso(self.lo) if self.lo is not None else "",
                    "hi": iso(self.hi),
                    "done": sorted(self.done),
                }
            }
        if self.stale or len(self.windows) > 1:
            return {STATE_KEY: None}
        return {}
