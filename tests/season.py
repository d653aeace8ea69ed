"""A season in the life of a Klaviyo account: the real ``omniload`` command run on a schedule of simulated time
against a sandbox whose account keeps changing, and the check that the destination equals the sandbox's truth
after every clean run. Used by ``tests/test_season.py`` (a short season in CI) and ``bench/season.py`` (60 days).

Each simulated step (``POST /__sandbox/season/step``: clock, updates, late events up to 10 days, deletes and
restores) is followed by a run of the scheduled tables; deterministic from the seed, a share of runs overlap (the
next starts before the last ended), are killed (SIGKILL or SIGTERM after a random delay) or meet faults (5xx, 429s,
dropped connections, truncated bodies). Once a simulated day a run also reconciles deletes and reads the deep
lookback. After each run that exits 0, :func:`mismatch` compares every table with the truth, allowing only what
the documented lags allow: events later than the short lookback for a day after they arrive, events later than
the deep lookback. The first difference is reported with table, key, column, expected and actual.
"""

from __future__ import annotations

import json
import os
import random
import signal
import subprocess
import sys
import time
import urllib.request
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path

from .conftest import OMNILOAD, ROOT, source_uri
from .helpers import _norm, expected_rows, key_of, row_key, sandbox_now

DELETED = "_omniload_deleted_at"
SHORT = timedelta(days=1)  # events' default lookback (every run)
DEEP = timedelta(days=7)  # events' default deep lookback
DEEP_EVERY = timedelta(days=1)  # at most once per this much of the server's time
FAULTS = "error=0.05,throttle=0.05,drop=0.02,truncated=0.02"


class Dest:
    """A destination of the season: its URI and its live rows (unmarked) of one table, by primary key."""

    name = ""

    def uri(self) -> str:
        raise NotImplementedError

    def fetch(self, table: str) -> list[dict]:
        raise NotImplementedError

    def rows(self, table: str) -> tuple[dict, list]:
        """(key -> row of the rows not marked deleted, keys seen twice)."""
        out, dup = {}, []
        key = key_of(table)
        for rec in self.fetch(table.replace("-", "_")):
            if rec.get(DELETED) is not None:
                continue
            k = row_key(rec, key)
            if k in out:
                dup.append(k)
            out[k] = rec
        return out, dup


@dataclass
class DuckDest(Dest):
    path: Path
    name: str = "duckdb"

    def uri(self) -> str:
        return f"duckdb:///{self.path}"

    def fetch(self, table: str) -> list[dict]:
        import duckdb

        if not self.path.exists():
            return []
        con = duckdb.connect(str(self.path), read_only=True)
        try:
            if not con.execute("select 1 from information_schema.tables where table_name = ?", [table]).fetchall():
                return []
            cur = con.execute(f'select * from main."{table}"')
            names = [d[0] for d in cur.description]
            return [dict(zip(names, r, strict=False)) for r in cur.fetchall()]
        finally:
            con.close()


@dataclass
class PostgresDest(Dest):
    server: object
    database: str
    name: str = "postgres"

    def uri(self) -> str:
        return self.server.uri(self.database)

    def fetch(self, table: str) -> list[dict]:
        con = self.server.connect(self.database)
        try:
            with con.cursor() as cur:
                cur.execute(
                    "select 1 from information_schema.tables where table_schema='public' and table_name=%s", (table,)
                )
                if not cur.fetchall():
                    return []
                cur.execute(f'select * from public."{table}"')
                names = [d[0] for d in cur.description]
                return [dict(zip(names, r, strict=False)) for r in cur.fetchall()]
        finally:
            con.close()


@dataclass
class DeltaDest(Dest):
    folder: Path
    name: str = "delta"

    def uri(self) -> str:
        return f"delta:///{self.folder}"

    def fetch(self, table: str) -> list[dict]:
        from deltalake import DeltaTable

        path = self.folder / "klaviyo" / table  # the source's default schema (Delta has none of its own)
        if not (path / "_delta_log").exists():
            return []
        return DeltaTable(str(path)).to_pyarrow_table().to_pylist()


