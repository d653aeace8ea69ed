"""What a source is: the interface the generic engine (CLI, pipeline, loader) talks to.

A source is found by its URI scheme in :mod:`omniload.sources.registry`. It names its tables (key, cursor,
strategy, columns), checks it can be reached before anything is written, and opens a :class:`TableReader`
per table. The reader plans checkpoint slices of a cursor interval and reads one slice as Arrow batches; it
counts its own requests (a typed :class:`TableStats`) and reports progress through :class:`ReadEvents`.
The loader owns everything after the batches: dispositions, dlt, the saved cursor.

Deletes: a reader may also list every key the source holds now (:meth:`TableReader.current_keys`) and say what
that costs (:meth:`TableReader.scan_cost`); :mod:`omniload.reconcile` marks the destination rows whose key is gone,
and the rows of the table's ``dependents`` (what the source deletes along with a record) too, found in the
destination by the identity their loads saved (:func:`identity`), never by name.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, ClassVar

if TYPE_CHECKING:
    import pyarrow as pa


@dataclass(frozen=True)
class TableInfo:
    """What the loader needs to know about one table of a source."""

    name: str
    primary_key: tuple[str, ...]
    cursor: str | None  # the incremental column; None: a keyless table, loaded whole each run
    strategy: str  # the default write disposition: merge, replace or append
    columns: dict[str, str]  # column -> type name (omniload.types)
    immutable: bool = False  # records never change once created: rows newer than everything loaded can be appended
    lookback: timedelta = timedelta(0)  # each run re-reads this much before the saved cursor (late records)
    # at most once per ``--deep-lookback-every`` of source time a run re-reads this much instead (records later
    # still: Klaviyo shows some events days late); zero: never
    deep_lookback: timedelta = timedelta(0)
    group: str = ""  # tables of one group share a rate limit: they load one after another ("": its own)
    in_all: bool = True  # loaded by ``--source-table all``; False: only when named (costly tables, such as reports)
    # (table, column): rows of source table ``table`` whose ``column`` holds the key of a deleted row of this one
    # are gone too (and come back with it); wherever omniload loaded ``table`` (its identity), under any name
    dependents: tuple[tuple[str, str], ...] = ()
    # how long the table is expected to take relative to the others (any unit): when tables load side by side
    # the heaviest groups start first, so a whole account takes about as long as its slowest table (the run reads it
    # from the table's reader: a source gives its readers the info its tables() offers)
    weight: float = 0.0
    # column -> the stored column it is computed from (TableReader.derive): such a column new since the table's last
    # load is filled from the rows already in the destination where it can (Destination.fill), not re-read
    derived: dict[str, str] = field(default_factory=dict)
    # (column, value) pairs every row of this table's reader holds, leading its primary key: the share of the
    # destination table this reader owns (another of the source's instances, such as another account, owns
    # others). A replace, a reconcile and the newest loaded cursor stay within it; () : the whole table
    scope: tuple[tuple[str, str], ...] = ()
    # the parent columns the reader can read this table by (TableReader.reread): when a parent that was deleted
    # comes back, its rows here are read again whatever their cursor (those the source hid meanwhile); (): never.
    # Such a table has no ``dependents``: nothing brings back a re-read row's dependents (reconcile.py)
    reread_by: tuple[str, ...] = ()

    @property
    def record_key(self) -> tuple[str, ...]:
        """The primary key within the scope: the columns that tell one record from another there."""
        scoped = {c for c, _ in self.scope}
        return tuple(c for c in self.primary_key if c not in scoped)

    @property
    def dest_name(self) -> str:
        """The destination table's default name (identifiers cannot hold '-')."""
        return self.name.replace("-", "_")


def identity(scheme: str, table: str) -> str:
    """What a destination table was loaded from, saved with its loads: the source's scheme and table name."""
    return f"{scheme}:{table}"


