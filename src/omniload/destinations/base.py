"""What a destination is: a dlt destination plus what omniload does around it (preflight, locking, reading
the saved state, fast paths). The generic loader asks the destination; it never runs SQL itself.

The base class is a SQL destination reached through dlt: saved state comes from dlt's own state sync, and
there are no fast paths (every run loads what it fetched). Subclasses override what they do better.

What only some destinations can do is apart from loading, each a capability reached from the destination
(None where it cannot): marking deleted rows (:class:`Deletes`, ``dest.deletes``, reconcile.py), taking over a
table another dlt pipeline made (:class:`Takeover`, ``dest.takeover``, takeover.py) and keeping a source's views
(:class:`Views`, ``dest.views``, views.py). A destination that can is also one, e.g. ``DuckDB(SqlViews,
SqlDeletes, Takeover, Destination)``.
"""

from __future__ import annotations

import contextlib
import importlib.util
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

from ..errors import UsageError
from .locks import DEFAULT_LOCK_WAIT

NO_TABLE = object()  # newest_loaded(): the table does not exist yet


def leftover_staging(query: Callable[[str], Any], schema: str, staging: str) -> bool:
    """Whether the staging schema ``staging`` holds only dlt's tables and empty copies of tables of ``schema``
    (``query``: rows of one SQL query on the destination; names are identifiers checked by the pipeline)."""

    def rows(text: str) -> list:
        out = query(text)
        return out if isinstance(out, list) else []  # a failed query: nothing known, nothing dropped

    names = "select table_name from information_schema.tables where table_schema = '{}'"
    staged, loaded = [r[0] for r in rows(names.format(staging))], {r[0] for r in rows(names.format(schema))}
    if not staged:
        return False
    for table in staged:
        if not table.startswith("_dlt_") and (
            table not in loaded or rows(f'select count(*) from "{staging}"."{table}"') != [(0,)]
        ):
            return False
    return True


def local_path(text: str) -> str:
    """The path part of a file URI, percent-decoded (``my%20dir`` is ``my dir``)."""
    from urllib.parse import unquote

    path = unquote(text)
    if "\0" in path:
        raise UsageError("--dest-uri: the path holds a NUL character (%00)")
    return path