@dataclass
class Stats:
    runs: int = 0
    clean: int = 0
    kills: int = 0
    overlaps: int = 0
    overlaps_clean: int = 0  # both runs exited 0 (the second waited for the first), then checked
    faulted: int = 0
    failed: int = 0
    checks: int = 0
    mismatches: list[str] = field(default_factory=list)
    requests: int = 0
    rows: int = 0  # rows the clean runs loaded (their summaries)


@dataclass
class Season:
    """One destination's season against sandbox ``sb`` (a :class:`klaviyo_sandbox.SandboxServer` in this process:
    its state is the truth)."""

    sb: object
    dest: Dest
    seed: int = 1
    tables: tuple[str, ...] = ("events", "profiles", "lists")
    kill_share: float = 0.1
    overlap_share: float = 0.1
    fault_share: float = 0.1
    stats: Stats = field(default_factory=Stats)
    log: list[str] = field(default_factory=list)

    def __post_init__(self) -> None:
        self.rng = random.Random(self.seed)
        self.late: dict[str, tuple[int, float]] = {}  # late event id -> (lag seconds, the clock when it arrived)
        self.step_no = 0

    # -- the account ------------------------------------------------------------------------------
    def admin(self, path: str) -> dict:
        req = urllib.request.Request(self.sb.base_url + path, method="POST", data=b"")
        with urllib.request.urlopen(req, timeout=60) as r:
            return json.loads(r.read())

    def advance(self, seconds: int) -> None:
        self.step_no += 1
        got = self.admin(f"/__sandbox/season/step?seconds={seconds}")
        for ev in got["late"]:
            self.late[ev["id"]] = (ev["lag_s"], self.clock_s())

    # -- runs -------------------------------------------------------------------------------------
    def command(self, daily: bool) -> list[str]:
        args = [*OMNILOAD, "ingest", "--source-uri", source_uri(self.sb), "--source-table", ",".join(self.tables),
                "--dest-uri", self.dest.uri(), "--progress", "json"]  # fmt: skip
        if daily:
            args += ["--reconcile", "all"]
        return args

    def start(self, daily: bool) -> subprocess.Popen:
        self.stats.runs += 1
        return subprocess.Popen(self.command(daily), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                                cwd=ROOT, env=os.environ.copy())  # fmt: skip

    def finish(self, proc: subprocess.Popen, timeout: float = 300) -> int:
        out, err = proc.communicate(timeout=timeout)
        if proc.returncode == 0:
            for line in out.splitlines():
                try:
                    doc = json.loads(line)
                except ValueError:
                    continue
                if isinstance(doc, dict) and doc.get("event") == "summary":  # one line per table
                    self.stats.rows += int(doc.get("rows") or 0)
                    self.stats.requests += int(doc.get("requests") or 0)
        elif proc.returncode not in (-9, 143, -15):
            self.log.append(f"step {self.step_no}: exit {proc.returncode}: {err.strip().splitlines()[-1:]}")
        return proc.returncode

    def run(self, daily: bool) -> int:
        """One scheduled run, perhaps overlapped by the next, killed or under faults; its exit code."""
        r = self.rng.random()
        if r < self.kill_share:
            self.stats.kills += 1
            proc = self.start(daily)
            time.sleep(self.rng.uniform(0.3, 2.5))
            proc.send_signal(self.rng.choice((signal.SIGKILL, signal.SIGTERM)))
            self.finish(proc)
            return -1
        if r < self.kill_share + self.overlap_share:
            self.stats.overlaps += 1
            first = self.start(daily)
            time.sleep(self.rng.uniform(0.1, 1.0))
            second = self.start(daily)
            codes = (self.finish(first), self.finish(second))
            self.stats.overlaps_clean += codes == (0, 0)
            return 0 if codes == (0, 0) else max(codes, key=abs)
        faults = r < self.kill_share + self.overlap_share + self.fault_share
        if faults:
            self.stats.faulted += 1
            self.admin(f"/__sandbox/faults?spec={FAULTS}")
        try:
            code = self.finish(self.start(daily))
        finally:
            if faults:
                self.admin("/__sandbox/faults?spec=")
        return code

    def tick(self, seconds: int) -> None:
        """A step of simulated time, then the scheduled run and, when it exits 0, the check."""
        self.advance(seconds)
        daily = self.clock_s() - self.day_s >= 86_400 if hasattr(self, "day_s") else True
        code = self.run(daily)
        if code != 0:
            self.stats.failed += 1
            return
        self.stats.clean += 1
        if daily:
            self.day_s = self.clock_s()
        self.check()

    def clock_s(self) -> float:
        return self.sb.state.dataset.now_us / 1e6

    # -- the check --------------------------------------------------------------------------------
    def allowed_missing(self, table: str, key) -> bool:
        """An event the documented bound (README, Late events) allows a copy to lack yet: later than the deep
        lookback, or later than the short one and arrived less than a day (plus the 30 s before the API shows it)
        ago: the first run a day after the last deep re-read reads deep again, and every deep re-read after its
        arrival loads it."""
        if table != "events" or key not in self.late:
            return False
        lag, arrived = self.late[key]
        if lag <= SHORT.total_seconds():
            return False
        return lag > DEEP.total_seconds() or self.clock_s() < arrived + DEEP_EVERY.total_seconds() + 60

    def check(self) -> str | None:
        self.stats.checks += 1
        for table in self.tables:
            found = mismatch(self, table)
            if found:
                self.stats.mismatches.append(found)
                return found
        return None


