"""The machine's floor for loading events, and omniload against it.

The floor is a hand-written pipeline over the same sandbox pages: concurrent time windows fetched with aiohttp,
decoded with one msgspec struct, turned into Arrow, and INSERTed into DuckDB in batches of 50,000 rows. No retries
(a 429 waits its Retry-After), no pacing, no state, no dlt. Runs are interleaved (floor, omniload, floor, ...) and medians are compared.

Pacing: the sandbox runs with `--rate-limits off` and sends no RateLimit headers; omniload's client paces at
100x Klaviyo's published limits (OMNILOAD_BENCH_RATE_SCALE=100), so neither side waits on a limit.

``--columns`` adds a third run to each round, omniload with ``properties=columns`` (issue #24: its wall time at
most 1.15x omniload's default), and prints that ratio.

Usage: python bench/floor.py [--events 1000000] [--runs 3] [--parallelism 8] [--columns]
"""

from __future__ import annotations

import os
import sys

from common import KEY, PY, Sandbox, comparison_args, interleave, omniload_ingest, print_comparison

# The hand-written fetch, shared by every floor (floor.py, pg_floor.py, latency.py): ``fetch_all(base, key, par,
# write)`` pages through par * 4 equal time windows, par at a time, and hands ``write`` Arrow tables of >= 50,000
# rows in time order; ``write=None`` fetches and decodes only (no Arrow). A 429 waits its Retry-After.
FETCH = r"""
import asyncio, sys, time
from datetime import datetime, timezone
import aiohttp, msgspec, pyarrow as pa
class Ref(msgspec.Struct, gc=False): id: str | None = None
class Rel(msgspec.Struct, gc=False): data: Ref | None = None
class Rels(msgspec.Struct, gc=False): profile: Rel | None = None; metric: Rel | None = None
class Attrs(msgspec.Struct, gc=False):
    timestamp: int | None = None; event_properties: msgspec.Raw = msgspec.Raw(b"null"); datetime: str | None = None; uuid: str | None = None
class Res(msgspec.Struct, gc=False): id: str; attributes: Attrs; relationships: Rels | None = None
class Links(msgspec.Struct, gc=False): next: str | None = None
class Doc(msgspec.Struct): data: list[Res]; links: Links | None = None
dec = msgspec.json.Decoder(Doc)
COLUMNS = "id varchar, timestamp bigint, event_properties json, datetime timestamptz, uuid varchar, profile_id varchar, metric_id varchar"
def arrow(rows):
    a = [r.attributes for r in rows]
    return pa.table({"id": [r.id for r in rows], "timestamp": [x.timestamp for x in a],
        "event_properties": [bytes(x.event_properties).decode() for x in a],
        "datetime": pa.array([x.datetime for x in a]).cast(pa.timestamp("us", tz="UTC")), "uuid": [x.uuid for x in a],
        "profile_id": [r.relationships.profile.data.id for r in rows], "metric_id": [r.relationships.metric.data.id for r in rows]})
async def get(s, url):
    while True:
        async with s.get(url) as r:
            if r.status == 429:
                await asyncio.sleep(float(r.headers.get("Retry-After", "1"))); continue
            assert r.status == 200, (r.status, url)
            return await r.read()
async def window(s, base, lo, hi, out, tables):
    url = f"{base}/api/events?filter=greater-or-equal(datetime,{lo}),less-than(datetime,{hi})&sort=datetime&page%5Bsize%5D=1000"
    while url:
        d = dec.decode(await get(s, url)); url = d.links.next if d.links else None
        out.append((arrow(d.data) if tables else len(d.data)) if d.data else None)
async def fetch_all(base, key, par, write):
    H = {"Authorization": f"Klaviyo-API-Key {key}", "revision": "2026-07-15"}
    async with aiohttp.ClientSession(headers=H, connector=aiohttp.TCPConnector(limit=par * 2)) as s:
        first = msgspec.json.decode(await get(s, f"{base}/api/events?sort=datetime&page%5Bsize%5D=1"))
        last = msgspec.json.decode(await get(s, f"{base}/api/events?sort=-datetime&page%5Bsize%5D=1"))
        lo = datetime.fromisoformat(first["data"][0]["attributes"]["datetime"]).timestamp()
        hi = datetime.fromisoformat(last["data"][0]["attributes"]["datetime"]).timestamp() + 1
        n = par * 4; step = (hi - lo) / n
        edges = [datetime.fromtimestamp(int(lo + step * i), timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ") for i in range(n)]
        edges.append(datetime.fromtimestamp(int(hi) + 1, timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ"))
        sem = asyncio.Semaphore(par); outs = [[] for _ in range(n)]
        async def run(i):
            async with sem: await window(s, base, edges[i], edges[i + 1], outs[i], write is not None)
        tasks = [asyncio.create_task(run(i)) for i in range(n)]
        rows, pending = 0, []
        def flush():
            nonlocal rows, pending
            if pending:
                tbl = pa.concat_tables(pending); write(tbl); rows += tbl.num_rows; pending = []
        for i, t in enumerate(tasks):
            await t
            if write is None:
                rows += sum(x for x in outs[i] if x); outs[i].clear(); continue
            pending += [tbl for tbl in outs[i] if tbl is not None]; outs[i].clear()
            if sum(p.num_rows for p in pending) >= 50_000: flush()
        flush()
    return rows
"""

