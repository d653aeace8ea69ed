"""Helpers shared by the benchmark scripts: start the sandbox in its own process, time and measure runs."""

from __future__ import annotations

import os
import platform
import subprocess
import sys
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
KEY = "pk_bench00000000000000000000000000000"
PY = sys.executable


class Sandbox:
    """``klaviyo-sandbox`` in a child process; ``url`` is its base URL."""

    def __init__(self, *args: str) -> None:
        self.proc = subprocess.Popen([PY, "-m", "klaviyo_sandbox", *args],
                                     stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True, cwd=ROOT)  # fmt: skip
        self.url = self.proc.stdout.readline().strip()
        if not self.url.startswith("http"):
            raise RuntimeError("the sandbox did not start")

    def cpu_seconds(self) -> float:
        with open(f"/proc/{self.proc.pid}/stat") as fh:
            fields = fh.read().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")

    def stop(self) -> None:
        self.proc.terminate()
        try:
            self.proc.wait(timeout=10)
        except subprocess.TimeoutExpired:  # a worker still closing connections: the figures are already taken
            self.proc.kill()
            self.proc.wait(timeout=10)

    def __enter__(self) -> Sandbox:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()


def run_measured(args: list[str], env: dict | None = None) -> dict:
    """Run a command; return wall seconds, peak RSS (MB, sampled every 50 ms over the process tree) and output."""
    import psutil

    start = time.monotonic()
    proc = subprocess.Popen(args, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=ROOT,
                            env={**os.environ, **(env or {})})  # fmt: skip
    peak = 0
    stop = threading.Event()

    def sample() -> None:
        nonlocal peak
        p = psutil.Process(proc.pid)
        while not stop.is_set():
            try:
                rss = p.memory_info().rss + sum(c.memory_info().rss for c in p.children(recursive=True))
                peak = max(peak, rss)
            except psutil.Error:
                pass
            time.sleep(0.05)

    t = threading.Thread(target=sample, daemon=True)
    t.start()
    out, err = proc.communicate()
    stop.set()
    t.join()
    return {
        "seconds": time.monotonic() - start,
        "peak_mb": peak / 2**20,
        "stdout": out,
        "stderr": err,
        "rc": proc.returncode,
    }


def machine() -> str:
    try:
        model = next(ln.split(":", 1)[1].strip() for ln in open("/proc/cpuinfo") if ln.startswith("model name"))
    except (OSError, StopIteration):
        model = platform.processor()
    mem = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30
    return (
        f"{os.cpu_count()} cores ({model}), {mem:.0f} GiB RAM, Python {platform.python_version()}, {platform.system()}"
    )


def omniload_ingest(url: str, table: str, dest_uri: str, parallelism: int, *extra: str) -> list[str]:
    """The command line of ``omniload ingest`` of one sandbox table (line progress)."""
    return [PY, "-m", "omniload.cli", "ingest", "--source-uri", f"klaviyo://?api_key={KEY}&base_url={url}",
            "--source-table", table, "--dest-uri", dest_uri, "--progress", "log", "--extract-parallelism", str(parallelism),
            *extra]  # fmt: skip


def interleave(runs: int, commands: list) -> list[float]:
    """Run the commands one after another (each ``command(tmp)`` gives its arguments, ``tmp`` a fresh folder),
    ``runs`` rounds; the median wall seconds (whole process) of each. A failed run stops the benchmark."""
    import statistics
    import tempfile

    times: list[list[float]] = [[] for _ in commands]
    for _ in range(runs):
        for n, command in enumerate(commands):
            with tempfile.TemporaryDirectory() as tmp:
                res = run_measured(command(tmp))
                assert res["rc"] == 0, res["stderr"][-2000:]
                times[n].append(res["seconds"])
    return [statistics.median(t) for t in times]


def print_comparison(title: str, floor: str, f: float, o: float, rows: int, goal: float | None = None) -> None:
    """The medians of a floor and of omniload, their rates and the ratio (and the goal it is held to)."""
    print(title)
    width = max(len(floor), len("omniload ingest")) + 1
    print(f"  {floor + ':':{width}} {f:.1f}s  ({rows / f:,.0f} rows/s)")
    print(f"  {'omniload ingest:':{width}} {o:.1f}s  ({rows / o:,.0f} rows/s)")
    held = "" if goal is None else f" (goal <= {goal:.2f}: {'met' if o / f <= goal else 'NOT met'})"
    print(f"  ratio omniload / floor: {o / f:.2f}{held}")


def comparison_args(events: int, parallelism: int = 8):
    """The arguments of a floor comparison: ``--events``, ``--runs`` (interleaved rounds), ``--parallelism``."""
    import argparse

    ap = argparse.ArgumentParser()
    ap.add_argument("--events", type=int, default=events)
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--parallelism", type=int, default=parallelism)
    return ap
