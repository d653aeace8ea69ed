"""How many 1000-event pages per second the sandbox serves (rate limits off): it must not be our bottleneck.

Usage: python bench/sandbox_throughput.py [--pages 400] [--concurrency 8]
"""

from __future__ import annotations

import argparse
import asyncio
import time

import aiohttp
from common import KEY, Sandbox


async def fetch(url: str, pages: int, concurrency: int) -> tuple[float, int]:
    headers = {"Authorization": f"Klaviyo-API-Key {KEY}", "revision": "2026-07-15"}
    total = 0
    queue: asyncio.Queue = asyncio.Queue()
    for k in range(pages):  # distinct pages spread over the whole timeline (no two alike)
        queue.put_nowait(k)

    async with aiohttp.ClientSession(headers=headers) as session:

        async def worker() -> None:
            nonlocal total
            while not queue.empty():
                k = queue.get_nowait()
                day = f"2024-{7 + k % 12 if k % 12 < 6 else k % 12 - 5:02d}-{1 + k % 28:02d}T{k % 24:02d}:00:00Z"
                flt = f"greater-or-equal(datetime,{day})"
                async with session.get(f"{url}/api/events", params={"filter": flt, "page[size]": "1000"}) as r:
                    body = await r.read()
                    assert r.status == 200, body[:200]
                    total += len(body)

        start = time.monotonic()
        await asyncio.gather(*(worker() for _ in range(concurrency)))
        return time.monotonic() - start, total


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--pages", type=int, default=400)
    ap.add_argument("--concurrency", type=int, default=8)
    ap.add_argument("--workers", type=int, default=2, help="sandbox processes (this machine has 2 cores)")
    args = ap.parse_args()
    with Sandbox("--scale", "large", "--rate-limits", "off", "--workers", str(args.workers)) as sb:
        asyncio.run(fetch(sb.url, 20, 4))  # warm up
        seconds, size = asyncio.run(fetch(sb.url, args.pages, args.concurrency))
    rate = args.pages / seconds
    print(f"sandbox: {args.pages} pages of 1000 events in {seconds:.2f}s = {rate:.0f} pages/s "
          f"({rate * 1000:,.0f} events/s, {size / seconds / 2**20:.0f} MB/s) with {args.workers} sandbox process(es); "
          f"target >= 200 pages/s: {'met' if rate >= 200 else 'NOT met'}")  # fmt: skip


if __name__ == "__main__":
    main()