FLOOR = (
    FETCH
    + r"""
import duckdb
async def main():
    t0 = time.monotonic(); con = duckdb.connect(sys.argv[3])
    con.execute(f"create table events ({COLUMNS})")
    rows = await fetch_all(sys.argv[1], sys.argv[2], int(sys.argv[4]), lambda tbl: con.execute("insert into events select * from tbl"))
    con.close(); print(rows, round(time.monotonic() - t0, 2))
    return rows
rows_loaded = asyncio.run(main())
"""
)


def main() -> None:
    # CPU-bound: the sandbox's limits are off, and the client's own pacing is lifted too (x100), so that no run
    # waits on Klaviyo's published limits (3,500 events pages a minute would pause a 4M-event run for ~20 s)
    os.environ.setdefault("OMNILOAD_BENCH_RATE_SCALE", "100")
    print(
        f"pacing: sandbox limits off; client pacing x{os.environ['OMNILOAD_BENCH_RATE_SCALE']} (OMNILOAD_BENCH_RATE_SCALE)"
    )
    ap = comparison_args(1_000_000)
    ap.add_argument("--columns", action="store_true", help="also omniload with properties=columns (issue #24)")
    args = ap.parse_args()
    with Sandbox("--scale", f"tiny,events={args.events}", "--rate-limits", "off") as sb:
        runs = [lambda tmp: [PY, "-c", FLOOR, sb.url, KEY, f"{tmp}/floor.duckdb", str(args.parallelism)],
                lambda tmp: omniload_ingest(sb.url, "events", f"duckdb:///{tmp}/o.duckdb", args.parallelism)]  # fmt: skip
        if args.columns:  # the source URI's parameter rides after base_url (omniload_ingest's URI ends with it)
            runs.append(lambda tmp: omniload_ingest(f"{sb.url}&properties=columns", "events",
                                                    f"duckdb:///{tmp}/c.duckdb", args.parallelism))  # fmt: skip
        f, o, *c = interleave(args.runs, runs)
    print_comparison(f"{args.events:,} events, parallelism {args.parallelism}, medians of {args.runs} interleaved runs "
                     "(whole process):", "floor (fetch -> msgspec -> Arrow -> DuckDB INSERT)", f, o, args.events)  # fmt: skip
    if c:
        print(f"  omniload, properties=columns: {c[0]:.1f}s  ({args.events / c[0]:,.0f} rows/s)")
        print(
            f"  ratio properties=columns / default: {c[0] / o:.2f} (issue #24's goal <= 1.15: "
            f"{'met' if c[0] / o <= 1.15 else 'NOT met'})"
        )


if __name__ == "__main__":
    sys.exit(main())