@dataclass
class TableStats:
    """What reading one table cost; the summary shows it."""

    requests: int = 0
    retries: int = 0
    throttled: int = 0
    unplaced: int = 0  # records stamped outside the interval that no slice could load
    no_cursor: int = 0  # records read without a cursor value: loaded, but they cannot move the saved cursor

    def add(self, other: TableStats) -> None:
        self.requests += other.requests
        self.retries += other.retries
        self.throttled += other.throttled
        self.unplaced += other.unplaced
        self.no_cursor += other.no_cursor


@dataclass(frozen=True)
class ScanCost:
    """What listing every current key of a table costs, estimated before the scan."""

    requests: int
    seconds: float  # at the source's real (steady) rate limits


class ReadEvents:
    """Progress callbacks of a read; the default does nothing."""

    def pages(self, pages: int, rows: int) -> None:
        """``pages`` more pages holding ``rows`` rows were read."""

    def fraction(self, share: float) -> None:
        """The share (0..1) of the table's interval covered so far."""

    def note(self, message: str) -> None:
        """Something the user should know (a capped interval, a deprecated API revision)."""

    def waiting(self, attempt: int, reason: str) -> None:
        """A request is being retried (``attempt`` so far) because of ``reason``: the user sees it is alive."""


@dataclass(frozen=True)
class Window:
    """One checkpoint slice: records with ``lo <= cursor < hi`` (``lo`` None: from the beginning)."""

    lo: datetime | None
    hi: datetime
    rows: float = field(default=0.0, compare=False)  # the plan's estimate of its records (0: none); weighs progress
    part: int = 0  # the interval's part (see TableReader.following): parts of one interval share lo and hi


CHECKPOINT_ROWS = (
    500_000  # records per planned slice, by default (--checkpoint-rows): a crash loses at most this much work
)


@dataclass
class ReadOptions:
    """How a reader reads; its defaults are the CLI's and the plain-dlt source's."""

    parallelism: int = 8
    batch_rows: int = 50_000
    max_retry_after: float = 300.0


class CannotAdopt(Exception):
    """A table another tool made cannot be converted row by row (the reason is the message)."""


class TableReader(ABC):
    """Reads one table: plan the slices of an interval, then read them one by one."""

    info: TableInfo
    stats: TableStats

    @abstractmethod
    def plan(self, start: datetime | None, end: datetime | None, rows_per_slice: int) -> list[Window]:
        """Cut ``[start, end)`` into slices of about ``rows_per_slice`` records (one slice when it cannot);
        ``end`` None: the source's now."""

    @abstractmethod
    def read(self, window: Window) -> Iterator[pa.Table]:
        """Arrow batches of the records in ``window`` (every record, for tables without a cursor), each in the
        table's declared schema."""

    def restore(self, saved: dict) -> None:  # noqa: B027 (optional: most readers keep no state of their own)
        """The table's state as the last run committed it, before :meth:`plan` (for readers that keep their own)."""

    def loaded_columns(self, types: dict[str, str]) -> None:  # noqa: B027 (optional, as restore)
        """Before :meth:`restore`: the columns the destination table has now and their types (those the destination
        can tell), which other loads of it may have added (another account's, in its own state): a reader adding
        columns on the fly keeps to their types."""

    def replacing(self) -> None:  # noqa: B027 (optional, as restore)
        """Before :meth:`restore`: this run's first slice replaces the table's rows (its scope's), so what the reader
        saved about the rows loaded before no longer holds. Not called: those rows stay."""

    def resuming(self, first: datetime | None) -> None:  # noqa: B027 (optional, as restore)
        """Before :meth:`plan`: this run goes on from the saved cursor (``plan``'s start is derived from it), and
        ``first`` is where the table's interval began (None: the beginning): where a part of the table that no saved
        cursor covers yet starts (a reader keeping cursors of its own, such as Klaviyo's per chosen metric). Not
        called: the run reads everything from ``plan``'s start (a first load, another --interval-start)."""

    def following(self, window: Window) -> Window | None:
        """Once ``window`` was read: the next part of its interval, when the reader commits an interval in parts it
        learns while reading (a child table: some parents at a time); None: nothing follows. Each part is
        committed on its own, but the cursor only with the last (an earlier part does not cover the interval)."""
        return None

    def state_update(self) -> dict:
        """Keys the reader wants saved with each slice's rows (its own progress); {}: none. A reader with state
        of its own always commits its slices, even those that bring nothing new."""
        return {}

    def derive(self, rows: pa.Table) -> pa.Table:
        """``rows`` (the key and the stored columns of ``info.derived``, as a destination holds them: JSON as text)
        with the derived columns computed, as a read computes them."""
        raise NotImplementedError(f"table '{self.info.name}' derives no columns")

    def adopt(self, rows: pa.Table) -> pa.Table:
        """Rows another dlt pipeline loaded into this table (its own column layout, such as ingestr's) in the table's
        declared columns; raises :class:`CannotAdopt` (saying why) when they lack what a column needs."""
        raise CannotAdopt("its source does not know the layout of tables other tools made")

    def reread(self, column: str, parents: list[str], end: datetime) -> Iterator[pa.Table]:
        """Every record up to ``end`` whose ``column`` (one of ``info.reread_by``) is one of ``parents``, whatever
        its cursor: the records of parents that came back (a restored profile's events). Only for ``reread_by``."""
        raise NotImplementedError(f"table '{self.info.name}' cannot be read by parent")

    def scan_cost(self, rows: int, groups: int) -> ScanCost | None:
        """What :meth:`current_keys` costs for a destination table of ``rows`` rows whose leading key column holds
        ``groups`` distinct values; None: the table's deletes cannot (or need not) be reconciled by a scan."""
        return None

    def current_keys(self) -> pa.Table:
        """Every key the source holds now (the primary key columns, no duplicates needed), read whole: a scan that
        cannot finish raises, so that nothing is marked deleted from part of it."""
        raise NotImplementedError(f"table '{self.info.name}' cannot list its keys")


