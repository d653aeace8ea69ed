"""What one run of the season's tables costs per destination (issue #23: a Delta run as cheap as a DuckDB run).

Against a tiny sandbox (limits off, seed 23), the real command with the season's command line (tests/season.py:
its 13 tables, ``properties=columns``, ``--progress json``): a first load, a run with nothing new, and one more
with ``--reconcile all``; then the season checker's read of the 13 tables (``Dest.fetch``). Prints wall seconds
and rows per run.

Usage: python bench/run_cost.py [--dests delta,duckdb]
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from klaviyo_sandbox import SandboxConfig, SandboxServer  # noqa: E402
from tests.conftest import OMNILOAD, source_uri  # noqa: E402
from tests.season import TABLES, DeltaDest, DuckDest  # noqa: E402

RUNS = (("first load", ()), ("nothing new", ()), ("nothing new, --reconcile all", ("--reconcile", "all")))


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--dests", default="delta,duckdb")
    args = ap.parse_args()
    folder = Path(tempfile.mkdtemp(prefix="run-cost-"))
    bad = 0
    with SandboxServer(SandboxConfig(scale="tiny", rate_limits="off", seed=23)) as sb:
        for name in args.dests.split(","):
            dest = DeltaDest(folder / "delta") if name == "delta" else DuckDest(folder / "run.duckdb")
            for what, extra in RUNS:
                cmd = [*OMNILOAD, "ingest", "--source-uri", source_uri(sb) + "&properties=columns", "--source-table",
                       ",".join(TABLES), "--dest-uri", dest.uri(), "--progress", "json", *extra]  # fmt: skip
                t0 = time.monotonic()
                proc = subprocess.run(cmd, capture_output=True, text=True, cwd=ROOT)
                wall = time.monotonic() - t0
                rows = 0
                for line in proc.stdout.splitlines():
                    doc = json.loads(line) if line.startswith("{") else {}
                    rows += int(doc.get("rows") or 0) if doc.get("event") == "summary" else 0
                print(f"{name}: {what}: exit {proc.returncode}, {wall:.1f} s, {rows:,} rows", flush=True)
                bad += proc.returncode != 0
            t0 = time.monotonic()
            n = sum(len(dest.fetch(t.replace("-", "_"))) for t in TABLES)
            print(f"{name}: the checker's read of the {len(TABLES)} tables: {time.monotonic() - t0:.2f} s, {n:,} rows")
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
