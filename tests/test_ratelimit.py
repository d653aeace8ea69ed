"""The client's limiter paces both of Klaviyo's windows and obeys the server's signals (fake clock), and reaches
the report endpoints' 2/m against the sandbox without a 429 (a clock shared with the sandbox, running faster)."""

from __future__ import annotations

import asyncio
import functools
import time
from datetime import timedelta

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


def test_small_steady_limit_keeps_every_request(fake):
    """2/m paces 2 requests a window, not int(2 x 0.97) = 1; the margin is time (the log spans 61.9 s)."""
    lim = BucketLimiter(1, 2, clock=fake.clock)
    stamps = _stamps(lim, fake, 8)
    assert stamps[1] - stamps[0] < 2  # the second request does not wait for the next minute
    assert _max_in_window(stamps, 60.0) <= 2 and _max_in_window(stamps, 1.0) <= 1
    assert _max_in_window(stamps, ratelimit.STEADY_WINDOW) <= 2
    assert len(stamps) / (stamps[-1] - stamps[0] + ratelimit.STEADY_WINDOW) * 60 >= 2 * 0.96


class FastClock:
    """Time running ``k`` times faster, shared by the client's limiter and the sandbox's rate limiter."""

    def __init__(self, k: float) -> None:
        self.k, self.t0, self.m0, self.mono = k, time.time(), time.monotonic(), time.monotonic

    def now(self) -> float:
        return self.t0 + (self.mono() - self.m0) * self.k

    async def sleep(self, seconds: float) -> None:
        await asyncio.sleep(seconds / self.k)


def watched_sandbox(make_sandbox, monkeypatch, rate_limits: str, bucket: str):
    """A sandbox and the client on one clock 8 times faster; the list of (time, allowed) of ``bucket``'s requests."""
    from omniload.sources.klaviyo import client

    fast = FastClock(8)
    monkeypatch.setattr(client, "BucketLimiter", functools.partial(BucketLimiter, clock=fast.now, sleep=fast.sleep))
    sb = make_sandbox(scale="tiny", rate_limits=rate_limits)
    seen: list[tuple[float, bool]] = []
    check = sb.state.limiter.check

    def watch(key, name, burst, steady):
        decision = check(key, name, burst, steady)
        if name == bucket:
            seen.append((fast.now(), decision.allowed))
        return decision

    sb.state.limiter.clock = fast.now
    monkeypatch.setattr(sb.state.limiter, "check", watch)
    return sb, seen


def test_report_pacing_reaches_two_a_minute_without_429(make_sandbox, tmp_path, monkeypatch):
    """Against the sandbox at Klaviyo's real report limits (1/s, 2/m, fixed windows), on a clock 8 times faster:
    six requests of a series report (60 days each) go out in pairs, 2 a minute, and the server refuses none."""
    from .test_reports import END, run

    sb, seen = watched_sandbox(make_sandbox, monkeypatch, "real", "/api/form-series-reports")
    start = ("--interval-start", (END - timedelta(days=6 * 60)).isoformat())
    assert run(sb, "form_series_report", tmp_path / "p.duckdb", *start, "--max-retry-after", "600") == 0
    assert [ok for _, ok in seen] == [True] * 6  # no 429
    stamps = [t - seen[0][0] for t, _ in seen]
    # 2 a minute (the old pacing, 1 a minute, sent the second at 61.9 s). The first period is read while dlt sets up
    # (load.py), so the second request waits for the first slice's extraction: about a real second, 8 virtual ones
    assert stamps[1] < 30 and stamps[3] < 120 and stamps[5] < 2 * ratelimit.STEADY_WINDOW + 10
    # and never a third within a minute (the server's windows saw no 429 above; arrival times on an 8x clock carry
    # a few virtual seconds of scheduling delay when the machine is busy)
    assert stamps[2] >= 55


def test_report_pacing_follows_the_limits_the_server_states(make_sandbox, tmp_path, monkeypatch, capsys):
    """Issue #22, item 7: a server allowing reports half of Klaviyo's rate (1/m, stated in its ``RateLimit-*``
    headers) is followed from its first answer on: three series requests a minute apart and no 429 (pacing at the
    2/m the spec says sent the second within seconds, and the server refused it). The run notes its request cost
    and time up front, and its progress lines carry an ETA."""
    import re

    from .test_reports import END, run

    sb, seen = watched_sandbox(make_sandbox, monkeypatch, "x0.5", "/api/segment-series-reports")
    start = ("--interval-start", (END - timedelta(days=3 * 60)).isoformat())
    assert run(sb, "segment_series_report", tmp_path / "p.duckdb", *start, "--max-retry-after", "600") == 0
    assert [ok for _, ok in seen] == [True] * 3  # no 429
    stamps = [t - seen[0][0] for t, _ in seen]
    assert stamps[1] >= 50 and stamps[2] >= 110, stamps  # 1 a minute, as the server said
    err = capsys.readouterr().err
    assert "3 requests planned (3 span(s) of up to 60 days), about 1 min at 2/min" in err
    assert re.search(r"\[segment_series_report\] progress: .* ETA \d+(s|m), running", err), err