@dataclass
class Destination:
    scheme: str  # as written by the user
    kind: str  # dlt destination name
    display: str  # the URI with secrets redacted
    credentials: Any = None  # what the dlt factory takes
    options: dict[str, Any] = field(default_factory=dict)
    schema: str | None = None  # the destination's own default schema (None: the source names it)
    package: tuple[str, str] | None = None  # (python module the dlt client needs, pip extra)
    file_format: str | None = None  # loader file format; None: dlt's default
    merges_in_place: bool = True  # files cannot: merge becomes append there
    # dlt gzips its load files; where the loader reads them straight back (COPY, DuckDB) or the files are the
    # product (csv/jsonl folders), that is CPU for nothing (PostgreSQL: 45% of a load was GzipFile.write).
    compress_load_files: bool = True
    # the Parquet codec of dlt's load files (extracted Arrow batches): where the loader reads them straight back on
    # this machine (DuckDB), compressing them is CPU for nothing (snappy: 0.98 against 0.64 µs/row to write, and
    # DuckDB reads both as fast); where the files are the product or leave the machine, dlt's default stays
    parquet_codec: str = "snappy"
    supports_scd2: bool = True  # dlt's scd2 merge strategy (SQL destinations)
    partitions: bool = False  # honours dlt's partition column hint (--partition-by)
    stores_nul: bool = True  # text and JSON can hold NUL characters; False: they are removed on the way
    notes: list[str] = field(default_factory=list)  # said before the run (how the URI was read)
    merge_predicates: bool = False  # dlt's SQL merge job merges here: --incremental-predicate applies
    staging_layout: str = "%s_staging"  # dlt's staging schema of a schema (--staging-dataset: one fixed name)

    def staging_schema(self, schema: str) -> str:
        """The schema dlt stages a merge of ``schema``'s tables in."""
        return self.staging_layout % schema if "%s" in self.staging_layout else self.staging_layout

    def default_schema(self, source_default: str) -> str:
        return self.schema or source_default

    def check_target(self, schema: str, table: str) -> None:
        """Refuse (UsageError) a schema or table this destination cannot hold, before anything is fetched."""

    table_format: str | None = None  # dlt's table_format hint (delta, iceberg) where the destination has one

    def write_disposition(self, how: str) -> Any:
        """dlt's write disposition for ``how`` (merge, append, replace, scd2) on this destination."""
        return {"disposition": "merge", "strategy": "scd2"} if how == "scd2" else how

    def column_hints(self, hints: dict[str, dict]) -> dict[str, dict]:
        """dlt column hints as this destination needs them (the default: as they are)."""
        return hints

    def require_packages(self) -> None:
        if self.package and importlib.util.find_spec(self.package[0].split(".")[0]) is None:
            raise UsageError(
                f"--dest-uri: {self.kind} needs extra packages; install them with: pip install 'omniload[{self.package[1]}]'"
            )

    def preflight(self) -> None:
        """Reach the destination once before any work (UsageError when it cannot be used as given,
        DestinationUnreachable when it cannot be opened or reached)."""
        self.require_packages()

    @contextlib.contextmanager
    def lock(self, on_wait: Callable[[str], None] = lambda _: None) -> Iterator[None]:
        """Held for the whole run; destinations that one process at a time may write make a second run wait
        (``lock_wait``, saying so once through ``on_wait``) or refuse it."""
        yield

    lock_wait: float = DEFAULT_LOCK_WAIT  # seconds a run waits for another run's table lock (locks.py)

    @contextlib.contextmanager
    def table_lock(self, schema: str, table: str, on_wait: Callable[[str], None]) -> Iterator[None]:
        """Held for one table's whole load (saved state, staging, commits, reconcile): another run into the same
        table waits up to ``lock_wait`` seconds, then that table fails (``DestinationBusy``); runs into other
        tables go on. The default takes no lock: destinations without a way to lock say so in the README."""
        yield

    @contextlib.contextmanager
    def step_lock(self, schema: str, table: str, on_wait: Callable[[str], None]) -> Iterator[None]:
        """Held by a load of one table that runs without the run-wide ``lock`` (an orchestrator's step, one per
        account, beside others in other processes): ``table_lock``, and whatever else keeps two writers of this
        table apart here; each waited for up to ``lock_wait`` seconds."""
        with self.table_lock(schema, table, on_wait):
            yield

    def dlt_destination(self):
        import dlt

        return getattr(dlt.destinations, self.kind)(credentials=self.credentials, staging_dataset_name_layout=self.staging_layout,
                                                    **self.options)  # fmt: skip

    def saved_state(self, pipeline_name: str, schema: str, pipeline: Callable[[], Any]) -> dict[str, Any]:
        """The newest pipeline state a previous run committed (dlt restores it from the destination)."""
        p = pipeline()
        p.sync_destination()
        return dict(p.state)

    def already_loaded(self, schema: str, table: str, key: tuple[str, ...], cursor: str, rows) -> bool:
        """True when every row of ``rows`` is in the table with the same cursor (nothing new). Unknown: False."""
        return False

    def newest_loaded(self, schema: str, table: str, cursor: str, scope: tuple[tuple[str, str], ...] = ()) -> Any:
        """The table's largest cursor value (among the rows of ``scope``: (column, value) pairs, see
        ``TableInfo.scope``), ``NO_TABLE`` if it does not exist, None when unknown."""
        return None

    def scoped_replace(self) -> tuple[Any, bool]:
        """How a replace confined to a scope (``TableInfo.scope``: one account's rows) is written here: dlt's write
        disposition, and whether the scope's columns are its merge key (delete-insert: the scope's rows go, the
        slice's come). The default: a merge, as SQL destinations delete-insert."""
        return self.write_disposition("merge"), True

    @property
    def deletes(self) -> Deletes | None:
        """What marks the rows of deleted records here (None: nothing can); see :class:`Deletes`."""
        return self if isinstance(self, Deletes) else None

    @property
    def takeover(self) -> Takeover | None:
        """What reads and drops tables another dlt pipeline made here (None: nothing is taken over); :class:`Takeover`."""
        return self if isinstance(self, Takeover) else None

    @property
    def fill(self) -> Fill | None:
        """What fills new derived columns of loaded rows in place (None: the table is read again); :class:`Fill`."""
        return self if isinstance(self, Fill) else None

    @property
    def views(self) -> Views | None:
        """What keeps a source's views here (None: views cannot be kept); see :class:`Views`."""
        return self if isinstance(self, Views) else None

    def advice(self, cause: str) -> str:
        """What the user can do about a failed load whose cause reads ``cause``."""
        if "contract_mode=freeze" in cause:
            return "the rows would change the table's columns, which --schema-contract freeze refuses; use evolve to allow it"
        return "run again with --debug (or OMNILOAD_DEBUG=1) to see the details"

    def saw_batch(self, schema: str, table: str, batch) -> None:
        """Each Arrow batch of the slice being extracted for ``table`` (a destination may size itself for it)."""

    def before_load(self, schema: str, table: str) -> None:
        """Called before each slice of ``table`` is normalized and loaded (with the destination lock held)."""

    def after_load(self, schema: str, table: str) -> None:
        """Called after each committed load of ``table`` (with the destination lock held)."""

    def close(self) -> None:
        """Release what preflight opened."""


