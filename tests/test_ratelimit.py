"""The client's limiter paces both of Klaviyo's windows and obeys the server's signals (fake clock)."""

from __future__ import annotations

import asyncio

import pytest

from omniload.sources.klaviyo import ratelimit
from omniload.sources.klaviyo.ratelimit import BucketLimiter


class FakeTime:
    def __init__(self) -> None:
        self.now = 1000.0

    def clock(self) -> float:
        return self.now

    async def sleep(self, seconds: float) -> None:
        self.now += max(seconds, 0)


@pytest.fixture
def fake(monkeypatch):
    ft = FakeTime()
    monkeypatch.setattr(ratelimit.asyncio, "sleep", ft.sleep)
    return ft


def _stamps(lim: BucketLimiter, ft: FakeTime, n: int) -> list[float]:
    async def run():
        out = []
        for _ in range(n):
            await lim.acquire()
            out.append(ft.now)
        return out

    return asyncio.run(run())


def _max_in_window(stamps: list[float], width: float) -> int:
    return max(sum(1 for t in stamps if s <= t < s + width) for s in stamps)


def test_never_exceeds_burst_or_steady(fake):
    lim = BucketLimiter(10, 150, clock=fake.clock)
    stamps = _stamps(lim, fake, 400)
    assert _max_in_window(stamps, 1.0) <= 10
    assert _max_in_window(stamps, 60.0) <= 150
    rate = len(stamps) / (stamps[-1] - stamps[0]) * 60
    assert rate >= 150 * 0.9  # and still close to the ceiling


def test_rate_limit_headers_rescale_and_pause(fake):
    lim = BucketLimiter(350, 3500, clock=fake.clock)
    lim.observe("350", "349", "42")  # the server runs at a tenth of the documented limits
    assert (lim.burst, lim.steady) == (35, 350)
    assert lim.observe("350", "0", "42") == 42.0
    stamps = _stamps(lim, fake, 1)
    assert stamps[0] >= 1000.0 + 42


def test_retry_after_blocks_the_bucket(fake):
    lim = BucketLimiter(75, 750, clock=fake.clock)
    lim.block_for(7)
    assert _stamps(lim, fake, 1)[0] >= 1007.0
