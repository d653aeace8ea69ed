"""A season in the life of a Klaviyo account: the real ``omniload`` command run on a schedule of simulated time
against a sandbox whose account keeps changing, and the check that the destination equals the sandbox's truth
after every clean run. Used by ``tests/test_season.py`` (a short season in CI) and ``bench/season.py`` (60 days).

Each simulated step (``POST /__sandbox/season/step``, klaviyo_sandbox/season.py: clock, new and updated records of
every table, late events up to 10 days, deletes and restores, members leaving, schema drift, a parent deleted while
its children are read) is followed by the runs due on the :class:`Schedule`: ``events`` every step (15 simulated
minutes), every table of the season every hour, a reconcile of every table once a day. Deterministic from the seed,
a share of runs overlap (the next starts before the last ended), are killed (SIGKILL or SIGTERM after a random
delay) or meet faults (5xx, 429s, dropped connections, truncated bodies). Runs load with ``properties=columns``
(so new properties become columns and a property that changes type lands in its variant column).

After each run that exits 0, :func:`mismatch` compares each table of the run with the truth, allowing only what the
documented lags allow: events later than the short lookback for a day after they arrive, events later than the deep
lookback; a row deleted (itself, or its parent or profile) since the last clean run that reconciles it started
(memberships: the last daily reconcile); a row whose parent or profile came back since the parent's last clean
run started (such a row comes back at its own table's next load after that run, README Deletes: a table is only
checked after a clean run that loaded it, so no more is allowed). The first difference is reported with table,
key, column, expected and actual.
"""

from __future__ import annotations

import json
import os
import random
import re
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
# every table the season changes (events run on their own every step too)
TABLES = ("events", "profiles", "lists", "list-memberships", "segments", "segment-memberships", "flows", "campaigns",
          "catalog-items", "catalog-variants", "catalog-categories", "coupons", "coupon-codes")  # fmt: skip
SCANNED_DAILY = ("list-memberships", "segment-memberships")  # reconciled only when asked (README, Deletes)
# a row's other records whose deletion deletes it, by column: table -> ((column, resource), ...)
OWNERS = {"events": (("profile_id", "profiles"),),
          "list-memberships": (("list_id", "lists"), ("profile_id", "profiles")),
          "segment-memberships": (("segment_id", "segments"), ("profile_id", "profiles")),
          "coupon-codes": (("coupon_id", "coupons"),)}  # fmt: skip
LIFTS = {"events": ("event_properties", "property_"), "profiles": ("properties", "custom_")}  # properties=columns
VARIANT = "__v_json"


@dataclass
class Schedule:
    """How often runs come, in simulated seconds: ``events`` alone every ``events_s`` (the step), every table
    every ``main_s``, with a reconcile of all every ``daily_s``."""

    events_s: int = 900
    main_s: int = 3600
    daily_s: int = 86_400


SCHEDULES = {"hourly": Schedule(), "sparse": Schedule(events_s=6 * 3600, main_s=12 * 3600)}


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
    changes: dict[str, int] = field(default_factory=dict)  # what the steps changed, by kind


