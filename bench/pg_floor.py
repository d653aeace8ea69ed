"""The machine's floor for loading events into PostgreSQL, and omniload against it.

The floor is floor.py's hand-written fetch (concurrent time windows, aiohttp, one msgspec struct, Arrow) with
PostgreSQL's fastest path at the end: each batch of >= 50,000 rows is written as CSV by Arrow and streamed
with ``COPY ... FROM STDIN`` (psycopg2), in one transaction. No dlt, no state, no merge. omniload loads the
same events with ``omniload ingest`` into PostgreSQL. Every run gets a fresh database on one local server
(started as the tests start theirs, tests/pg.py, with fsync off); runs are interleaved and medians compared.

Usage: python bench/pg_floor.py [--events 1000000] [--runs 3] [--parallelism 8]
"""

from __future__ import annotations

import itertools
import sys

from common import KEY, PY, ROOT, Sandbox, comparison_args, interleave, omniload_ingest, print_comparison
from floor import FETCH

PG_FLOOR = (
    FETCH
    + r"""
import io, psycopg2, pyarrow.csv as pacsv
async def main():
    t0 = time.monotonic(); con = psycopg2.connect(sys.argv[3]); cur = con.cursor()
    cur.execute(f"create table events ({COLUMNS.replace(' json', ' jsonb')})")
    def write(tbl):
        buf = io.BytesIO(); pacsv.write_csv(tbl, buf); buf.seek(0)
        cur.copy_expert("copy events from stdin with (format csv, header true)", buf)
    rows = await fetch_all(sys.argv[1], sys.argv[2], int(sys.argv[4]), write)
    con.commit(); con.close(); print(rows, round(time.monotonic() - t0, 2))
asyncio.run(main())
"""
)


def main() -> None:
    ap = comparison_args(1_000_000)
    args = ap.parse_args()
    sys.path.insert(0, str(ROOT))
    from tests.pg import PostgresServer

    server = PostgresServer().start()
    numbers = itertools.count()

    def fresh() -> str:
        name = f"bench{next(numbers)}"
        server.create_database(name)
        return server.uri(name)

    try:
        with Sandbox("--scale", f"tiny,events={args.events}", "--rate-limits", "off") as sb:
            f, o = interleave(args.runs, [
                lambda tmp: [PY, "-c", PG_FLOOR, sb.url, KEY, fresh(), str(args.parallelism)],
                lambda tmp: omniload_ingest(sb.url, "events", fresh(), args.parallelism)])  # fmt: skip
    finally:
        server.stop()
    print_comparison(f"{args.events:,} events into PostgreSQL, parallelism {args.parallelism}, medians of {args.runs} "
                     "interleaved runs (whole process):", "floor (fetch -> msgspec -> Arrow -> CSV -> COPY)", f, o, args.events)  # fmt: skip


if __name__ == "__main__":
    sys.exit(main())
