"""Latency-bound: omniload against the fetch-only floor at the same parallelism (issue #15, goal 4: 300,000
events at 150 ms and real limits within 1.2x the floor).

The sandbox answers every request after 150 ms and enforces Klaviyo's real limits (events: 350/s burst,
3,500/min steady). At parallelism 8 that is about 53 requests a second, under the steady limit: the run is
bound by latency, not by the limits. The floor fetches the same pages as floor.py (par * 4 equal time windows,
par at a time, msgspec-decoded to follow the links) and loads nothing; omniload loads them into DuckDB, so the
ratio says how much of the loading (and planning, and startup) is not hidden behind the fetching. Runs are
interleaved and medians compared.

Usage: python bench/latency.py [--events 300000] [--runs 3] [--parallelism 8] [--latency-ms 150]
"""

from __future__ import annotations

import sys

from common import KEY, PY, Sandbox, comparison_args, interleave, omniload_ingest, print_comparison
from floor import FETCH

FETCH_ONLY = (
    FETCH
    + r"""
async def main():
    t0 = time.monotonic()
    rows = await fetch_all(sys.argv[1], sys.argv[2], int(sys.argv[3]), None)
    print(rows, round(time.monotonic() - t0, 2))
asyncio.run(main())
"""
)
GOAL = 1.2


def main() -> None:
    ap = comparison_args(300_000)
    ap.add_argument("--latency-ms", type=int, default=150)
    args = ap.parse_args()
    sandbox = ("--scale", f"tiny,events={args.events}", "--rate-limits", "real", "--latency-ms", str(args.latency_ms))
    with Sandbox(*sandbox) as sb:
        f, o = interleave(args.runs, [
            lambda tmp: [PY, "-c", FETCH_ONLY, sb.url, KEY, str(args.parallelism)],
            lambda tmp: omniload_ingest(sb.url, "events", f"duckdb:///{tmp}/o.duckdb", args.parallelism)])  # fmt: skip
    print_comparison(f"{args.events:,} events, {args.latency_ms} ms latency, real limits, parallelism {args.parallelism}, "
                     f"medians of {args.runs} interleaved runs (whole process):",
                     "fetch-only floor (fetch -> msgspec, no loading)", f, o, args.events, GOAL)  # fmt: skip


if __name__ == "__main__":
    sys.exit(main())