@dataclass
class Season:
    """One destination's season against sandbox ``sb`` (a :class:`klaviyo_sandbox.SandboxServer` in this process:
    its state is the truth)."""

    sb: object
    dest: Dest
    seed: int = 1
    tables: tuple[str, ...] = TABLES
    kill_share: float = 0.1
    overlap_share: float = 0.1
    fault_share: float = 0.1
    lift: bool = True  # properties=columns
    period_s: int = 2 * 86_400  # each kind of deletion, a restore, a doomed parent: about once per this (the step's)
    # scheduled run (1: first load) -> "kill", "overlap", "faults", "clean"
    forced: dict[int, str] = field(default_factory=dict)
    stats: Stats = field(default_factory=Stats)
    log: list[str] = field(default_factory=list)

    def __post_init__(self) -> None:
        from klaviyo_sandbox.season import life

        self.rng = random.Random(self.seed)
        self.late: dict[str, tuple[int, float]] = {}  # late event id -> (lag seconds, the clock when it arrived)
        self.step_no = 0
        self.run_no = 0  # scheduled runs (an overlap is one, of two processes)
        self.life = life(self.sb.state)  # every deletion and restore, numbered
        self.started: dict[str, int] = {}  # table -> life.seq when its last clean run started
        self.reconciled: dict[str, int] = {}  # table -> life.seq when its last clean daily run started

    # -- the account ------------------------------------------------------------------------------
    def admin(self, path: str) -> dict:
        req = urllib.request.Request(self.sb.base_url + path, method="POST", data=b"")
        with urllib.request.urlopen(req, timeout=60) as r:
            return json.loads(r.read())

    def advance(self, seconds: int) -> None:
        self.step_no += 1
        got = self.admin(f"/__sandbox/season/step?seconds={seconds}&period_s={self.period_s}")
        for ev in got["late"]:
            self.late[ev["id"]] = (ev["lag_s"], self.clock_s())
        for kind, names in (("deleted", got["deleted"]), ("restored", got["restored"]), ("updated", got["updated"])):
            for name, ids in names.items():
                self.stats.changes[f"{kind} {name}"] = self.stats.changes.get(f"{kind} {name}", 0) + len(ids)
        for kind in got["drift"]:
            self.stats.changes[f"drift {kind}"] = 1
        if got["doom"]:
            self.stats.changes["doomed parent"] = self.stats.changes.get("doomed parent", 0) + 1

    # -- runs -------------------------------------------------------------------------------------
    def command(self, tables: tuple[str, ...], daily: bool) -> list[str]:
        uri = source_uri(self.sb) + ("&properties=columns" if self.lift else "")
        args = [*OMNILOAD, "ingest", "--source-uri", uri, "--source-table", ",".join(tables),
                "--dest-uri", self.dest.uri(), "--progress", "json"]  # fmt: skip
        if daily:
            args += ["--reconcile", "all"]
        return args

    def start(self, tables: tuple[str, ...], daily: bool) -> subprocess.Popen:
        self.stats.runs += 1
        return subprocess.Popen(self.command(tables, daily), stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                text=True, cwd=ROOT, env=os.environ.copy())  # fmt: skip

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
            lines = [ln for ln in err.strip().splitlines() if "error" in ln or "fail" in ln] or err.strip().splitlines()
            self.log.append(f"step {self.step_no}: exit {proc.returncode}: {lines[-3:]}")
        return proc.returncode

    def run(self, tables: tuple[str, ...], daily: bool) -> int:
        """One scheduled run, perhaps overlapped by the next, killed or under faults; its exit code."""
        r = self.rng.random()
        self.run_no += 1
        forced = self.forced.get(self.run_no)
        if forced:
            r = {"kill": 0.0, "overlap": self.kill_share, "faults": self.kill_share + self.overlap_share,
                 "clean": 1.0}[forced]  # fmt: skip
        if r < self.kill_share or forced == "kill":
            self.stats.kills += 1
            proc = self.start(tables, daily)
            time.sleep(self.rng.uniform(0.3, 2.5))
            proc.send_signal(self.rng.choice((signal.SIGKILL, signal.SIGTERM)))
            self.finish(proc)
            return -1
        if r < self.kill_share + self.overlap_share or forced == "overlap":
            self.stats.overlaps += 1
            first = self.start(tables, daily)
            time.sleep(self.rng.uniform(0.1, 1.0))
            second = self.start(tables, daily)
            codes = (self.finish(first), self.finish(second))
            self.stats.overlaps_clean += codes == (0, 0)
            return 0 if codes == (0, 0) else max(codes, key=abs)
        faults = r < self.kill_share + self.overlap_share + self.fault_share or forced == "faults"
        if faults:
            self.stats.faulted += 1
            self.admin(f"/__sandbox/faults?spec={FAULTS}")
        try:
            code = self.finish(self.start(tables, daily))
        finally:
            if faults:
                self.admin("/__sandbox/faults?spec=")
        return code

    def tick(self, seconds: int, tables: tuple[str, ...] | None = None, daily: bool = False) -> int:
        """A step of simulated time (none: the first load), then a run of ``tables`` (all) and, when it exits 0, the
        check of them."""
        if seconds:
            self.advance(seconds)
        tables = tables or self.tables
        seq = self.life.seq
        code = self.run(tables, daily)
        if code != 0:
            self.stats.failed += 1
            return code
        self.stats.clean += 1
        during = sum(1 for n in self.life.deleted.values() if n > seq)  # parents deleted while their children were read
        if during:
            self.stats.changes["parent deleted mid-read"] = (
                self.stats.changes.get("parent deleted mid-read", 0) + during
            )
        for t in tables:
            self.started[t] = seq
            if daily:
                self.reconciled[t] = seq
        self.check(tables)
        return 0

    def settle(self) -> str | None:
        """The season's end: one more run of every table with a reconcile, at the last step's clock, neither killed,
        overlapped nor faulted, then its check; the first mismatch, or why that run failed. A copy is only held to
        the truth after a clean run: when the last scheduled run was killed (or failed), what arrived since the last
        clean one is legitimately not there yet (seed 23, sparse, step 8: a late event that arrived at step 7's own
        clock, hidden from step 7's run by the 30 s before the API shows an event, its step-8 run killed)."""
        self.forced[self.run_no + 1] = "clean"
        before = len(self.stats.mismatches)
        code = self.tick(0, self.tables, True)
        if code != 0:
            return f"step {self.step_no}: the settling run exited {code}: {self.log[-1:]}"
        return self.stats.mismatches[before] if len(self.stats.mismatches) > before else None

    def clock_s(self) -> float:
        return self.sb.state.dataset.now_us / 1e6

    # -- the check --------------------------------------------------------------------------------
    def allowed_missing(self, table: str, key, row: dict) -> bool:
        """An event the documented bound (README, Late events) allows a copy to lack yet: later than the deep
        lookback, or later than the short one and arrived less than a day (plus the 30 s before the API shows it)
        ago: the first run a day after the last deep re-read reads deep again, and every deep re-read after its
        arrival loads it. Or a row whose parent or profile came back since that table's last clean run began."""
        if self._since(table, row, self.life.restored):
            return True
        if table != "events" or key not in self.late:
            return False
        lag, arrived = self.late[key]
        if lag <= SHORT.total_seconds():
            return False
        return lag > DEEP.total_seconds() or self.clock_s() < arrived + DEEP_EVERY.total_seconds() + 60

    def allowed_extra(self, table: str, key, row: dict) -> bool:
        """A row the destination may still hold: it, its parent or its profile was deleted after the last clean
        run that reconciles it began (its own deletion of a membership: the last daily reconcile)."""
        return self._since(table, row, self.life.deleted)

    def _since(self, table: str, row: dict, book: dict) -> bool:
        own = row.get("id") if table not in SCANNED_DAILY else f"{row[OWNERS[table][0][0]]}:{row['profile_id']}"
        seen = book.get((table, own))
        if seen is not None and seen > (self.reconciled if table in SCANNED_DAILY else self.started).get(table, -1):
            return True
        for column, owner in OWNERS.get(table, ()):
            seen = book.get((owner, row.get(column)))
            if seen is not None and seen > self.started.get(owner, -1):
                return True
        return False

    def check(self, tables: tuple[str, ...] | None = None) -> str | None:
        self.stats.checks += 1
        for table in tables or self.tables:
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
            if season.allowed_missing(table, k, exp) or (cursor and exp.get(cursor) is not None and exp[cursor] >= now):
                continue
            return f"{where}: key {k!r} missing"
    cols = _columns(table)
    for k, row in got.items():
        if k not in want:
            if season.allowed_extra(table, k, row):
                continue
            return f"{where}: key {k!r} present but deleted in the sandbox (or never there)"
        if cursor and want[k].get(cursor) is not None and want[k][cursor] >= now:
            continue  # changed on the run's own second: the API's "less than now" shows it to the next run
        lifted = LIFTS[table][0] if season.lift and table in LIFTS else None  # its JSON column: checked below
        for col, exp in want[k].items():
            if col == lifted:
                continue
            act = _norm(row.get(col), cols[col])
            if act != exp:
                return f"{where}: key {k!r} column {col}: expected {exp!r}, actual {act!r}"
        if season.lift and table in LIFTS:
            found = lifted_mismatch(table, row, want[k], cols)
            if found:
                return f"{where}: key {k!r} {found}"
    return None


