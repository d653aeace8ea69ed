"""Load one table through dlt, in named steps: read the saved state → plan slices → per slice: extract, decide
the disposition, run dlt, commit the cursor (rows and cursor together, in the destination).

Slices overlap: once dlt has extracted slice n (its batches are in dlt's files and its cursor in dlt's state),
the reader starts reading slice n+1 in a thread (:class:`~omniload.prefetch.Prefetch`) while slice n is
normalized, loaded and committed; slice n+1's extraction then takes its batches from that buffer. Fetching is
what a source waits on (HTTP latency, rate limits) and loading is what the destination does, so the two add up
no more. The first slice is read the same way from the moment it is planned, while dlt sets up its pipeline and
syncs it with the destination. Why it stays exact:

- Commits stay in order and alone: only this thread runs dlt; slice n+1 is extracted after slice n committed,
  and its disposition is decided then, against what slice n left in the destination.
- The state committed with slice n is slice n's: dlt's resource state (cursor, the reader's ``state_update``)
  was written when slice n's extraction ended, before slice n+1 was started.
- Memory is bounded: at most one slice ahead, and within it at most ``PREFETCH_BATCHES`` batches; then the
  reader waits (the source's own page queue fills and it stops fetching). Nothing is spilled.
- A failure of slice n's load, a stop (SIGINT/SIGTERM) or a table error cancels the read-ahead; nothing of
  slice n+1 was handed to dlt, so exactly the committed slices remain and a rerun resumes after them, as after
  SIGKILL. A source error in slice n+1 surfaces when slice n+1 is extracted, after slice n committed.
- The read-ahead starts after slice n's extraction ended, so one table never has two reads under way at once
  (a reader's connections and rate limiters serve one read at a time).

A reader may also cut an interval into parts it learns while reading (``TableReader.following``: a child table,
some parents at a time): each part is read ahead, extracted and committed like a slice, but the cursor is saved
with the last part only, since an earlier one does not cover the interval (the reader saves its own progress).

A run that finds nothing new (every fetched row is already in the destination with the same cursor, or a
keyless table's content is unchanged) loads nothing and leaves the destination as it was. Errors raised by
the source while dlt drives the extraction are kept where they happen and re-raised as they are; a failure
inside dlt itself becomes one :class:`DestinationFailed` line.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import pyarrow as pa

from . import reading
from .dates import iso, parse_timestamp
from .destinations import NO_TABLE, Destination
from .destinations.capabilities import resolved_once
from .destinations.state import pipeline_name, resource_state
from .errors import CorruptState, DestinationFailed, OmniloadError, UsageError
from .load_slot import with_load_id_slot
from .prefetch import Prefetch
from .runtime import release_memory
from .sources.base import TableReader, Window
from .transform import Transform, row_hash, without_nul
from .types import JSON, column_hints, from_database, undeclared

PREFETCH_BATCHES = 2  # batches of the next slice read ahead while the current one loads
FILL_ROWS = 10_000  # loaded rows read back at a time to fill new derived columns (as takeover.py: memory)


@dataclass(frozen=True)
class Target:
    source: str  # the source's table name
    schema: str
    table: str
    origin: str = ""  # the source table's identity, "scheme:table": what the destination table was loaded from


@dataclass(frozen=True)
class LoadSettings:
    start: datetime | None  # --interval-start; None: resume from the saved cursor
    end: datetime | None  # --interval-end; None: the source's now
    strategy: str | None  # --incremental-strategy; None: the table's own
    full_refresh: bool
    checkpoint_rows: int
    lookback: timedelta | None = None  # --lookback; None: each table's own
    transform: Transform | None = None  # --columns / --mask
    partition_by: str | None = None  # --partition-by, where the destination partitions
    schema_contract: str | None = None  # --schema-contract: dlt's contract (None: evolve)
    deep_lookback: timedelta | None = None  # --deep-lookback; None: each table's own
    deep_every: timedelta = timedelta(days=1)  # --deep-lookback-every: source time between two deep re-reads


def disposition(strategy: str, merges_in_place: bool, first_slice: bool, newer_than_loaded: bool) -> str:
    """The write disposition of one slice.

    - ``delete+insert`` is a merge on the primary key; where files cannot merge in place, a merge appends.
    - ``replace`` replaces with the first slice; later slices of the same run add to it.
    - A merge whose rows are all newer than anything loaded (immutable records) cannot match a loaded row:
      it appends, which is much cheaper.
    """
    if strategy == "scd2":  # history: every slice merges into the validity ranges
        return "scd2"
    how = "merge" if strategy == "delete+insert" else strategy
    if how == "merge" and not merges_in_place:
        return "append"
    if how == "replace" and not first_slice:
        return "append"
    if how == "merge" and newer_than_loaded:
        return "append"
    return how


def fingerprint(batches: list[pa.Table]) -> str:
    digest = hashlib.sha256()
    for batch in batches:
        sink = pa.BufferOutputStream()
        with pa.ipc.new_stream(sink, batch.schema) as writer:
            writer.write_table(batch)
        digest.update(sink.getvalue().to_pybytes())
    return digest.hexdigest()


def root_cause(exc: BaseException) -> BaseException:
    """The innermost exception behind a dlt failure (dlt wraps the database's own error several times)."""
    seen = {id(exc)}
    while True:
        inner = next((i for i in (getattr(exc, "client_exception", None), getattr(exc, "inner_exc", None),
                                  getattr(exc, "exception", None), exc.__cause__)
                      if isinstance(i, BaseException) and id(i) not in seen), None)  # fmt: skip
        if inner is None:
            return exc
        seen.add(id(inner))
        exc = inner


def describe_failure(table: str, dest: Destination, exc: BaseException) -> str:
    """One line: the table, the cause (the database's own first line) and what to do about it."""
    cause = root_cause(exc)
    text = (str(cause).strip().splitlines() or [""])[0][:300]
    return f"table '{table}': loading into {dest.display} failed: {type(cause).__name__}: {text}; {dest.advice(text)}"


class TableLoad:
    """One table from one reader into one destination table."""

    def __init__(self, reader: TableReader, dest: Destination, target: Target, settings: LoadSettings,
                 workdir: str, dest_lock=None, on_committed=lambda rows: None, on_note=lambda message: None,
                 table_lock=None) -> None:  # fmt: skip
        self.reader, self.dest, self.target, self.settings = reader, dest, target, settings
        self.info = reader.info
        self.workdir = workdir
        self.on_committed = on_committed  # rows of a slice, once its load is committed
        self.on_note = on_note  # something the user should know about this table
        self.new_columns: list[str] = []  # declared now, not when the table was last loaded: read it all again
        self.to_fill: list[str] = []  # new too, but derived from a loaded column: filled in the destination instead
        self._slice_rows = 0
        self._newest: Any = None  # the newest cursor value read by this run's slices so far
        # where a deep lookback would start (its table has one, the run resumes from a saved cursor); and, when this
        # run reads it (or loads the table first), the source's now, committed as ``deep_at`` with the last slice
        self._deep_start: datetime | None = None
        self._deep_at: str | None = None
        self._windows: list[Window] = []
        self.pipeline_name = pipeline_name(target.schema, target.table, self.info.scope)
        self.strategy = settings.strategy or self.info.strategy
        # a strategy the user asked for that is not the table's own always does what it says (no "nothing new")
        self.explicit_strategy = settings.strategy not in (None, self.info.strategy)
        self._pipeline = None
        self._saved: dict[str, Any] | None = None
        self.failure: OmniloadError | None = None  # raised by the source inside dlt's extraction
        self.loading_as_is = False  # rows taken over from another tool's table (takeover.py): no transform
        # saved with every slice's state, committed with its rows (a key set to None is removed): what must survive a
        # kill after the commit, such as the marks of the rows a merge may bring back (reconcile.Reconcile.carried)
        self.carry: dict[str, Any] = {}
        # Tables load side by side (scheduling.run_groups): they extract concurrently, but every read of and
        # write to the destination (saved state, fast paths, dlt's normalize and load) holds this lock.
        self.dest_lock = dest_lock if dest_lock is not None else contextlib.nullcontext()
        # the table's run lock (another run into it waits); several sources of one run share one (several.py)
        self.table_lock = table_lock if table_lock is not None else dest.table_lock

    # -- steps -------------------------------------------------------------------------------------------

    def check_origin(self) -> None:
        """Refuse to load into a table another source table filled (a --dest-table typo would mix or replace it);
        ``--full-refresh`` is the explicit way to reuse a name."""
        origin = self.saved_state().get("origin")
        if origin and self.target.origin and origin != self.target.origin:
            raise UsageError(f"--dest-table: {self.target.schema}.{self.target.table} in {self.dest.display} holds "
                             f"'{origin}', not '{self.target.origin}'; choose another --dest-table, or add "
                             "--full-refresh to replace it")  # fmt: skip

    def check_scope(self) -> None:
        """Refuse to load a scoped table (``TableInfo.scope``: one account's rows) into a table loaded without the
        scope's columns (its rows belong to no scope, its key lacks them), and an unscoped one into a table loaded
        with a scope; ``--full-refresh`` reloads it."""
        if self.settings.full_refresh:
            return
        if not self.info.scope:  # the other way round: a table loaded with a scope (by its pipelines of one scope each)
            deletes = self.dest.deletes
            if self.target.origin and deletes is not None and not self.saved_state():
                with self.dest_lock:  # (only where a table can be taken over: one dlt made, see takeover.py)
                    scoped = self._dlt_columns(self.target.schema, self.target.table) is not None and (
                        self.target.table in deletes.loaded_from(self.target.schema, self.target.origin)
                    )
                if scoped:
                    raise UsageError(f"--dest-table: {self.target.schema}.{self.target.table} in {self.dest.display} was "
                                     "loaded by several sources, each row naming its own (several --source-uri, or the source "
                                     "URI's option for it); load it so again, or add --full-refresh to load it again "
                                     "without")  # fmt: skip
            return
        with self.dest_lock:
            columns = self._dlt_columns(self.target.schema, self.target.table)
        lacking = [c for c, _ in self.info.scope if columns is not None and c not in columns]
        if lacking:
            raise UsageError(f"--dest-table: {self.target.schema}.{self.target.table} in {self.dest.display} was loaded "
                             f"without {', '.join(lacking)}; add --full-refresh to load it again with "
                             f"{'it' if len(lacking) == 1 else 'them'}")  # fmt: skip

    def drop_other_layout(self) -> None:
        """A full refresh into a table of the other layout: a scoped load (``TableInfo.scope``) into a table without
        the scope's columns, or an unscoped one into a table only scoped pipelines loaded. That table is dropped
        (dlt's refresh drops only what its own pipeline made); a scoped table keeps the other scopes' rows."""
        schema, table = self.target.schema, self.target.table
        with self.dest_lock:
            columns = self._dlt_columns(schema, table)
            if columns is None or self.dest.takeover is None:
                return
            if self.info.scope:
                other = any(c not in columns for c, _ in self.info.scope)
            else:
                deletes, origin = self.dest.deletes, self.target.origin
                state = self.dest.saved_state(self.pipeline_name, schema, self.pipeline)
                other = bool(origin and deletes is not None and not resource_state(state, table)
                             and table in deletes.loaded_from(schema, origin))  # fmt: skip
            if other:
                self.dest.takeover.drop_table(schema, table)

    def clear_scope(self) -> None:
        """A table replaced within its scope (one account's rows: a delete-insert on the scope's columns) whose source
        holds no row now: a delete-insert of nothing deletes nothing, so the scope's rows are deleted here (the other
        scopes' stay). Done whenever such a run reads nothing, also before a commit a kill may cut off."""
        if not self.info.scope or not (self.strategy == "replace" or self.settings.full_refresh):
            return
        deletes = self.dest.deletes
        if deletes is None or not self.dest.scoped_replace()[1]:  # (a destination replacing otherwise: its way)
            return
        key, schema, table, scope = self.info.primary_key, self.target.schema, self.target.table, self.info.scope
        none = pa.table({c: pa.array([], pa.string()) for c in key})
        with self.dest_lock:
            held = deletes.key_stats(schema, table, key, scope)
            if held is not None and held[0] > 0:  # (none: nothing to write, not even the time of a deletion)
                deletes.mark_deleted(schema, table, key, none, True, datetime.now(UTC), None, scope)

    def tell_columns(self) -> None:
        """Tell the reader the destination table's columns and types (``TableReader.loaded_columns``), unless this
        load drops the table first (a full refresh of a table no other scope shares)."""
        if self.settings.full_refresh and not self.info.scope:
            return
        with self.dest_lock:
            columns = self._dlt_columns(self.target.schema, self.target.table) or {}
        types = {c: t for c, name in columns.items() if (t := from_database(name)) is not None}
        if types:
            self.reader.loaded_columns(types)

    def _dlt_columns(self, schema: str, table: str) -> dict[str, str] | None:
        """The columns of ``schema.table`` when dlt made it, where the destination can tell (``dest.takeover``)."""
        return self.dest.takeover.dlt_table(schema, table) if self.dest.takeover is not None else None

    def run(self) -> None:
        saved = self.saved_state()
        if not saved and not self.settings.full_refresh:
            from .takeover import take_over

            if take_over(self):  # another dlt pipeline's table: its rows, then on from its newest cursor
                saved = self.saved_state()
        if self.settings.full_refresh:
            self.drop_other_layout()
        self.check_columns(saved)  # before start_from: new columns make a first load
        if self.to_fill:
            self.fill_columns()
        start = self.start_from(saved)
        self.tell_columns()
        if self.strategy == "replace":
            self.reader.replacing()
        windows = reading.plan(self.reader, saved, start, self.settings.end, self.settings.checkpoint_rows)
        first = start is None and not saved.get("last_value") and self.deep_lookback() > timedelta(0)
        if windows and (self._deep_start is not None or first):
            now = windows[-1].hi  # the source's now: a deep re-read is due once per deep_every of it
            done = saved.get("deep_at")
            if self._deep_start is None or not done or now - parse_timestamp(done) >= self.settings.deep_every:
                self._deep_at = iso(now)
                if self._deep_start is not None:
                    windows = self.reader.plan(self._deep_start, self.settings.end, self.settings.checkpoint_rows)
        self._windows = windows
        ahead: list[Prefetch] = []  # the slices read ahead (the last one: the next slice's)

        def read_ahead(window: Window) -> None:
            ahead.append(Prefetch(lambda: self.reader.read(window), PREFETCH_BATCHES, f"prefetch-{self.info.name}"))

        def next_slice(n: int) -> None:  # slice n was extracted: the next one (planned, or a part) is read ahead
            if n + 1 == len(windows):
                part = self.reader.following(windows[n])
                if part is not None:
                    windows.append(part)
            if n + 1 < len(windows):
                read_ahead(windows[n + 1])

        try:
            if windows:  # the first slice is read while dlt sets up (its pipeline, the destination's state)
                read_ahead(windows[0])
            n = 0
            while n < len(windows):
                window = windows[n]
                batches = iter(ahead[-1])
                head: list[pa.Table] = []
                fp = None
                if (len(windows) == 1 and not self.settings.full_refresh and not self.explicit_strategy and not self.new_columns
                        and not self.reader.state_update() and not self._deep_at and not self.to_fill):  # fmt: skip
                    head, nothing_new, fp = self.peek(batches, saved)
                    if not head:  # the source holds no row: before the (empty) slice commits, as after it below
                        self.clear_scope()
                    if nothing_new and self.reader.following(window) is None:  # nothing to load or commit
                        return
                refresh = "drop_resources" if self.settings.full_refresh and n == 0 else None
                strategy = self.strategy
                if refresh and self.info.scope:  # the scope's rows are replaced, the other scopes' stay
                    refresh, strategy = None, "replace"
                how = disposition(strategy, self.dest.merges_in_place, n == 0, self.newer_than_loaded(window, refresh))
                self.run_dlt(window, head, batches, fp, how, refresh, lambda n=n: next_slice(n))
                if n == 0 and self._slice_rows == 0:  # before a later slice or part adds to it
                    self.clear_scope()
                n += 1
        finally:
            for prefetch in ahead:  # a failure or a stop: nothing read ahead is loaded
                prefetch.cancel()

    def reread(self) -> None:
        """After the load: read again the rows of the parents a reconcile found back (``Deletes.add_rereads``), by
        each column of ``reread_by``, whatever their cursor, merge them in one more slice that never moves the saved
        cursor, then forget those parents (a kill before: the next load reads them again). A full refresh just read
        every row: it only forgets them (else the next load would read them again for nothing)."""
        deletes = self.dest.deletes
        if deletes is None or not deletes.keeps_rereads:
            return
        for column in self.info.reread_by:
            if self.settings.full_refresh:
                scope, schema, table = self.info.scope, self.target.schema, self.target.table
                with self.dest_lock:
                    deletes.drop_rereads(schema, table, column, deletes.rereads(schema, table, column, scope), scope)
                continue
            self._reread(deletes, column)

    def _reread(self, deletes, column: str) -> None:
        scope, schema, table = self.info.scope, self.target.schema, self.target.table
        with self.dest_lock:
            parents = deletes.rereads(schema, table, column, scope)
        if not parents:
            return
        self.forget_saved_state()
        cursor = self.saved_state().get("last_value")
        if cursor is None:  # never loaded: the next load reads everything anyway
            return
        self.on_note(f"reading again the records of {len(parents):,} parents that came back ({column}): the source "
                     "hid them while they were deleted")  # fmt: skip
        end = self._windows[-1].hi if self._windows else parse_timestamp(cursor)
        how = disposition(self.strategy, self.dest.merges_in_place, False, False)
        self.run_dlt(
            Window(None, parse_timestamp(cursor)), [], self.reader.reread(column, parents, end), None, how, None
        )
        with self.dest_lock:
            deletes.drop_rereads(schema, table, column, parents, scope)

    @contextlib.contextmanager
    def locked(self, on_wait) -> Iterator[None]:
        """The destination's lock on this table, held for its whole load; the saved state is read again under it
        (a run that held the table before may have committed more while this one waited)."""
        with self.table_lock(self.target.schema, self.target.table, on_wait):
            self._saved = None
            yield

    def saved_state(self) -> dict[str, Any]:
        """What a previous run committed for this table (cursor, fingerprint, origin); nothing on a full refresh.
        Read once per run."""
        if self.settings.full_refresh:
            return {}
        return self.committed_state()

    def committed_state(self) -> dict[str, Any]:
        """What a previous run committed for this table, on a full refresh too (before its load drops it): what a
        killed run left to make good (reconcile.REVIVE) still counts."""
        if self._saved is None:
            with self.dest_lock:
                state = self.dest.saved_state(self.pipeline_name, self.target.schema, self.pipeline)
            self._saved = resource_state(state, self.target.table)
        return self._saved

    def forget_saved_state(self) -> None:
        """Read the saved state again on the next :meth:`saved_state` (a load committed one)."""
        self._saved = None

    def check_columns(self, saved: dict[str, Any]) -> None:
        """Compare the table's declared columns with those its last load saved (a source option may add some, such
        as an opt-in field): new columns make this run a first load of the table, so that every row gets them;
        columns no longer declared stay in the table, empty in rows loaded from now on. Both are said."""
        before = saved.get("columns")
        if before is None:  # nothing loaded yet, or loaded before the columns were saved: nothing to compare
            return
        self.new_columns = sorted(set(self.info.columns) - set(before))
        gone = sorted(set(before) - set(self.info.columns))
        derived = {c: self.info.derived.get(c) for c in self.new_columns}
        # filled in place unless the run rewrites everything anyway or changes columns on the way (--columns, --mask)
        fill = (
            self.dest.fill is not None
            and self.dest.takeover is not None
            and self.strategy != "replace"
            and not self.settings.transform
        )
        if self.new_columns and fill and all(s in before for s in derived.values()):
            self.to_fill, self.new_columns = self.new_columns, []
            self.on_note(f"table '{self.info.name}': columns new since the table's last load ({', '.join(self.to_fill)}): "
                         f"filled in the loaded rows from {', '.join(sorted(set(derived.values())))}, not read again")  # fmt: skip
        if self.new_columns:
            since = "from --interval-start" if self.settings.start else "every record"
            self.on_note(f"table '{self.info.name}': columns new since the table's last load ({', '.join(self.new_columns)}): "
                         f"reading {since} again to fill them, as a first load")  # fmt: skip
        if gone:
            self.on_note(f"table '{self.info.name}': columns no longer read ({', '.join(gone)}): they stay in the table, "
                         "empty in rows loaded from now on")  # fmt: skip

    def fill_columns(self) -> None:
        """Fill the new derived columns (``to_fill``) of the loaded rows from the stored columns they come from, the
        reader computing them as a read would: the destination adds them, then sets them batch by batch (fill.py).
        The load that follows saves the table's columns with its cursor (it always commits)."""
        key, schema, table = self.info.primary_key, self.target.schema, self.target.table
        stored = sorted({self.info.derived[c] for c in self.to_fill})
        with self.dest_lock:
            fill, takeover = self.dest.fill, self.dest.takeover  # both there: ``fill`` above
            fill.add_columns(schema, table, {c: self.info.columns[c] for c in self.to_fill})
            rows = takeover.read_table(schema, table, [*key, *stored], FILL_ROWS)
            fill.fill_columns(schema, table, key, (self.reader.derive(r).select([*key, *self.to_fill]) for r in rows))

    def start_from(self, saved: dict[str, Any]) -> datetime | None:
        """Where reading starts: the saved cursor without ``--interval-start``; with it, the saved cursor too when
        a run with the same start committed it (a rerun after a kill resumes); a strategy that replaces never
        resumes (the interval's start, or the beginning without one). A table with new columns starts at
        ``--interval-start`` (a first load)."""
        start = self.settings.start
        if not self.info.cursor or self.new_columns:
            return start
        last = self.saved_cursor(saved)
        first = saved.get("interval_start")
        if start is None and self.strategy == "replace":  # the whole table again: resuming would replace it with
            self._deep_start = None  # the rows since the cursor alone (or since a deep re-read's start)
            return None
        if start is None:
            if last is not None:
                self.reader.resuming(parse_timestamp(first) if first else None)
            return last
        end = self.settings.end  # None: now, which every saved cursor is before
        resumes = (first == iso(start) and last is not None and start < last
                   and (end is None or last < end) and self.strategy != "replace")  # fmt: skip
        if not resumes:
            self._deep_start = None  # read from --interval-start, not from a lookback
        else:
            self.reader.resuming(start)
        return last if resumes else start

    def saved_cursor(self, saved: dict[str, Any]) -> datetime | None:
        lookback = self.settings.lookback if self.settings.lookback is not None else self.info.lookback
        try:
            last = saved.get("last_value")
            if last and self.deep_lookback() > lookback:  # run() decides whether it is due
                # from before the last deep re-read's time, not only the cursor's: an event that arrived since then
                # at most deep_lookback late is read, however far the cursor moved meanwhile
                done = saved.get("deep_at")
                since = min(parse_timestamp(last), parse_timestamp(done)) if done else parse_timestamp(last)
                self._deep_start = since - self.deep_lookback()
            return reading.resume_point(saved, lookback)
        except ValueError:
            raise CorruptState(f"table '{self.info.name}': the saved cursor {saved.get('last_value')!r} in {self.dest.display} cannot be read; "
                               "run again with --full-refresh to reset the table and its cursor") from None  # fmt: skip

    def deep_lookback(self) -> timedelta:
        """What a deep re-read covers before the saved cursor (--deep-lookback, else the table's own)."""
        return self.settings.deep_lookback if self.settings.deep_lookback is not None else self.info.deep_lookback

    def peek(self, batches: Iterator[pa.Table], saved: dict[str, Any]) -> tuple[list[pa.Table], bool, str | None]:
        """A small result may be nothing new, and then there is nothing to load or commit.
        Returns the batches read so far, whether nothing is new, and a keyless table's fingerprint."""
        head = [b for b in (next(batches, None), next(batches, None)) if b is not None]
        if len(head) >= 2:
            return head, False, None
        if self.info.cursor:
            rows = pa.concat_tables(head) if head else pa.table({})
            with self.dest_lock:
                loaded = self.dest.already_loaded(self.target.schema, self.target.table, self.info.primary_key,
                                                  self.info.cursor, rows)  # fmt: skip
            return head, loaded, None
        fp = fingerprint(head)
        return head, fp == saved.get("fingerprint"), fp

    def newer_than_loaded(self, window: Window, refresh: str | None) -> bool:
        """Immutable records of this slice are all newer than anything loaded (or nothing is loaded yet)."""
        if not (self.info.immutable and self.info.cursor) or refresh:
            return False
        with self.dest_lock:
            newest = self.dest.newest_loaded(self.target.schema, self.target.table, self.info.cursor, self.info.scope)
        return newest is NO_TABLE or (window.lo is not None and newest is not None and newest < window.lo)

    def run_dlt(self, window: Window, head: list[pa.Table], rest: Iterator[pa.Table], fp: str | None, how: str,
                refresh: str | None, extracted=lambda: None) -> None:  # fmt: skip
        """Extract, then (``extracted()``: the next slice starts reading) normalize, load and commit."""
        resource = self.resource(window, head, rest, fp, how)
        self._slice_rows = 0
        try:
            pipeline = self.pipeline()
            with self.dest_lock:  # what pipeline.run does, with only the extraction outside the lock
                pipeline.sync_destination()
            pipeline.extract(resource(), refresh=refresh, loader_file_format=self.dest.file_format)
            extracted()
            with self.dest_lock:
                self.dest.before_load(self.target.schema, self.target.table)
                pipeline.normalize()
                pipeline.load()
                if how == "merge":
                    self.dest.after_load(self.target.schema, self.target.table)
        except Exception as exc:  # noqa: BLE001 - the source's own error, or one line for dlt's
            if self.failure is not None:
                raise self.failure from None
            raise DestinationFailed(describe_failure(self.info.name, self.dest, exc)) from exc
        self.on_committed(self._slice_rows)  # committed: what happens now is no failure of this load
        release_memory()

    # -- helpers -----------------------------------------------------------------------------------------

    def pipeline(self):
        if self._pipeline is None:
            import dlt

            os.environ["NORMALIZE__DATA_WRITER__DISABLE_COMPRESSION"] = (
                "false" if self.dest.compress_load_files else "true"
            )
            os.environ["DATA_WRITER__COMPRESSION"] = self.dest.parquet_codec  # extract's Parquet writer

            self._pipeline = dlt.pipeline(pipeline_name=self.pipeline_name, destination=resolved_once(self.dest.dlt_destination()),
                                          dataset_name=self.target.schema, pipelines_dir=self.workdir, progress=None)  # fmt: skip
        return self._pipeline

    def resource(self, window: Window, head: list[pa.Table], rest: Iterator[pa.Table], fp: str | None, how: str):
        import dlt

        info, load = self.info, self
        transform = (None if self.loading_as_is else self.settings.transform) or Transform()
        types = transform.types(info)
        hints = self.dest.column_hints(column_hints(types, info.primary_key, info.cursor, info.strategy == "merge"))
        nul = None if self.dest.stores_nul else {c for c, t in types.items() if t == JSON}  # JSON text: its escapes too
        if self.settings.partition_by:
            hints[self.settings.partition_by]["partition"] = True
        write = self.dest.write_disposition(how)
        by_scope = False
        if how == "replace" and info.scope:  # replace the scope's rows only (one account's), not the whole table
            write, by_scope = self.dest.scoped_replace()
        for column, _ in info.scope:  # dlt keeps a hint in its schema: a later merge must not delete by scope
            hints[column]["merge_key"] = by_scope
        primary_key: list[str] = list(info.primary_key)
        if how == "scd2":  # a record's versions are told apart by a hash of the row; only loaded keys retire
            for key in info.primary_key:
                hints[key]["merge_key"] = True
            primary_key = []

        extra = {"table_format": self.dest.table_format} if self.dest.table_format else {}
        if (
            self.settings.schema_contract
        ):  # ingestr's contract is on an existing table's columns: a new table is no change
            mode = self.settings.schema_contract
            extra["schema_contract"] = {"tables": "evolve", "columns": mode, "data_type": mode}

        @dlt.resource(name=self.target.table, write_disposition=write, primary_key=primary_key, columns=hints, **extra)
        def resource():
            state = dlt.current.resource_state()
            if how == "replace" and write != "replace":  # one scope's rows replaced (a delete-insert on its columns):
                # dlt resets a replaced resource's state, but not under the merge this is written as, so it is reset
                # here alike: else, when this interval ends before the saved cursor, the old cursor stays and the next
                # run resumes after it, never reading again the scope's rows in between (they were replaced away)
                state.clear()
            # a first load (a full refresh, new columns) moves the cursor from its own slices on, even backwards
            previous = None if load.settings.full_refresh or load.new_columns else state.get("last_value")
            newest = None
            try:
                for batches in (head, rest):
                    for batch in batches:
                        newest = reading.newest(batch, info.cursor, newest)
                        if transform:
                            batch = transform.apply(batch)
                        if nul is not None:
                            batch = without_nul(batch, nul)
                        load._slice_rows += batch.num_rows
                        load.dest.saw_batch(load.target.schema, load.target.table, batch)
                        if how != "scd2" and load.dest.file_format == "parquet":
                            batch = with_load_id_slot(batch, load.pipeline(), load.target.table)
                        added = undeclared(batch.schema, hints)  # columns the source added on the fly: their types
                        if added:
                            hints.update(self.dest.column_hints(column_hints(added, (), None, False)))
                            batch = dlt.mark.with_hints(batch, dlt.mark.make_hints(columns=hints))
                        yield row_hash(batch) if how == "scd2" else batch
            except OmniloadError as exc:
                load.failure = exc
                raise
            if newest is not None:  # the newest value loaded, never past this slice's end
                newest = min(newest, window.hi)
                load._newest = newest if load._newest is None else max(load._newest, newest)
            newest = load._newest if load.reader.following(window) is None else None  # a part before the last: not yet
            if reading.advance(state, newest, window, previous):
                # the --interval-start this cursor belongs to: a rerun with the same start resumes from it
                state["interval_start"] = (
                    iso(load.settings.start) if load.settings.start else state.get("interval_start")
                )
            state.update(load.reader.state_update())
            for k, v in load.carry.items():
                if v is None:
                    state.pop(k, None)
                else:
                    state[k] = v
            last_slice = bool(load._windows) and window is load._windows[-1] and load.reader.following(window) is None
            if load._deep_at and last_slice:
                state["deep_at"] = load._deep_at
            if fp:
                state["fingerprint"] = fp
            if load.target.origin:
                state["origin"] = load.target.origin
            state["columns"] = sorted(info.columns)  # what the next run compares its columns with (check_columns)

        return resource
