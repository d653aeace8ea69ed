"""Incremental no-op and start-up: the second run with nothing new, and `--help` times.

Usage: python bench/noop_startup.py [--tables events,profiles,...]   (default: the 15 list endpoints; child
tables cost one request per parent record on every run, see README)
"""

from __future__ import annotations

import json
import statistics
import tempfile
import time
import urllib.request

from common import KEY, PY, Sandbox, run_measured


def requests_seen(url: str) -> int:
    with urllib.request.urlopen(f"{url}/__sandbox/stats") as r:
        return json.loads(r.read()).get("total", 0)


def timed(cmd: list[str], n: int = 5) -> float:
    return statistics.median(run_measured(cmd)["seconds"] for _ in range(n))


CORE = (
    "events,profiles,campaigns,metrics,tags,coupons,catalog-variants,catalog-categories,catalog-items,flows,"
    "lists,images,segments,forms,templates"
)


def main() -> None:
    import argparse

    ap = argparse.ArgumentParser()
    ap.add_argument("--tables", default=CORE)
    tables = ap.parse_args().tables
    n = len(tables.split(","))
    with Sandbox("--scale", "small", "--rate-limits", "real") as sb, tempfile.TemporaryDirectory() as tmp:
        cmd = [PY, "-m", "omniload.cli", "ingest", "--source-uri", f"klaviyo://?api_key={KEY}&base_url={sb.url}",
               "--source-table", tables, "--dest-uri", f"duckdb:///{tmp}/noop.duckdb", "--progress", "json"]  # fmt: skip
        noop = [*cmd, "--reconcile", "none"]  # the load alone; bench/reconcile_cost.py has the delete scans
        first = run_measured(cmd)
        assert first["rc"] == 0, first["stderr"][-1000:]
        before = requests_seen(sb.url)
        started = time.monotonic()
        second = run_measured(noop)
        wall = time.monotonic() - started
        assert second["rc"] == 0
        rows = [json.loads(ln) for ln in second["stdout"].splitlines() if '"summary"' in ln]
        print(f"first run ({n} tables, small scale, real limits): {first['seconds']:.1f}s")
        print(f"no-op second run: {wall:.2f}s wall for {n} tables, {requests_seen(sb.url) - before} requests in all")
        print("  " + ", ".join(f"{r['table']}={r['requests']}" for r in rows))
        startup = timed([PY, "-c", "pass"])
        print(f"  python start-up alone: {startup:.2f}s; work beyond start-up: {wall - startup:.2f}s")
    print(
        f"omniload --help: {timed([PY, '-m', 'omniload.cli', '--help']):.3f}s; "
        f"omniload ingest --help: {timed([PY, '-m', 'omniload.cli', 'ingest', '--help']):.3f}s (median of 5)"
    )


if __name__ == "__main__":
    main()