def lifted_mismatch(table: str, row: dict, exp: dict, cols: dict) -> str | None:
    """``properties=columns`` (README): each property of the record's JSON column in exactly one place: its column
    ``<prefix><name>`` when its value fits the column, else NULL there and the value as JSON in
    ``<column>__v_json``; a well-known event property (a column of the table's own) whose value is of its column's
    type (text; ``$value``: a number) in that column; any other (its name another property's, beyond the cap, a
    well-known one of another type) in the JSON column, which holds nothing else (NULL: nothing). A lifted column
    whose property the record lacks is NULL; a null value is as absent."""
    source, prefix = LIFTS[table]
    props = exp[source] if isinstance(exp[source], dict) else {}
    rest = _norm(row.get(source), "json")
    if exp[source] is not None and not isinstance(exp[source], dict):  # not an object: kept whole
        return None if rest == exp[source] else f"column {source}: expected {exp[source]!r} whole, actual {rest!r}"
    rest = rest if rest is not None else {}
    if not isinstance(rest, dict) or set(rest) - {p for p, v in props.items() if v is not None}:
        return f"column {source}: expected only properties in no column, actual {rest!r}"
    named = {}
    for prop, value in props.items():
        named.setdefault(prefix + (re.sub(r"[^a-z0-9]+", "_", prop.lower()).strip("_") or "_"), (prop, value))
    for col in row:
        if not col.startswith(prefix) or col in cols or col.endswith(VARIANT) or col in named:
            continue
        if row[col] is not None or row.get(col + VARIANT) is not None:
            return f"column {col}: expected None (no such property), actual {row[col]!r}"
    for prop, value in props.items():
        if prop in rest:
            if rest[prop] != value or isinstance(rest[prop], str) != isinstance(value, str):
                return f"column {source}: property {prop!r} expected {value!r}, actual {rest[prop]!r}"
    for col, (prop, value) in named.items():
        if prop in rest:
            continue
        if col in cols:  # a well-known column (events): compared with the sandbox's above; held there as it is
            if value is not None and not (isinstance(value, str) if cols[col] != "double" else
                                          type(value) in (int, float)):  # fmt: skip
                return f"column {source}: expected {prop!r} ({value!r}, not of {col}'s type), it is not there"
            continue
        if col not in row:
            return f"column {col}: expected a column for {value!r}, the table has none"
        act, variant = row[col], row.get(col + VARIANT)
        if isinstance(act, str) and isinstance(value, dict | list):
            act = json.loads(act)
        if value is None:
            if act is not None or variant is not None:
                return f"column {col}: expected None, actual {act!r} (variant {variant!r})"
        elif act is not None:
            if act != value or isinstance(act, str) != isinstance(value, str) or variant is not None:
                return f"column {col}: expected {value!r}, actual {act!r} (variant {variant!r})"
        elif not _same_json(variant, value):
            return f"column {col}: expected {value!r} in {col + VARIANT}, actual {variant!r}"
    return None


