"""A season in the life of a Klaviyo account (tests/season.py) on DuckDB, PostgreSQL and Delta: the real command
run on a schedule of simulated time against a changing sandbox (late events up to 10 days, every table's records
created, updated, archived, deleted and restored, members leaving, schema drift, a parent deleted mid-read), with
overlapping, killed and faulted runs; every clean run is checked against the sandbox's truth.

``--schedule hourly`` is the issue's: ``events`` every 15 simulated minutes, every table hourly, a reconcile daily
(~5,800 runs in 60 days); ``sparse``: events every 6 h, every table every 12 h, a reconcile daily (240 runs).

Prints per destination: runs, clean, kills, overlaps, faulted, failed, rows moved, requests, mismatches (must be 0;
the first is printed), the changes the steps made, and wall time. Exit 1 on a mismatch.

Usage: python bench/season.py [--days 60] [--schedule hourly|sparse] [--dests duckdb,postgres,delta] [--seed 23]
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from klaviyo_sandbox import SandboxConfig, SandboxServer  # noqa: E402
from tests.season import SCHEDULES, DeltaDest, DuckDest, PostgresDest, Season, run_season  # noqa: E402


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--days", type=float, default=60)
    ap.add_argument("--schedule", choices=sorted(SCHEDULES), default="hourly", help="how often runs come")
    ap.add_argument("--dests", default="duckdb,postgres,delta")
    ap.add_argument("--seed", type=int, default=23)
    args = ap.parse_args()
    pg = None
    bad = 0
    folder = Path(tempfile.mkdtemp(prefix="season-"))
    plan = SCHEDULES[args.schedule]
    print(f"season: {args.days:g} simulated days, {args.schedule}: events every {plan.events_s / 3600:g} h, every "
          f"table every {plan.main_s / 3600:g} h, a reconcile daily; seed {args.seed}, 10% killed, 10% overlapped, "
          f"10% under faults", flush=True)  # fmt: skip
    for name in args.dests.split(","):
        if name == "postgres":
            from tests.pg import PostgresServer

            pg = pg or PostgresServer().start()
            pg.create_database("season")
            dest = PostgresDest(pg, "season")
        elif name == "delta":
            dest = DeltaDest(folder / "delta")
        else:
            dest = DuckDest(folder / "season.duckdb")
        t0 = time.monotonic()
        with SandboxServer(SandboxConfig(scale="tiny", rate_limits="off", seed=args.seed)) as sb:
            season = Season(sb, dest, seed=args.seed)
            s = run_season(season, args.days, plan)
            last = season.settle()  # a last clean run, then its check (the last scheduled run may have been killed)
        wall = time.monotonic() - t0
        print(f"{name}: runs {s.runs}, clean {s.clean}, kills {s.kills}, overlaps {s.overlaps} ({s.overlaps_clean} both "
              f"clean, checked), faulted {s.faulted}, "
              f"failed {s.failed}, checks {s.checks}, rows moved {s.rows:,}, requests {s.requests:,}, "
              f"mismatches {len(s.mismatches)}, wall {wall:.0f} s", flush=True)  # fmt: skip
        print("    changes:", ", ".join(f"{k} {v}" for k, v in sorted(s.changes.items())), flush=True)
        for line in s.mismatches[:1] + ([last] if last and last not in s.mismatches[:1] else []) + season.log[:5]:
            print("   ", line, flush=True)
        bad += len(s.mismatches) + bool(last and last not in s.mismatches)
    if pg:
        pg.stop()
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