@dataclass(frozen=True)
class View:
    """A view a source keeps over its loaded tables (a layout another tool reads, such as Fivetran's): ``name``
    in the tables' schema, over source ``tables``; ``select(rel, cols)`` is its portable SELECT, given each source
    table's quoted relation and the columns it holds now, in its order (so a column added by a later load is picked
    up, last)."""

    name: str
    tables: tuple[str, ...]  # needed: without one of them the view is not created (a note says so)
    select: Callable[[Callable[[str], str], dict[str, dict[str, None]]], str]
    optional: tuple[str, ...] = ()  # read when loaded (in ``cols`` only then)


class Source(ABC):
    """A data source named by a URI."""

    schemes: ClassVar[tuple[str, ...]]
    default_schema: ClassVar[str]  # where its tables land when the destination has no schema of its own
    notes: list[str] = []  # said before the run: what from_uri noticed (an instance sets its own list)

    @classmethod
    @abstractmethod
    def from_uri(cls, uri: str) -> Source:
        """Parse a source URI; bad input raises :class:`omniload.errors.UsageError`."""

    @abstractmethod
    def tables(self) -> dict[str, TableInfo]:
        """Every table this source offers, by name, in the order ``all`` loads them."""

    @abstractmethod
    def preflight(self, tables: list[str] | None = None) -> None:
        """Fail fast (a UsageError), before anything is written, when the source cannot be reached at all or
        refuses the credentials for ``tables`` (the tables the run loads)."""

    @abstractmethod
    def reader(self, table: str, options: ReadOptions, events: ReadEvents) -> TableReader:
        """A reader for one table."""

    def views(self) -> list[View]:
        """The views to create or refresh over the loaded tables after each run (none unless asked for)."""
        return []

    def share_tables(self, shared: dict) -> None:
        """This instance loads the same tables as other instances of the source in one run (several ``--source-uri``,
        such as several accounts): from now on its readers' rows must carry what tells the instances apart, as a
        scope (``TableInfo.scope``); ``shared`` is one dict for all of them, where their readers keep what they must
        agree on (such as the types of columns they add on the fly). A source that cannot raises
        :class:`omniload.errors.UsageError`."""
        from ..errors import UsageError

        raise UsageError(f"--source-uri: {self.schemes[0]}:// cannot load several sources into the same tables")

    def label(self) -> str:
        """How this instance is named beside its tables in progress and errors when several run ('': unknown)."""
        return ""
