"""CPU throughput and memory: rate limits off, no latency, events into DuckDB with merge.

Prints records/s of the whole `omniload ingest` process (wall clock, start-up included) and its peak RSS,
for 1M and 5M events, and with --profile the top costs from py-spy.

Usage: python bench/cpu_memory.py [--sizes 1000000,5000000] [--profile]
"""

from __future__ import annotations

import argparse
import collections
import os
import tempfile

from common import KEY, PY, Sandbox, run_measured


def top_costs(raw: str, n: int = 12) -> list[str]:
    total, self_ = 0, collections.Counter()
    for line in raw.splitlines():
        stack, _, count = line.rpartition(" ")
        frames = stack.split(";")
        total += int(count)
        leaf = frames[-1]
        self_[leaf.split(" (")[0] + " " + leaf.rsplit("/", 1)[-1].rstrip(")")] += int(count)
    return [f"{c / total * 100:5.1f}%  {name}" for name, c in self_.most_common(n)]


def main() -> None:
    # CPU-bound: the sandbox's limits are off, and the client's own pacing is lifted too (x100), so that no run
    # waits on Klaviyo's published limits (3,500 events pages a minute would pause a 4M-event run for ~20 s)
    os.environ.setdefault("OMNILOAD_BENCH_RATE_SCALE", "100")
    print(
        f"pacing: sandbox limits off; client pacing x{os.environ['OMNILOAD_BENCH_RATE_SCALE']} (OMNILOAD_BENCH_RATE_SCALE)"
    )
    ap = argparse.ArgumentParser()
    ap.add_argument("--sizes", default="1000000,5000000")
    ap.add_argument("--parallelism", type=int, default=8)
    ap.add_argument("--profile", action="store_true", help="sample the 1M run with py-spy and print the top costs")
    args = ap.parse_args()
    for size in (int(s) for s in args.sizes.split(",")):
        with (
            Sandbox("--scale", f"tiny,events={size}", "--rate-limits", "off") as sb,
            tempfile.TemporaryDirectory() as tmp,
        ):
            cmd = [PY, "-m", "omniload.cli", "ingest", "--source-uri", f"klaviyo://?api_key={KEY}&base_url={sb.url}",
                   "--source-table", "events", "--dest-uri", f"duckdb:///{tmp}/bench.duckdb", "--progress", "log",
                   "--extract-parallelism", str(args.parallelism), "--incremental-strategy", "merge"]  # fmt: skip
            raw = os.path.join(tmp, "spy.txt")
            if args.profile and size == min(int(s) for s in args.sizes.split(",")):
                cmd = [os.path.join(os.path.dirname(PY), "py-spy"), "record", "--format", "raw", "-r", "100", "-o", raw,
                       "--threads", "--", *cmd]  # fmt: skip
            cpu0 = sb.cpu_seconds()
            res = run_measured(cmd)
            assert res["rc"] == 0, res["stderr"][-2000:]
            line = next(ln for ln in res["stderr"].splitlines() if "finish" in ln)
            loaded = int(line.split("finish: ", 1)[1].split(" rows", 1)[0].replace(",", ""))
            print(f"{loaded:>10,} events: {loaded / res['seconds']:>8,.0f} records/s (whole process, {res['seconds']:.1f}s wall), "
                  f"peak RSS {res['peak_mb']:.0f} MB; sandbox CPU {sb.cpu_seconds() - cpu0:.1f}s | {line.strip()}")  # fmt: skip
            if os.path.exists(raw):
                print("  top costs (py-spy, self time over all threads):")
                for row in top_costs(open(raw).read()):
                    print("   ", row)


if __name__ == "__main__":
    main()
