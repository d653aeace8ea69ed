"""CPU per row: the client's user+sys CPU seconds per loaded row (µs/row), events into DuckDB, whole process.

The ``omniload ingest`` process and the children it waits for are counted (``os.wait4``'s resource usage), the
sandbox (its own process, started by this script) is not: CPU time rather than wall time, so that other work on a
shared machine changes the figure little. Sandbox limits off, client pacing lifted x100 (as bench/cpu_memory.py);
each variant runs ``--runs`` times, interleaved, and the median is printed. ``--src floor`` adds bench/floor.py's
hand-written floor (fetch -> msgspec -> Arrow -> DuckDB INSERT, no dlt, no state): the CPU any loader into DuckDB
pays on this machine.

``--stages``: instead, the CPU of the decode -> Arrow stages alone, in this process (best of 5 over 50 pages of
the sandbox's events, so that a loaded machine changes it least), for this checkout and each ``--src``: decoding a
page (decode.py), typed records to Arrow with the well-known property columns (convert.py, properties.py), and
``properties=columns`` lifting 50k-row batches (lift.py): a run's first batch, and a later one, when every property
has its column.

Usage: python bench/cpu_per_row.py [--stages] [--events 1000000] [--runs 3] [--parallelism 8] [--properties columns]
       [--src <the src folder of another checkout, measured too: before/after; "<src>+columns": with
       properties=columns>] [--src ...]
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile

from common import KEY, PY, ROOT, Sandbox, omniload_ingest
from floor import FLOOR


def cpu_run(command: list[str]) -> tuple[float, int]:
    """CPU seconds (user+sys, the process and its waited-for children) and rows loaded of one run."""
    with tempfile.TemporaryFile("w+") as err:
        proc = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=err, cwd=ROOT)
        _, status, usage = os.wait4(proc.pid, 0)
        proc.returncode = os.waitstatus_to_exitcode(status)
        err.seek(0)
        text = err.read()
    assert proc.returncode == 0, text[-2000:]
    line = next(ln for ln in text.splitlines() if "finish" in ln or ln.startswith("floor rows "))
    if line.startswith("floor rows "):  # the hand floor (bench/floor.py's FLOOR) says its rows on stderr
        return usage.ru_utime + usage.ru_stime, int(line.split()[2])
    rows = int(line.split("finish: ", 1)[1].split(" rows", 1)[0].replace(",", ""))
    return usage.ru_utime + usage.ru_stime, rows


def stages(url: str) -> None:
    """Print µs/row of each decode -> Arrow stage of the omniload on ``sys.path`` (see the module's docstring)."""
    import json
    import time
    import urllib.request

    import pyarrow as pa

    from omniload.sources.klaviyo.convert import typed_to_arrow
    from omniload.sources.klaviyo.decode import PageDecoder
    from omniload.sources.klaviyo.lift import Lifter
    from omniload.sources.klaviyo.tables import TABLES

    spec, bodies, next_url = TABLES["events"], [], url + "/api/events?page[size]=1000&sort=datetime"
    headers = {"Authorization": f"Klaviyo-API-Key {KEY}", "revision": "2026-07-15"}
    while next_url and len(bodies) < 50:
        bodies.append(urllib.request.urlopen(urllib.request.Request(next_url, headers=headers)).read())
        next_url = json.loads(bodies[-1])["links"].get("next")
    decoder = PageDecoder(spec)
    docs = [decoder.decode(b) for b in bodies]
    rows = sum(len(d.records) for d in docs)

    def best(work) -> float:
        times = []
        for _ in range(5):
            start = time.process_time()
            work()
            times.append(time.process_time() - start)
        return min(times) / rows * 1e6

    batch = pa.concat_tables([typed_to_arrow(decoder, d.records, {}, "bench") for d in docs])

    def lift() -> None:
        lifter = Lifter("events", 100, {}, lambda text: None)
        lifter.reserved = set(batch.column_names)
        for start in range(0, batch.num_rows, 50_000):
            lifter.apply(batch.slice(start, 50_000))

    known = Lifter("events", 100, {}, lambda text: None)  # every property has its column: a run's later batches
    known.reserved = set(batch.column_names)
    known.apply(batch)

    def lift_later() -> None:
        for start in range(0, batch.num_rows, 50_000):
            known.apply(batch.slice(start, 50_000))

    print(f"    decode {best(lambda: [decoder.decode(b) for b in bodies]):.2f} µs/row, to Arrow with the well-known "
          f"columns {best(lambda: [typed_to_arrow(decoder, d.records, {}, 'bench') for d in docs]):.2f} µs/row, "
          f"properties=columns lift {best(lift):.2f} µs/row (a run's first batch), {best(lift_later):.2f} µs/row (later "
          f"batches, every property known) ({rows:,} events)")  # fmt: skip


def main() -> None:
    os.environ.setdefault("OMNILOAD_BENCH_RATE_SCALE", "100")
    ap = argparse.ArgumentParser()
    ap.add_argument("--events", type=int, default=1_000_000)
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--parallelism", type=int, default=8)
    ap.add_argument("--properties", default="", help="'columns': this checkout with properties=columns")
    ap.add_argument(
        "--src",
        action="append",
        default=[],
        help="another src folder (+columns: properties=columns), or 'floor': bench/floor.py's hand floor",
    )
    ap.add_argument("--stages", action="store_true", help="the decode -> Arrow stages alone (see above)")
    ap.add_argument("--stages-at", help=argparse.SUPPRESS)  # the sandbox's URL: this process measures the stages
    args = ap.parse_args()
    if args.stages_at:
        return stages(args.stages_at)
    sandbox_src = str(ROOT / "klaviyo-sandbox" / "src")
    variants = [str(ROOT / "src") + ("+columns" if args.properties == "columns" else ""), *args.src]
    cpu: dict[str, list[float]] = {v: [] for v in variants}
    with Sandbox("--scale", f"tiny,events={args.events}", "--rate-limits", "off") as sb:
        if args.stages:
            for src in variants:
                print(f"  {src.removesuffix('+columns')}:", flush=True)
                subprocess.run([sys.executable, __file__, "--stages-at", sb.url], check=True,
                               env={**os.environ, "PYTHONPATH": f"{src.removesuffix('+columns')}:{sandbox_src}"})  # fmt: skip
            return
        for _ in range(args.runs):
            for src in variants:
                url = sb.url + ("&properties=columns" if src.endswith("+columns") else "")
                with tempfile.TemporaryDirectory() as tmp:
                    if src == "floor":  # fetch -> msgspec -> Arrow -> DuckDB INSERT, no dlt: what any loader pays
                        script = FLOOR + "\nprint('floor rows', rows_loaded, file=sys.stderr)\n"
                        seconds, rows = cpu_run(
                            [PY, "-c", script, sb.url, KEY, f"{tmp}/f.duckdb", str(args.parallelism)]
                        )
                        cpu[src].append(seconds / rows * 1e6)
                        print(
                            f"  floor: {seconds:.1f} s CPU, {rows:,} rows, {seconds / rows * 1e6:.1f} µs/row",
                            flush=True,
                        )
                        continue
                    cmd = omniload_ingest(url, "events", f"duckdb:///{tmp}/c.duckdb", args.parallelism)
                    path = src.removesuffix("+columns")
                    seconds, rows = cpu_run(["/usr/bin/env", f"PYTHONPATH={path}:{sandbox_src}", *cmd])
                    cpu[src].append(seconds / rows * 1e6)
                    print(f"  {src}: {seconds:.1f} s CPU, {rows:,} rows, {seconds / rows * 1e6:.1f} µs/row", flush=True)
    print(f"{args.events:,} events into DuckDB, parallelism {args.parallelism}, client CPU (user+sys, sandbox "
          f"excluded), median of {args.runs} (+columns: properties=columns):")  # fmt: skip
    first = statistics.median(cpu[variants[0]])
    for src in variants:
        med = statistics.median(cpu[src])
        print(f"  {src}: {med:.1f} µs/row ({med / first:.2f}x the first)")


if __name__ == "__main__":
    sys.exit(main())