def _same_json(stored, value) -> bool:
    """A JSON column's value (its text, DuckDB and Delta; decoded, PostgreSQL) is ``value``."""
    if isinstance(stored, str):
        try:
            back = json.loads(stored)
            if back == value and isinstance(back, str) == isinstance(value, str):
                return True
        except ValueError:
            pass
    return stored == value and stored is not None


def _cursor(table: str) -> str | None:
    from omniload.sources.klaviyo.tables import TABLES as SPECS

    return SPECS[table].cursor


def _columns(table: str) -> dict[str, str]:
    from omniload.sources.klaviyo.tables import TABLES as SPECS

    return SPECS[table].all_columns


def run_season(season: Season, days: float, schedule: Schedule | None = None) -> Stats:
    """Step through ``days`` of simulated time on ``schedule``: each step ``events_s`` long, ``events`` run every
    step, every table every ``main_s`` with a reconcile every ``daily_s`` (due until a clean run did it)."""
    plan = schedule or Schedule()
    end = season.clock_s() + days * 86_400
    for _ in range(5):  # the first load, of the account as it is, before its life goes on
        if season.tick(0, season.tables, True) == 0:
            break
    main_at, daily_at = season.clock_s() + plan.main_s, season.clock_s() + plan.daily_s
    while season.clock_s() < end:
        due_main = season.clock_s() + plan.events_s >= main_at
        due_daily = due_main and season.clock_s() + plan.events_s >= daily_at
        tables = season.tables if due_main else tuple(t for t in season.tables if t == "events")
        code = season.tick(plan.events_s, tables, due_daily)
        if due_main:
            main_at = season.clock_s() + plan.main_s
        if due_daily and code == 0:
            daily_at = season.clock_s() + plan.daily_s
    return season.stats


if __name__ == "__main__":  # pragma: no cover - see bench/season.py
    sys.exit("run bench/season.py")