class Takeover:
    """Taking over a table another dlt pipeline made (ingestr's), apart from loading: a destination that can (DuckDB,
    PostgreSQL) offers it as its :attr:`Destination.takeover`; takeover.py asks only this. Also dlt's leftovers
    after the run (:meth:`drop_staging`)."""

    def dlt_table(self, schema: str, table: str) -> dict[str, str] | None:
        """The columns (name -> database type) of ``schema.table`` when dlt made it (it has ``_dlt_load_id``);
        None when there is no such table, or the destination cannot tell (then nothing is taken over)."""
        raise NotImplementedError

    def read_table(self, schema: str, table: str, columns: list[str], rows: int) -> Iterator[Any]:
        """The table's ``columns``, about ``rows`` rows at a time, as Arrow tables (JSON values as text)."""
        raise NotImplementedError

    def drop_table(self, schema: str, table: str) -> None:
        """Drop ``schema.table`` and its staging copy (a table being taken over, after its rows were read: the other
        tool's staging copy has its columns too)."""
        raise NotImplementedError

    def drop_staging(self, schema: str) -> None:  # noqa: B027 (optional: DuckDB alone does it)
        """After the run: remove dlt's staging schema of ``schema`` when it holds only what dlt put there (emptied
        staging copies of ``schema``'s tables and dlt's own tables); the user did not ask for it. Only DuckDB does:
        PostgreSQL's table lock creates the staging schema before each load, and dlt's full refresh then expects
        its ``_dlt_version`` there."""


class Fill:
    """Filling new columns of rows already loaded, in place (a source's derived columns, ``TableInfo.derived``),
    apart from loading: a destination that can update rows (DuckDB, PostgreSQL: fill.SqlFill) offers it as its
    :attr:`Destination.fill`; elsewhere the table is read again."""

    def add_columns(self, schema: str, table: str, types: dict[str, str]) -> None:
        """Add the columns of ``types`` (name -> omniload type) that ``schema.table`` lacks."""
        raise NotImplementedError

    def fill_columns(self, schema: str, table: str, key: tuple[str, ...], batches: Iterator[Any]) -> None:
        """Set the columns of ``batches`` (Arrow tables: ``key`` and the columns) in the rows of the same key."""
        raise NotImplementedError


