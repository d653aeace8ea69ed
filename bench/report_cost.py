"""What a year of each report table costs: requests sent and wall time at Klaviyo's real limits (issue #22).

The requests are measured: each table loads a year (``--interval-start`` 365 days before the sandbox's today)
from an in-process sandbox (``tiny,metrics=22,events=8000``, limits off, the client's pacing lifted with
``OMNILOAD_BENCH_RATE_SCALE``) into DuckDB, and the sandbox counts
what it was sent. The wall time at real limits is computed from that count, not run (a year of a values report
used to take hours): the client paces each endpoint at its steady limit after the burst (reports 1/s, 2/min;
metric aggregates 3/s, 60/min), so ``(requests - burst) / steady`` minutes, plus the measured time with limits
off. Days of budget: requests over ``report_budget`` (default 200 a day; metric aggregates have no daily limit).
Run: ``python bench/report_cost.py``.
"""

from __future__ import annotations

import contextlib
import io
import os
import sys
import tempfile
import time
from datetime import timedelta
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))
os.environ.setdefault(
    "OMNILOAD_BENCH_RATE_SCALE", "10000"
)  # the client's pacing lifted: the requests are counted, not timed

from klaviyo_sandbox.dataset import DEFAULT_NOW  # noqa: E402
from klaviyo_sandbox.server import SandboxConfig, SandboxServer  # noqa: E402
from omniload.cli import main as cli  # noqa: E402
from omniload.sources.klaviyo.options import REPORT_BUDGET  # noqa: E402
from omniload.sources.klaviyo.tables import TABLES  # noqa: E402
from omniload.sources.klaviyo.tables.reports import REPORTS  # noqa: E402

KEY = "pk_bench00000000000000000000000000000"
SCALE = "tiny,metrics=22,events=8000"


def measure(table: str) -> tuple[int, float]:
    """(requests the sandbox saw on the table's endpoint, seconds) of loading a year of ``table``, limits off."""
    sb = SandboxServer(SandboxConfig(scale=SCALE, rate_limits="off")).start()
    try:
        path = TABLES[table].path
        start = (DEFAULT_NOW - timedelta(days=365)).isoformat()
        with (
            tempfile.TemporaryDirectory() as tmp,
            contextlib.redirect_stdout(io.StringIO()),
            contextlib.redirect_stderr(io.StringIO()),
        ):
            t0 = time.monotonic()
            code = cli(["ingest", "--source-uri", f"klaviyo://?api_key={KEY}&base_url={sb.base_url}", "--source-table",
                        table, "--dest-uri", f"duckdb:///{tmp}/r.duckdb", "--interval-start", start])  # fmt: skip
            took = time.monotonic() - t0
        if code != 0:
            raise RuntimeError(f"{table}: exit {code}")
        return sb.state.requests[f"report:{path}"], took
    finally:
        sb.stop()


def duration(seconds: float) -> str:
    return (
        f"{seconds:.0f} s"
        if seconds < 120
        else f"{seconds / 60:.0f} min"
        if seconds < 7200
        else f"{seconds / 3600:.1f} h"
    )


def main() -> None:
    print(f"A year of each report table ({SCALE}; requests measured, wall time at real limits computed)\n")
    print("| table | requests for a year | wall time at real limits | days of budget | before issue #22 |")
    print("|---|---:|---:|---:|---|")
    for table, report in REPORTS.items():
        spec = TABLES[table]
        requests, took = measure(table)
        paced = max(0, requests - spec.burst) / spec.steady * 60 + took
        days = "none (no daily limit)" if report.daily is None else f"{-(-requests // REPORT_BUDGET)}"
        before = ("365 requests, 3.0 h at 2/min, 2 days of budget (200 a day)" if report.totals else
                  "same requests; days in UTC" if table != "attributed_conversions" else "(new table)")  # fmt: skip
        print(f"| {table} | {requests:,} | {duration(paced)} (limits off here: {took:.1f} s) | {days} | {before} |")
    print(
        "\nmetric_aggregates: one request per metric per 60 days (22 metrics here); attributed_conversions asks the "
        "conversion metric only. A values report is one timeframe: a year is 1 request, however many days."
    )


if __name__ == "__main__":
    main()
