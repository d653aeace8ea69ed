"""Run every benchmark in turn and print their figures (see bench/RESULTS.md for the last recorded run)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from common import machine

HERE = Path(__file__).resolve().parent

if __name__ == "__main__":
    print(f"machine: {machine()}\n")
    for script in (
        "sandbox_throughput.py",
        "cpu_memory.py",
        "noop_startup.py",
        "ceiling.py",
        "latency.py",
        "first_commit.py",
    ):
        print(f"$ python bench/{script}", flush=True)
        subprocess.run([sys.executable, str(HERE / script)], check=True)
        print(flush=True)
