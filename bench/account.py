"""A whole account in the time of its slowest table: `--source-table all` against each table alone.

The sandbox runs at Klaviyo's real rate limits with added latency. The script loads every table alone (each
into a fresh DuckDB file, in turn), then all of them in one run, and prints the slowest table's time, the
sum of the tables and the whole run, with the ratio to the slowest table.

Usage: python bench/account.py [--scale medium] [--latency-ms 150] [--table-parallelism 4] [--alone flow-messages,...]
"""

from __future__ import annotations

import argparse
import json
import tempfile

from common import KEY, PY, Sandbox, run_measured


def ingest(url: str, tables: str, db: str, *extra: str) -> dict:
    res = run_measured([PY, "-m", "omniload.cli", "ingest", "--source-uri", f"klaviyo://?api_key={KEY}&base_url={url}",
                        "--source-table", tables, "--dest-uri", f"duckdb:///{db}", "--progress", "json",
                        "--extract-parallelism", "20", *extra])  # fmt: skip
    assert res["rc"] == 0, res["stderr"][-2000:]
    res["tables"] = {r["table"]: r for r in map(json.loads, res["stdout"].splitlines()) if r.get("event") == "summary"}
    return res


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--scale", default="medium")
    ap.add_argument("--latency-ms", default="150")
    ap.add_argument("--table-parallelism", default="4")
    ap.add_argument("--tables", default="", help="comma-separated; default: every table of `all`")
    ap.add_argument(
        "--alone",
        default="",
        help="comma-separated tables to time alone (the slowest candidates; "
        "default: every table of the run). The ratio is to the slowest of these.",
    )
    args = ap.parse_args()
    with Sandbox("--scale", args.scale, "--rate-limits", "real", "--latency-ms", args.latency_ms) as sb, \
            tempfile.TemporaryDirectory() as tmp:  # fmt: skip
        everything = ingest(
            sb.url, args.tables or "all", f"{tmp}/all.duckdb", "--table-parallelism", args.table_parallelism
        )
        alone = {}
        for table in args.alone.split(",") if args.alone else everything["tables"]:
            alone[table] = ingest(sb.url, table, f"{tmp}/{table}.duckdb")["seconds"]
    slowest = max(alone, key=alone.get)
    print(
        f"scale {args.scale}, real limits, {args.latency_ms} ms latency, --table-parallelism {args.table_parallelism}"
    )
    for table, secs in sorted(alone.items(), key=lambda kv: -kv[1]):
        rows = everything["tables"][table]["rows"]
        print(f"  {table:22} alone {secs:6.1f}s   {rows:>9,} rows")
    print(
        f"slowest table alone ({slowest}): {alone[slowest]:.1f}s"
        + ("" if args.alone else f"; sum of tables alone: {sum(alone.values()):.1f}s")
    )
    print(
        "  in the whole run: "
        + ", ".join(
            f"{t} {r['seconds']:.1f}s"
            for t, r in sorted(everything["tables"].items(), key=lambda kv: -kv[1].get("seconds", 0))[:8]
        )
    )
    print(
        f"--source-table all: {everything['seconds']:.1f}s = {everything['seconds'] / alone[slowest]:.2f}x the slowest table, "
        f"peak RSS {everything['peak_mb']:.0f} MB"
    )


if __name__ == "__main__":
    main()