def mismatch(season: Season, table: str) -> str | None:
    """The first difference between the destination's live rows of ``table`` and the sandbox's truth."""
    got, dup = season.dest.rows(table)
    where = f"step {season.step_no}, {season.dest.name}, {table}"
    if dup:
        return f"{where}: key {dup[0]!r} duplicated"
    # every record the API shows, also those stamped on the clock's second (a restore is updated "now")
    want = expected_rows(season.sb, table, end=sandbox_now(season.sb) + timedelta(days=1))
    now = sandbox_now(season.sb).replace(microsecond=0)
    cursor = _cursor(table)
    for k, exp in want.items():
        if k not in got:
            if season.allowed_missing(table, k) or (cursor and exp.get(cursor) is not None and exp[cursor] >= now):
                continue
            return f"{where}: key {k!r} missing"
    cols = _columns(table)
    for k, row in got.items():
        if k not in want:
            return f"{where}: key {k!r} present but deleted in the sandbox (or never there)"
        if cursor and want[k].get(cursor) is not None and want[k][cursor] >= now:
            continue  # changed on the run's own second: the API's "less than now" shows it to the next run
        for col, exp in want[k].items():
            act = _norm(row.get(col), cols[col])
            if act != exp:
                return f"{where}: key {k!r} column {col}: expected {exp!r}, actual {act!r}"
    return None


def _cursor(table: str) -> str | None:
    from omniload.sources.klaviyo.tables import TABLES

    return TABLES[table].cursor


def _columns(table: str) -> dict[str, str]:
    from omniload.sources.klaviyo.tables import TABLES

    return TABLES[table].all_columns


def run_season(season: Season, days: float, step_s: int = 3600) -> Stats:
    """Tick through ``days`` of simulated time in steps of ``step_s`` seconds (jittered)."""
    end = season.clock_s() + days * 86_400
    while season.clock_s() < end:
        season.tick(max(60, int(step_s * season.rng.uniform(0.25, 1.5))))
    return season.stats


if __name__ == "__main__":  # pragma: no cover - see bench/season.py
    sys.exit("run bench/season.py")