class Views:
    """Keeping a source's views over its loaded tables (views.py), apart from loading: a destination that can (SQL
    with a connection of its own: DuckDB, PostgreSQL, views.SqlViews) offers it as its :attr:`Destination.views`."""

    def table_columns(self, schema: str, table: str) -> dict[str, None]:
        """The columns of ``schema.table``, in the table's order (empty: no such table)."""
        raise NotImplementedError

    def replace_view(self, schema: str, name: str, select: str) -> None:
        """Create or replace view ``schema.name`` as ``select``."""
        raise NotImplementedError


Scope = tuple[tuple[str, str], ...]  # (column, value) pairs: the rows of one source instance (TableInfo.scope)


def scope_label(table: str, scope: Scope) -> str:
    """How a table's reconciles within ``scope`` are named where their times are kept (the table alone: unscoped)."""
    return table + "".join(f" ({c}={v})" for c, v in scope)


class Deletes:
    """Marking the rows of deleted records, apart from loading: a destination that can offers it as its
    :attr:`Destination.deletes` (deletes.py does it in SQL for DuckDB and PostgreSQL, tombstones.py through dlt
    merges and tombstone rows for the others); reconcile.py asks only this.

    ``scope`` ((column, value) pairs, ``TableInfo.scope``: one account's rows of a table several load) confines
    every method to the rows holding those values: rows of other scopes are never counted, marked or unmarked,
    and each scope's reconcile time is its own."""

    hard_refusal = ""  # why --hard-deletes cannot be done here ('': it can)

    def key_stats(self, schema: str, table: str, key: tuple[str, ...], scope: Scope = ()) -> tuple[int, int] | None:
        """(rows not marked deleted, distinct values of the leading key column after the scope's); None: unknown or
        no table."""
        raise NotImplementedError

    def last_reconciled(self, schema: str, table: str, scope: Scope = ()) -> Any:
        """When ``table``'s deletes were last reconciled (None: never)."""
        raise NotImplementedError

    def mark_deleted(self, schema: str, table: str, key: tuple[str, ...], live, hard: bool, at, max_share,
                     scope: Scope = ()):  # fmt: skip
        """Mark the rows whose key is not among ``live`` (an Arrow table of keys) deleted at ``at`` (column
        ``_omniload_deleted_at``), or delete them when ``hard``; one transaction. Returns a ``deletes.Deletion``."""
        raise NotImplementedError

    def mark_matching(self, schema: str, table: str, key: tuple[str, ...], column: str, values, hard: bool, at,
                      scope: Scope = ()):  # fmt: skip
        """Mark (or delete) the rows whose ``column`` is one of ``values``: what the source deleted along."""
        raise NotImplementedError

    def loaded_from(self, schema: str, origin: str) -> list[str]:
        """The tables of ``schema`` whose loads saved the identity ``origin`` (``klaviyo:events``)."""
        raise NotImplementedError

    def marks(self, schema: str, table: str, key: tuple[str, ...], scope: Scope = ()):
        """An Arrow table of the key and ``_omniload_deleted_at`` of the rows marked deleted; None: none known."""
        raise NotImplementedError

    def revived(self, schema: str, table: str, key: tuple[str, ...], prior, scope: Scope = ()):
        """The rows of ``prior`` (key and mark, from :meth:`marks`) whose key is held unmarked now."""
        raise NotImplementedError

    def unmark_matching(self, schema: str, table: str, key: tuple[str, ...], column: str, marks, scope: Scope = ()):
        """Unmark the rows whose (``column``, mark) is a row of ``marks``; their keys and old marks (None: no table)."""
        raise NotImplementedError

    keeps_rereads = False  # the parents whose rows are to be read again are kept (rereads.py); False: not here

    def add_rereads(self, schema: str, table: str, column: str, parents: list[str], scope: Scope = ()) -> None:
        """Keep ``parents`` (values of ``column``, parents that came back): ``table``'s next load reads their rows."""

    def rereads(self, schema: str, table: str, column: str, scope: Scope = ()) -> list[str]:
        """The parents kept by :meth:`add_rereads` for ``table`` and ``column``, not yet read again."""
        return []

    def drop_rereads(self, schema: str, table: str, column: str, parents: list[str], scope: Scope = ()) -> None:
        """Forget ``parents``: their rows were read again and committed."""
