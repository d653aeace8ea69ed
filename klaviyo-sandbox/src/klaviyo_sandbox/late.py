"""Late (backdated) events, and the one ordered view of generated + late events that pages are cut from.

Generated event ``i`` is created at a time monotone in ``i``, so a time range is an index range. A late event
is inserted "now" (admin route) with a datetime in the past, which breaks that monotonicity; late events are
kept in a small sorted list of ``(datetime_us, index)`` with indices from :data:`LATE_BASE` up, so their ids
never collide with generated ones. :class:`EventSeq` merges both stores in ``(datetime, index)`` order for one
request's time range and visibility; when a page holds no late event it is a plain index range (fast path).
"""

from __future__ import annotations

import bisect
import threading

from .dataset import mix, salt

LATE_BASE = 3_000_000_000_000  # below 62**7, the largest index an 11-character event id encodes
SPREAD_US = 60_000_000  # a batch of late events spreads over the minute before ``now - before_seconds``


class LateStore:
    """Late events of one dataset: sorted ``(datetime_us, index)`` pairs and each one's insertion time."""

    def __init__(self, seed: int) -> None:
        self.salt = salt(seed, "events/late")
        self.items: list[tuple[int, int]] = []
        self.times: dict[int, int] = {}
        self.inserted: dict[int, int] = {}
        self.batches = 0
        self._lock = threading.Lock()

    def insert(self, now_us: int, count: int, before_s: int) -> list[int]:
        """Add ``count`` events dated ``before_s`` seconds (minus up to a minute) before ``now_us``; their indices."""
        with self._lock:
            self.batches += 1
            out = []
            for k in range(count):
                h = mix(self.salt ^ (self.batches << 24) ^ k)
                t = max(0, now_us - before_s * 1_000_000 - h % SPREAD_US)
                if h % 3 == 0:
                    t -= t % 1_000_000  # some on whole seconds, as generated events
                i = LATE_BASE + len(self.times)
                self.times[i] = t
                self.inserted[i] = now_us
                bisect.insort(self.items, (t, i))
                out.append(i)
            return out

    def visible(self, now_us: int, delay_us: int) -> list[tuple[int, int]]:
        """Late events whose insertion is at least ``delay_us`` old, in (datetime, index) order."""
        return [(t, i) for t, i in self.items if self.inserted[i] + delay_us <= now_us]


class EventSeq:
    """Visible events with ``lower_us <= datetime < upper_us``, in ascending (datetime, index) order."""

    def __init__(
        self, tl, gen_count: int, late: list[tuple[int, int]], lower_us: int | None, upper_us: int | None
    ) -> None:
        self.tl = tl
        self.lo = tl.first_at_or_after(lower_us) if lower_us is not None else 0
        hi = gen_count if upper_us is None else min(gen_count, tl.first_at_or_after(upper_us))
        self.hi = max(self.lo, hi)
        self.late = [
            (t, i) for t, i in late if (lower_us is None or t >= lower_us) and (upper_us is None or t < upper_us)
        ]
        # ascending position of each late event: the late ones before it plus the generated ones not after it
        self.late_pos = [j + self._gen_le(t, LATE_BASE) for j, (t, _) in enumerate(self.late)]
        self.total = (self.hi - self.lo) + len(self.late)

    def _gen_le(self, t: int, i: int) -> int:
        """Generated events in range whose (datetime, index) <= (t, i)."""
        a = self.tl.first_at_or_after(t)
        b = self.tl.first_at_or_after(t + 1)
        k = min(max(i + 1, a), b)
        return min(max(k, self.lo), self.hi) - self.lo

    def rank(self, t: int, i: int, desc: bool, inclusive: bool) -> int:
        """How many events come before (t, i) in the page order (and (t, i) itself when ``inclusive``)."""
        le = self._gen_le(t, i) + bisect.bisect_right(self.late, (t, i))
        lt = self._gen_le(t, i - 1) + bisect.bisect_left(self.late, (t, i))
        if desc:
            return self.total - (lt if inclusive else le)
        return le if inclusive else lt

    def run(self, start: int, n: int, desc: bool) -> range | list[int]:
        """Event indices at page positions ``start .. start+n-1``; a ``range`` when they are all generated."""
        end = min(self.total, start + n)
        if start >= end:
            return range(0)
        a, b = (self.total - end, self.total - start) if desc else (start, end)  # ascending positions [a, b)
        j = bisect.bisect_left(self.late_pos, a)
        if j == bisect.bisect_left(self.late_pos, b):
            r = range(self.lo + a - j, self.lo + b - j)
            return r[::-1] if desc else r
        out = []
        for p in range(a, b):
            if j < len(self.late_pos) and self.late_pos[j] == p:
                out.append(self.late[j][1])
                j += 1
            else:
                out.append(self.lo + p - j)
        return out[::-1] if desc else out
