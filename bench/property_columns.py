"""What the property columns cost: 1M events into DuckDB (row 18's setup: limits off, client pacing x100),
omniload as it was before them (``--baseline``: the ``src`` folder of a checkout of that revision), with the
well-known property columns (the default now), and with ``properties=columns``; interleaved runs, medians.

Usage: python bench/property_columns.py --baseline /tmp/main/src [--events 1000000] [--runs 3] [--parallelism 8]
"""

from __future__ import annotations

import os
import sys

from common import ROOT, Sandbox, comparison_args, interleave, omniload_ingest


def main() -> None:
    os.environ.setdefault("OMNILOAD_BENCH_RATE_SCALE", "100")
    print(
        f"pacing: sandbox limits off; client pacing x{os.environ['OMNILOAD_BENCH_RATE_SCALE']} (OMNILOAD_BENCH_RATE_SCALE)"
    )
    ap = comparison_args(1_000_000)
    ap.add_argument("--baseline", required=True, help="the src folder of omniload before the property columns")
    args = ap.parse_args()
    sandbox_src = str(ROOT / "klaviyo-sandbox" / "src")

    def at(src: str, command: list[str]) -> list[str]:
        return ["/usr/bin/env", f"PYTHONPATH={src}:{sandbox_src}", *command]

    with Sandbox("--scale", f"tiny,events={args.events}", "--rate-limits", "off") as sb:
        base, known, lifted = interleave(args.runs, [
            lambda tmp: at(args.baseline, omniload_ingest(sb.url, "events", f"duckdb:///{tmp}/b.duckdb", args.parallelism)),
            lambda tmp: at(str(ROOT / "src"), omniload_ingest(sb.url, "events", f"duckdb:///{tmp}/k.duckdb", args.parallelism)),
            lambda tmp: at(str(ROOT / "src"), omniload_ingest(sb.url + "&properties=columns", "events",
                                                              f"duckdb:///{tmp}/p.duckdb", args.parallelism))])  # fmt: skip
    print(
        f"{args.events:,} events, parallelism {args.parallelism}, medians of {args.runs} interleaved runs (whole process):"
    )
    for name, t in (("before (no property columns)", base), ("well-known property columns (default)", known),
                    ("properties=columns", lifted)):  # fmt: skip
        print(f"  {name + ':':40} {t:.1f}s  ({args.events / t:,.0f} rows/s)  {t / base:.2f}x")


if __name__ == "__main__":
    sys.exit(main())
