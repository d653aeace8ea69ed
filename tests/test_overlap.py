"""Checkpoint slices overlap: the next slice is fetched while the current one loads, and commits stay exact."""

from __future__ import annotations

import re
from datetime import UTC, datetime
from urllib.parse import parse_qs

import duckdb

from omniload.sources.base import TableReader

from .helpers import assert_equals_truth, ingest

BOUND = re.compile(r"(greater-or-equal|greater-than|less-than)\(datetime,([^)]+)\)")


def _bounds(query: str) -> dict[str, datetime]:
    """The time filter of a logged request: {'lower': ..., 'upper': ...} (those it has)."""
    out = {}
    for op, value in BOUND.findall((parse_qs(query).get("filter") or [""])[0]):
        out["upper" if op == "less-than" else "lower"] = datetime.fromisoformat(value.replace("Z", "+00:00"))
    return out


def test_next_slice_is_fetched_while_the_current_one_loads(make_sandbox, tmp_path):
    sb = make_sandbox(scale="tiny,events=24000", rate_limits="off", latency_ms=40)
    db = str(tmp_path / "k.duckdb")
    assert ingest(sb, "events", db, "--extract-parallelism", "2", "--checkpoint-rows", "5000") == 0
    assert_equals_truth(db, sb, "events")
    con = duckdb.connect(db, read_only=True)
    loads = con.execute("select l.inserted_at, min(e.datetime) from main._dlt_loads l join main.events e "
                        "on e._dlt_load_id = l.load_id group by l.load_id, l.inserted_at order by 1").fetchall()  # fmt: skip
    con.close()
    assert len(loads) >= 4, "the backfill should be cut into several slices, each its own load"
    requests = [(t, _bounds(q)) for t, name, q in list(sb.state.log) if name == "events"]
    for (committed, _), (_, first_of_next) in zip(loads, loads[1:], strict=False):
        # A request of a later slice: it has a lower bound and its upper bound lies past the next slice's
        # oldest record (every request of this slice or an earlier one ends at or before that record).
        later = [
            t for t, b in requests if "lower" in b and b.get("upper", datetime.max.replace(tzinfo=UTC)) > first_of_next
        ]
        assert later, "the next slice's requests are in the sandbox's log"
        first_request = datetime.fromtimestamp(min(later), UTC)
        assert first_request < committed, (
            f"the next slice was first asked for at {first_request}, after the commit at {committed}"
        )


def test_a_large_backfill_commits_a_small_first_slice_first(make_sandbox, tmp_path):
    sb = make_sandbox(scale="tiny,events=100000", rate_limits="off")
    db = str(tmp_path / "k.duckdb")
    assert ingest(sb, "events", db, "--extract-parallelism", "2") == 0  # the default: slices of 500,000 rows
    assert_equals_truth(db, sb, "events")
    con = duckdb.connect(db, read_only=True)
    sizes = [n for _, n in con.execute("select l.inserted_at, count(*) from main._dlt_loads l join main.events e "
                                       "on e._dlt_load_id = l.load_id group by 1 order by 1").fetchall()]  # fmt: skip
    con.close()
    # about 25 pages (25,000 events) first, then twice as many per slice: not one slice of 100,000
    assert len(sizes) >= 3 and sizes[0] <= 30_000 and sizes[1] > sizes[0], sizes


class _ThreeSlices(TableReader):
    """A generic reader of three one-row slices whose ``fail_at`` slice raises after its row (no HTTP: this is
    the loader's own contract with any source)."""

    def __init__(self, fail_at: int | None) -> None:
        from omniload.sources.base import TableInfo, TableStats, Window
        from omniload.types import TEXT, TS

        self.info = TableInfo("things", ("id",), "at", "merge", {"id": TEXT, "at": TS})
        self.stats = TableStats()
        edges = [datetime(2024, m, 1, tzinfo=UTC) for m in (1, 2, 3, 4)]
        self.windows = [Window(lo, hi) for lo, hi in zip([None, *edges[1:3]], edges[1:], strict=False)]
        self.fail_at, self.started, self.closed = fail_at, [], []

    def restore(self, saved: dict) -> None:
        pass

    def state_update(self) -> dict:
        return {}

    def plan(self, start, end, rows_per_slice):
        self.started.append(start)
        return [w for w in self.windows if start is None or w.hi > start]

    def read(self, window):
        import pyarrow as pa

        from omniload.errors import BadData

        n = self.windows.index(window)
        try:
            yield pa.table({"id": [f"r{n}"], "at": pa.array([window.hi.replace(day=2, month=window.hi.month - 1)],
                                                               pa.timestamp("us", tz="UTC"))})  # fmt: skip
            if n == self.fail_at:
                raise BadData(f"slice {n} failed")
        finally:
            self.closed.append(n)


def _load(db: str, reader, workdir: str) -> None:
    from omniload.destinations import parse_destination
    from omniload.load import LoadSettings, TableLoad, Target

    dest = parse_destination(f"duckdb:///{db}")
    settings = LoadSettings(None, None, None, False, 1)
    with dest.lock():
        dest.preflight()
        try:
            TableLoad(reader, dest, Target("things", "main", "things"), settings, workdir).run()
        finally:
            dest.close()


def test_a_failure_read_ahead_leaves_exactly_the_committed_slices_and_the_rerun_resumes(tmp_path):
    import pytest

    from omniload.errors import BadData

    db = str(tmp_path / "k.duckdb")
    failing = _ThreeSlices(fail_at=1)
    with pytest.raises(BadData, match="slice 1 failed"):
        _load(db, failing, str(tmp_path / "w1"))
    con = duckdb.connect(db, read_only=True)
    assert con.execute("select id from main.things").fetchall() == [("r0",)]  # slice 0 committed, nothing of 1
    con.close()
    rerun = _ThreeSlices(fail_at=None)
    _load(db, rerun, str(tmp_path / "w2"))
    assert rerun.started == [datetime(2024, 1, 2, tzinfo=UTC)]  # from slice 0's committed cursor
    con = duckdb.connect(db, read_only=True)
    assert sorted(con.execute("select id from main.things").fetchall()) == [("r0",), ("r1",), ("r2",)]
    con.close()
    assert sorted(rerun.closed) == [0, 1, 2] and sorted(failing.closed) == [
        0,
        1,
    ]  # every read was closed; none of slice 2


def test_a_sliced_backfill_probes_once_and_every_slice_goes_straight_to_its_windows(make_sandbox, tmp_path):
    sb = make_sandbox(scale="tiny,events=30000", rate_limits="off")
    db = str(tmp_path / "k.duckdb")
    assert ingest(sb, "events", db, "--extract-parallelism", "4", "--checkpoint-rows", "5000") == 0
    assert_equals_truth(db, sb, "events")
    queries = [parse_qs(q) for _, name, q in list(sb.state.log) if name == "events"]
    newest = [q for q in queries if q.get("sort") == ["-datetime"]]
    unbounded = [q for q in queries if "lower" not in _bounds_of(q) and "page[cursor]" not in q]
    # the plan's probe alone (first page and newest record at once): the first slice starts from the plan's first
    # page, the last one's windows end at the plan's newest record, so no other request lacks a lower bound
    assert len(newest) == 1 and len(unbounded) == 2, (len(newest), len(unbounded))


def _bounds_of(query: dict) -> dict:
    return _bounds("filter=" + (query.get("filter") or [""])[0])
