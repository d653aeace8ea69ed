"""Client-side pacing: one limiter per Klaviyo rate-limit bucket, ahead of the server's 429s.

Klaviyo counts requests in two fixed windows at once (burst: 1 s, steady: 60 s). A sliding log never lets
more requests into any span of its length than its limit, so pacing each window as a sliding log keeps the
server's counters under their limits. The safety margin is time, not requests: each log is a bit longer than
the server's window (1.25 s, 61.9 s), which absorbs the jitter between a request leaving and the server
counting it, and a small limit keeps all of its requests (2/m paces 2 requests per 61.9 s, not 1 per 60 s). The limiter also obeys the server: a
``RateLimit-Limit`` lower than expected rescales both windows, ``RateLimit-Remaining: 0`` pauses until
``RateLimit-Reset``, and a 429's wait (``Retry-After``) pauses the whole bucket.
"""

from __future__ import annotations

import asyncio
import collections
import threading
import time

from ...errors import TooLongWait

BURST_MARGIN = 0.8  # the sliding logs are the server's windows divided by these: 1.25 s and 61.9 s
STEADY_MARGIN = 0.97
BURST_WINDOW, STEADY_WINDOW = 1.0 / BURST_MARGIN, 60.0 / STEADY_MARGIN


class BucketLimiter:
    def __init__(self, burst: int, steady: int, clock=time.monotonic, sleep=None, scale: float = 1.0) -> None:
        # ``scale`` (benchmarks only, see client.bench_rate_scale): every limit, the server's stated ones too, x scale
        self.scale = scale
        burst, steady = max(1, int(burst * scale)), max(1, int(steady * scale))
        self.configured_steady = steady
        self.clock = clock
        self.sleep = sleep  # None: asyncio.sleep (tests give a clock and a sleep that run faster)
        self._set(burst, steady)
        self._burst_log: collections.deque[float] = collections.deque()
        self._steady_log: collections.deque[float] = collections.deque()
        self._blocked_until = 0.0
        self._lock = threading.Lock()

    def _set(self, burst: int, steady: int) -> None:
        self.burst = burst
        self.steady = steady
        self.burst_cap = max(1, burst)
        self.steady_cap = max(1, steady)

    def wait_time(self, now: float) -> float:
        while self._burst_log and self._burst_log[0] <= now - BURST_WINDOW:
            self._burst_log.popleft()
        while self._steady_log and self._steady_log[0] <= now - STEADY_WINDOW:
            self._steady_log.popleft()
        wait = self._blocked_until - now
        if len(self._burst_log) >= self.burst_cap:
            wait = max(wait, self._burst_log[0] + BURST_WINDOW - now)
        if len(self._steady_log) >= self.steady_cap:
            wait = max(wait, self._steady_log[0] + STEADY_WINDOW - now)
        return wait

    async def acquire(self, max_wait: float = float("inf")) -> None:
        """Wait for a slot; a single wait longer than ``max_wait`` raises :class:`TooLongWait` instead."""
        while True:
            with self._lock:  # a thread lock: one limiter serves every event loop of a run (slices, streams)
                now = self.clock()
                wait = self.wait_time(now)
                if wait <= 0:
                    self._burst_log.append(now)
                    self._steady_log.append(now)
                    return
            if wait > max_wait:
                raise TooLongWait(wait)
            await (self.sleep or asyncio.sleep)(wait)

    def block_for(self, seconds: float) -> None:
        """Pause the bucket (after a 429, or when the server says no requests remain)."""
        self._blocked_until = max(self._blocked_until, self.clock() + seconds)

    def observe(self, limit: str | None, remaining: str | None, reset: str | None) -> float:
        """Adapt to the server's ``RateLimit-*`` headers; returns the pause it imposed, if any.

        ``RateLimit-Limit`` is either one number (the steady window) or, as Klaviyo sends it, a list such as
        ``350, 350;w=1, 3500;w=60`` (burst and steady windows); lower limits than expected rescale the windows.
        """
        burst, steady = (None if v is None else int(v * self.scale) for v in parse_limit(limit))
        if steady is not None and 0 < steady < self.steady:
            factor = steady / self.configured_steady
            self._set(burst if burst is not None else max(1, int(self.burst * factor)), steady)
        elif burst is not None and 0 < burst < self.burst:
            self._set(burst, self.steady)
        if remaining is not None and remaining.strip() == "0" and reset and reset.strip().isdigit():
            self.block_for(float(reset))
            return float(reset)
        return 0.0


def parse_limit(text: str | None) -> tuple[int | None, int | None]:
    """(burst, steady) from a ``RateLimit-Limit`` header; None where the header does not say."""
    if not text:
        return None, None
    text = text.strip()
    if text.isdigit():
        return None, int(text)
    burst = steady = None
    for part in text.split(","):
        value, _, window = part.strip().partition(";w=")
        if not value.strip().isdigit():
            continue
        if window.strip() == "1":
            burst = int(value)
        elif window.strip() == "60":
            steady = int(value)
    return burst, steady
