"""Ceiling ratio: how close omniload gets to Klaviyo's rate-limit ceiling.

The sandbox runs at Klaviyo's real limits scaled by 0.1 (so a run takes minutes, not hours) with 100 ms of
latency per request. Three tables run at once, each in its own rate-limit bucket: events (page 1000),
profiles (page 100) and lists (page 10). Ceiling = page size x the steady limit per second; the ratio is the
achieved records/s over that, measured from the start to the end of each table's run.

Usage: python bench/ceiling.py [--events 500000] [--profiles 15000] [--lists 1500]
"""

from __future__ import annotations

import argparse
import json
import subprocess
import tempfile
import time

from common import KEY, PY, ROOT, Sandbox

TABLES = {"events": (1000, 3500), "profiles": (100, 750), "lists": (10, 750)}  # page size, steady per minute


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--events", type=int, default=500_000)
    ap.add_argument("--profiles", type=int, default=15_000)
    ap.add_argument("--lists", type=int, default=1_500)
    ap.add_argument("--factor", type=float, default=0.1)
    ap.add_argument("--parallelism", type=int, default=20)
    args = ap.parse_args()
    scale = f"tiny,events={args.events},profiles={args.profiles},lists={args.lists}"
    with Sandbox("--scale", scale, "--rate-limits", f"x{args.factor}", "--latency-ms", "100") as sb, \
            tempfile.TemporaryDirectory() as tmp:  # fmt: skip
        procs = {}
        for table in TABLES:
            cmd = [PY, "-m", "omniload.cli", "ingest", "--source-uri", f"klaviyo://?api_key={KEY}&base_url={sb.url}",
                   "--source-table", table, "--dest-uri", f"duckdb:///{tmp}/{table}.duckdb", "--progress", "json",
                   "--extract-parallelism", str(args.parallelism)]  # fmt: skip
            procs[table] = (
                time.monotonic(),
                subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=ROOT),
            )
        print(f"sandbox: Klaviyo limits x{args.factor}, 100 ms latency; --extract-parallelism {args.parallelism}")
        print(
            f"{'table':10} {'records':>9} {'seconds':>8} {'records/s':>10} {'ceiling/s':>10} {'ratio':>6} {'requests':>9} {'429s':>5}"
        )
        for table, (started, proc) in procs.items():
            out, err = proc.communicate()
            wall = time.monotonic() - started
            summary = next(json.loads(ln) for ln in out.splitlines() if '"summary"' in ln)
            page, steady = TABLES[table]
            ceiling = page * max(1, int(steady * args.factor)) / 60
            rate = summary["rows"] / wall
            print(f"{table:10} {summary['rows']:>9,} {wall:>8.1f} {rate:>10,.0f} {ceiling:>10,.0f} {rate / ceiling:>6.2f} "
                  f"{summary['requests']:>9} {summary['throttled']:>5}")  # fmt: skip


if __name__ == "__main__":
    main()
