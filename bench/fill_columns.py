"""An existing user's upgrade (issue #24): an events table loaded before the well-known property columns existed,
a day later. The next run fills them in the destination from the stored ``event_properties`` and reads only the
last day (destinations/fill.py), where before it read every event again: the fill run against a first load of the
same table (what the re-read costs at least; limits off, so at real limits the re-read is the events bucket's pages
on top).

The old table is made by the same omniload with the events spec lacking the derived columns (as
tests/test_fill_columns.py does).

Usage: python bench/fill_columns.py [--events 1000000]
"""

from __future__ import annotations

import argparse
import re
import tempfile
import urllib.request

from common import KEY, PY, Sandbox, machine, run_measured

OLD = ("from dataclasses import replace; from omniload.sources.klaviyo.tables import TABLES; "
       "TABLES['events'] = replace(TABLES['events'], derived={}); from omniload.cli import main; import sys; "
       "raise SystemExit(main(sys.argv[1:]))")  # fmt: skip


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("--events", type=int, default=1_000_000)
    args = p.parse_args()
    print(machine())
    with (
        Sandbox("--scale", f"tiny,events={args.events}", "--rate-limits", "off") as sb,
        tempfile.TemporaryDirectory() as tmp,
    ):
        src = f"klaviyo://?api_key={KEY}&base_url={sb.url}"

        def ingest(*cmd: str, db: str) -> dict:
            r = run_measured([*cmd, "ingest", "--source-uri", src, "--source-table", "events", "--dest-uri",
                              f"duckdb:///{tmp}/{db}", "--progress", "log"])  # fmt: skip
            fetched = re.search(r"\[events\] finish: .*\((\d[\d,]*) fetched\)", r["stderr"])
            r["fetched"] = fetched.group(1) if fetched else "?"
            assert r["rc"] == 0, r["stderr"][-2000:]
            return r

        old = ingest(PY, "-c", OLD, db="old.duckdb")
        print(
            f"old layout, first load: {old['seconds']:.1f} s, {old['fetched']} events, peak RSS {old['peak_mb']:.0f} MB"
        )
        urllib.request.urlopen(
            urllib.request.Request(f"{sb.url}/__sandbox/clock/advance?seconds=86400", method="POST", data=b"")
        )
        fill = ingest(PY, "-m", "omniload.cli", db="old.duckdb")
        print(f"next run, columns filled in place: {fill['seconds']:.1f} s, {fill['fetched']} events fetched, "
              f"peak RSS {fill['peak_mb']:.0f} MB")  # fmt: skip
        fresh = ingest(PY, "-m", "omniload.cli", db="fresh.duckdb")
        print(f"a first load with the columns (what the re-read costs at least): {fresh['seconds']:.1f} s, "
              f"{fresh['fetched']} events, peak RSS {fresh['peak_mb']:.0f} MB")  # fmt: skip


if __name__ == "__main__":
    main()
