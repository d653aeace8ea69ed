"""Events of chosen metrics (``metrics=``, issue #24): what a backfill and the next incremental run cost with one
metric, three metrics, and every event, limits off. Requests are the events table's own (the summary's count);
``metrics=`` adds one ``/api/metrics`` listing per run (one request per 200 metrics), said apart.

Usage: python bench/chosen_metrics.py [--scale small]
"""

from __future__ import annotations

import argparse
import re
import tempfile
import urllib.request

from common import KEY, PY, Sandbox, machine, run_measured

CHOICES = (("every event", ""), ("metrics=Placed Order", "Placed Order"),
           ("metrics=Placed Order,Opened Email,Clicked Email", "Placed Order,Opened Email,Clicked Email"))  # fmt: skip


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("--scale", default="small")
    args = p.parse_args()
    print(machine())
    with Sandbox("--scale", args.scale, "--rate-limits", "off") as sb, tempfile.TemporaryDirectory() as tmp:

        def ingest(n: int, metrics: str) -> str:
            src = f"klaviyo://?api_key={KEY}&base_url={sb.url}" + (f"&metrics={metrics}" if metrics else "")
            r = run_measured([PY, "-m", "omniload.cli", "ingest", "--source-uri", src, "--source-table", "events",
                              "--dest-uri", f"duckdb:///{tmp}/m{n}.duckdb", "--progress", "log"])  # fmt: skip
            assert r["rc"] == 0, r["stderr"][-2000:]
            row = re.search(r"^events\s+ok\s+([\d,]+)\s+([\d,]+)", r["stdout"], re.M)
            return f"{row.group(1)} rows, {row.group(2)} requests, {r['seconds']:.1f} s" if row else "?"

        first = [ingest(n, m) for n, (_, m) in enumerate(CHOICES)]
        urllib.request.urlopen(
            urllib.request.Request(f"{sb.url}/__sandbox/clock/advance?seconds=3600", method="POST", data=b"")
        )
        for n, (label, m) in enumerate(CHOICES):
            print(f"{label}: backfill {first[n]}; an hour later {ingest(n, m)}")


if __name__ == "__main__":
    main()
