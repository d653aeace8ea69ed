"""Accounts per machine: how many Klaviyo accounts one machine loads at once, each at its own rate-limit ceiling.

N sandbox accounts (one sandbox process per account, real limits, 150 ms latency) all load events and profiles at
once, one ``omniload ingest`` process per account (each in its own DuckDB file, as separate runs would be).
An account's ceiling per table is what its limits allow (page size x the steady limit per second, as
``ceiling.py``); its ratio is the rows it loaded over the table's seconds (the run's summary) over that. N grows
(1, 2, 3, ...) while every account reaches ``--goal`` (0.9) of its ceiling in every table; the script prints each
N's ratios, the largest N that held, and the peak RSS of the omniload processes together. The sandbox
processes run on the same machine and their CPU counts against it (printed as their share of the cores): on a
2-core machine the API's imitation takes part of the capacity a real fleet would have for itself.

Usage: python bench/fleet.py [--max-accounts 16] [--seconds 30] [--latency-ms 150] [--factor 1]
"""

from __future__ import annotations

import argparse
import json
import os
import tempfile
import threading
import time
from contextlib import ExitStack

from ceiling import TABLES
from common import KEY, PY, ROOT, Sandbox, machine

LOADED = ("events", "profiles")


def ceilings(factor: float) -> dict[str, float]:
    """Rows per second each table's limits allow one account (page size x steady requests per second)."""
    return {t: page * max(1, int(steady * factor)) / 60 for t, (page, steady) in TABLES.items() if t in LOADED}


def fleet(n: int, args, limits: dict[str, float]) -> dict:
    """Run ``n`` accounts at once; their ratios per table, the peak RSS of the omniload processes together, and
    the sandboxes' CPU seconds."""
    import subprocess

    import psutil

    scale = "tiny," + ",".join(f"{t}={int(limits[t] * args.seconds)}" for t in LOADED)
    rate = "real" if args.factor == 1 else f"x{args.factor}"
    with ExitStack() as stack, tempfile.TemporaryDirectory() as tmp:
        boxes = [stack.enter_context(Sandbox("--scale", scale, "--rate-limits", rate, "--latency-ms",
                                             str(args.latency_ms), "--seed", str(i + 1))) for i in range(n)]  # fmt: skip
        busy = [sb.cpu_seconds() for sb in boxes]
        started = time.monotonic()
        procs = [subprocess.Popen([PY, "-m", "omniload.cli", "ingest", "--source-uri",
                                   f"klaviyo://?api_key={KEY}&base_url={sb.url}", "--source-table", ",".join(LOADED),
                                   "--dest-uri", f"duckdb:///{tmp}/account{i}.duckdb", "--progress", "json",
                                   "--extract-parallelism", str(args.parallelism)],
                                  stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=ROOT)
                 for i, sb in enumerate(boxes)]  # fmt: skip
        peak, stop = 0, threading.Event()

        def sample() -> None:
            nonlocal peak
            while not stop.is_set():
                total = 0
                for p in procs:
                    try:
                        total += psutil.Process(p.pid).memory_info().rss
                    except psutil.Error:
                        pass
                peak = max(peak, total)
                time.sleep(0.1)

        sampler = threading.Thread(target=sample, daemon=True)
        sampler.start()
        outputs = [p.communicate() for p in procs]
        wall = time.monotonic() - started
        stop.set()
        sampler.join()
        sandbox_cpu = sum(sb.cpu_seconds() - b for sb, b in zip(boxes, busy, strict=True))
    ratios = []
    for (out, err), proc in zip(outputs, procs, strict=True):
        if proc.returncode != 0:
            raise SystemExit(f"an account's run failed (exit {proc.returncode}): {err.strip()[-500:]}")
        summary = {r["table"]: r for r in map(json.loads, out.splitlines()) if r.get("event") == "summary"}
        ratios.append({t: summary[t]["rows"] / max(summary[t]["seconds"], 1e-3) / limits[t] for t in LOADED})
    return {"ratios": ratios, "peak_mb": peak / 2**20, "wall": wall, "sandbox_cpu": sandbox_cpu}


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--max-accounts", type=int, default=16)
    ap.add_argument("--seconds", type=float, default=30, help="each table's data: this many seconds at its ceiling")
    ap.add_argument("--latency-ms", type=int, default=150)
    ap.add_argument("--factor", type=float, default=1.0, help="the sandbox's limits x this (1: Klaviyo's real ones)")
    ap.add_argument("--parallelism", type=int, default=20)
    ap.add_argument("--goal", type=float, default=0.9)
    args = ap.parse_args()
    limits = ceilings(args.factor)
    cores = os.cpu_count() or 1
    print(f"{machine()}; one sandbox process and one omniload process per account")
    print(f"limits x{args.factor:g}, {args.latency_ms} ms latency, --extract-parallelism {args.parallelism}; ceilings "
          + ", ".join(f"{t} {c:,.0f} rows/s" for t, c in limits.items()) + f"; {args.seconds:g} s of rows per table")  # fmt: skip
    held, held_peak = 0, 0.0
    for n in range(1, args.max_accounts + 1):
        res = fleet(n, args, limits)
        worst = {t: min(r[t] for r in res["ratios"]) for t in LOADED}
        ok = all(v >= args.goal for v in worst.values())
        share = res["sandbox_cpu"] / (res["wall"] * cores)
        print(f"N={n:<3} worst ratio " + ", ".join(f"{t} {v:.2f}" for t, v in worst.items())
              + f"; peak RSS {res['peak_mb']:,.0f} MB (omniload processes together); {res['wall']:.1f} s; "
              f"sandboxes used {share:.0%} of the {cores} cores" + ("" if ok else f"  <- below {args.goal}"))  # fmt: skip
        if not ok:
            break
        held, held_peak = n, res["peak_mb"]
    print(f"largest N with every account >= {args.goal} of its ceiling in every table: {held}"
          + (f" (peak RSS {held_peak:,.0f} MB)" if held else ""))  # fmt: skip


if __name__ == "__main__":
    main()
