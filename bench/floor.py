"""The machine's floor for loading events, and omniload against it.

The floor is a hand-written pipeline over the same sandbox pages: concurrent time windows fetched with aiohttp,
decoded with one msgspec struct, turned into Arrow, and INSERTed into DuckDB in batches of 50,000 rows. No retries, no pacing, no state,
no dlt. Runs are interleaved (floor, omniload, floor, ...) and medians are compared.

Pacing: the sandbox runs with `--rate-limits off` and sends no RateLimit headers; omniload's client still paces
each bucket at Klaviyo's published limits (events: 350/s, 3,500/min), which a 1M run (1,000 pages) stays under.

Usage: python bench/floor.py [--events 1000000] [--runs 3] [--parallelism 8]
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile

from common import KEY, PY, Sandbox, run_measured

FLOOR = r'''
import asyncio, sys, time
from datetime import datetime, timezone
import aiohttp, duckdb, msgspec, pyarrow as pa
base, key, db, par = sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4])
class Ref(msgspec.Struct, gc=False): id: str | None = None
class Rel(msgspec.Struct, gc=False): data: Ref | None = None
class Rels(msgspec.Struct, gc=False): profile: Rel | None = None; metric: Rel | None = None
class Attrs(msgspec.Struct, gc=False):
    timestamp: int | None = None; event_properties: msgspec.Raw = msgspec.Raw(b"null"); datetime: str | None = None; uuid: str | None = None
class Res(msgspec.Struct, gc=False): id: str; attributes: Attrs; relationships: Rels | None = None
class Links(msgspec.Struct, gc=False): next: str | None = None
class Doc(msgspec.Struct): data: list[Res]; links: Links | None = None
dec = msgspec.json.Decoder(Doc)
H = {"Authorization": f"Klaviyo-API-Key {key}", "revision": "2026-07-15"}
def arrow(rows):
    a = [r.attributes for r in rows]
    return pa.table({"id": [r.id for r in rows], "timestamp": [x.timestamp for x in a],
        "event_properties": [bytes(x.event_properties).decode() for x in a],
        "datetime": pa.array([x.datetime for x in a]).cast(pa.timestamp("us", tz="UTC")), "uuid": [x.uuid for x in a],
        "profile_id": [r.relationships.profile.data.id for r in rows], "metric_id": [r.relationships.metric.data.id for r in rows]})
async def window(s, lo, hi, out):
    url = f"{base}/api/events?filter=greater-or-equal(datetime,{lo}),less-than(datetime,{hi})&sort=datetime&page%5Bsize%5D=1000"
    while url:
        async with s.get(url) as r: body = await r.read()
        d = dec.decode(body); out.append(arrow(d.data) if d.data else None); url = d.links.next if d.links else None
async def main():
    t0 = time.monotonic(); con = duckdb.connect(db)
    con.execute("create table events (id varchar, timestamp bigint, event_properties json, datetime timestamptz, uuid varchar, profile_id varchar, metric_id varchar)")
    async with aiohttp.ClientSession(headers=H, connector=aiohttp.TCPConnector(limit=par * 2)) as s:
        async with s.get(f"{base}/api/events?sort=datetime&page%5Bsize%5D=1") as r: first = msgspec.json.decode(await r.read())
        async with s.get(f"{base}/api/events?sort=-datetime&page%5Bsize%5D=1") as r: last = msgspec.json.decode(await r.read())
        lo = datetime.fromisoformat(first["data"][0]["attributes"]["datetime"]).timestamp()
        hi = datetime.fromisoformat(last["data"][0]["attributes"]["datetime"]).timestamp() + 1
        n = par * 4; step = (hi - lo) / n
        edges = [datetime.fromtimestamp(int(lo + step * i), timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ") for i in range(n)]
        edges.append(datetime.fromtimestamp(int(hi) + 1, timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ"))
        sem = asyncio.Semaphore(par); outs = [[] for _ in range(n)]
        async def run(i):
            async with sem: await window(s, edges[i], edges[i + 1], outs[i])
        tasks = [asyncio.create_task(run(i)) for i in range(n)]
        rows, pending = 0, []
        def flush():
            nonlocal rows, pending
            if pending:
                tbl = pa.concat_tables(pending); con.execute("insert into events select * from tbl"); rows += tbl.num_rows; pending = []
        for i, t in enumerate(tasks):
            await t
            pending += [tbl for tbl in outs[i] if tbl is not None]; outs[i].clear()
            if sum(p.num_rows for p in pending) >= 50_000: flush()
        flush()
    con.close(); print(rows, round(time.monotonic() - t0, 2))
asyncio.run(main())
'''


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--events", type=int, default=1_000_000)
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--parallelism", type=int, default=8)
    args = ap.parse_args()
    floors, omnis = [], []
    with Sandbox("--scale", f"tiny,events={args.events}", "--rate-limits", "off") as sb:
        for _ in range(args.runs):
            with tempfile.TemporaryDirectory() as tmp:
                res = run_measured([PY, "-c", FLOOR, sb.url, KEY, f"{tmp}/floor.duckdb", str(args.parallelism)])
                assert res["rc"] == 0, res["stderr"][-2000:]
                floors.append(res["seconds"])
            with tempfile.TemporaryDirectory() as tmp:
                res = run_measured([PY, "-m", "omniload.cli", "ingest", "--source-uri", f"klaviyo://?api_key={KEY}&base_url={sb.url}",
                                    "--source-table", "events", "--dest-uri", f"duckdb:///{tmp}/o.duckdb", "--progress", "log",
                                    "--extract-parallelism", str(args.parallelism)])  # fmt: skip
                assert res["rc"] == 0, res["stderr"][-2000:]
                omnis.append(res["seconds"])
    f, o = statistics.median(floors), statistics.median(omnis)
    print(f"{args.events:,} events, parallelism {args.parallelism}, medians of {args.runs} interleaved runs (whole process):")
    print(f"  floor (fetch -> msgspec -> Arrow -> DuckDB INSERT): {f:.1f}s  ({args.events / f:,.0f} rows/s)")
    print(f"  omniload ingest:                                    {o:.1f}s  ({args.events / o:,.0f} rows/s)")
    print(f"  ratio omniload / floor: {o / f:.2f}")


if __name__ == "__main__":
    sys.exit(main())
