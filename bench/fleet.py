"""Accounts per machine: how many Klaviyo accounts one machine loads at once, each at its own ceiling.

N sandbox accounts (one sandbox process per account, real limits, 150 ms latency) all load events and profiles at
once: one ``omniload ingest`` with ``--source-uri`` repeated (every account into the same tables, accounts side by
side: ``--source-parallelism N``), or with ``--processes`` one process per account (each into its own DuckDB file).
An account's ceiling per table is the lower of what its rate limits allow (page size x the steady limit per second,
as ``ceiling.py``) and what one account alone reaches on this machine (N=1, measured first): at real limits an
events backfill is bound by the machine's CPU, not by Klaviyo (58,333 events/s per account), profiles by
Klaviyo (1,250/s). Each account's ratio is its rows over the table's seconds (the run's summary) over that
ceiling. N grows (2, 3, ...) while every account reaches ``--goal`` (0.9) in every table; the script prints each
N's worst ratios, the largest N that held, and the peak RSS of omniload (its processes together). The sandbox
processes run on the same machine and their CPU counts against it (printed as their share of the cores): a real
fleet would have that capacity for itself. Klaviyo's steady limit is a fixed one-minute window, so loads shorter
than a few minutes read faster than the steady rate (ratios above 1); the defaults make profiles a minute long.

Usage: python bench/fleet.py [--max-accounts 16] [--events 1000000] [--profiles 75000] [--latency-ms 150] [--processes]
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


def fleet(n: int, args) -> dict:
    """Run ``n`` accounts at once; each account's rows/s per table, the peak RSS of the omniload processes together,
    the wall seconds and the sandboxes' CPU seconds."""
    import subprocess

    import psutil

    scale = f"tiny,events={args.events},profiles={args.profiles}"
    rate = "real" if args.factor == 1 else f"x{args.factor}"
    with ExitStack() as stack, tempfile.TemporaryDirectory() as tmp:
        boxes = [stack.enter_context(Sandbox("--scale", scale, "--rate-limits", rate, "--latency-ms",
                                             str(args.latency_ms), "--seed", str(i + 1))) for i in range(n)]  # fmt: skip
        busy = [sb.cpu_seconds() for sb in boxes]
        started = time.monotonic()
        uris = [f"klaviyo://?api_key={KEY}&base_url={sb.url}" for sb in boxes]
        common = [
            "--source-table",
            ",".join(LOADED),
            "--progress",
            "json",
            "--extract-parallelism",
            str(args.parallelism),
        ]
        if args.processes:  # one run per account, each into its own file (a DuckDB file takes one run at a time)
            commands = [["--source-uri", uri, "--dest-uri", f"duckdb:///{tmp}/account{i}.duckdb"]
                        for i, uri in enumerate(uris)]  # fmt: skip
        else:  # one run: every account into the same tables
            commands = [[*(a for uri in uris for a in ("--source-uri", uri)), "--source-parallelism", str(n),
                         "--dest-uri", f"duckdb:///{tmp}/fleet.duckdb"]]  # fmt: skip
        procs = [subprocess.Popen([PY, "-m", "omniload.cli", "ingest", *command, *common], stdout=subprocess.PIPE,
                                  stderr=subprocess.PIPE, text=True, cwd=ROOT) for command in commands]  # fmt: skip
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
    rates: dict[str, dict[str, float]] = {}  # account (its process, or its label in one run) -> table -> rows/s
    for n_proc, ((out, err), proc) in enumerate(zip(outputs, procs, strict=True)):
        if proc.returncode != 0:
            raise SystemExit(f"a run failed (exit {proc.returncode}): {err.strip()[-500:]}")
        for r in map(json.loads, out.splitlines()):
            if r.get("event") == "summary" and r["table"] in LOADED:
                account = rates.setdefault(r.get("account") or str(n_proc), {})
                account[r["table"]] = r["rows"] / max(r["seconds"], 1e-3)
    rates = list(rates.values())
    assert len(rates) == n and all(len(r) == len(LOADED) for r in rates), rates
    return {"rates": rates, "peak_mb": peak / 2**20, "wall": wall, "sandbox_cpu": sandbox_cpu}


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--max-accounts", type=int, default=16)
    ap.add_argument("--events", type=int, default=1_000_000, help="events per account")
    ap.add_argument("--profiles", type=int, default=75_000, help="profiles per account (75,000: a minute at the limit)")
    ap.add_argument("--latency-ms", type=int, default=150)
    ap.add_argument("--factor", type=float, default=1.0, help="the sandbox's limits x this (1: Klaviyo's real ones)")
    ap.add_argument("--parallelism", type=int, default=20)
    ap.add_argument("--goal", type=float, default=0.9)
    ap.add_argument("--processes", action="store_true", help="one omniload process per account (default: one run "
                    "loading every account, --source-uri repeated)")  # fmt: skip
    args = ap.parse_args()
    limits = ceilings(args.factor)
    cores = os.cpu_count() or 1
    how = "one omniload process per account" if args.processes else "one omniload run loading every account"
    print(f"{machine()}; one sandbox process per account, {how}")
    print(f"limits x{args.factor:g}, {args.latency_ms} ms latency, --extract-parallelism {args.parallelism}; "
          f"{args.events:,} events and {args.profiles:,} profiles per account")  # fmt: skip

    def report(n: int, res: dict, tail: str) -> None:
        share = res["sandbox_cpu"] / (res["wall"] * cores)
        print(f"N={n:<3} {tail}; peak RSS {res['peak_mb']:,.0f} MB (omniload); {res['wall']:.1f} s; "
              f"the sandboxes used {share:.0%} of the {cores} cores")  # fmt: skip

    alone = fleet(1, args)
    own = {t: min(limits[t], alone["rates"][0][t]) for t in LOADED}
    report(1, alone, "alone: " + ", ".join(f"{t} {alone['rates'][0][t]:,.0f} rows/s = {alone['rates'][0][t] / limits[t]:.2f}"
                                           f" of its limits' {limits[t]:,.0f}" for t in LOADED))  # fmt: skip
    print("each account's ceiling (the lower of its limits and one account alone): "
          + ", ".join(f"{t} {c:,.0f} rows/s" for t, c in own.items()))  # fmt: skip
    held, held_peak = 1, alone["peak_mb"]
    for n in range(2, args.max_accounts + 1):
        res = fleet(n, args)
        worst = {t: min(r[t] for r in res["rates"]) / own[t] for t in LOADED}
        ok = all(v >= args.goal for v in worst.values())
        report(n, res, "worst ratio " + ", ".join(f"{t} {v:.2f}" for t, v in worst.items())
               + ("" if ok else f" (below {args.goal})"))  # fmt: skip
        if not ok:
            break
        held, held_peak = n, res["peak_mb"]
    print(f"largest N with every account >= {args.goal} of its ceiling in every table: {held} "
          f"(peak RSS {held_peak:,.0f} MB)")  # fmt: skip


if __name__ == "__main__":
    main()
