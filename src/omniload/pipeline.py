"""Join a source and a destination: check the options, resolve the tables and their names, then load each.

Sources come from the registry by URI scheme and destinations from their URI; this module knows neither
Klaviyo nor any one destination. One dlt pipeline per destination table, working in a throw-away folder, so
that everything that must survive a run (data, schema, incremental cursor) lives in the destination itself.
A table that fails is reported and the others still load; bad input is refused before anything is written.
After a table loads, its deletes are reconciled (:mod:`.reconcile`) when that is cheap or asked for.
"""

from __future__ import annotations

import contextlib
import os
import re
import shutil
import sys
import tempfile
import threading
import traceback
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from .dates import iso
from .destinations import Destination, parse_destination
from .errors import OmniloadError, UsageError
from .load import LoadSettings, TableLoad, Target
from .progress import Progress
from .reconcile import Reconcile, ReconcileSettings, check_destination, parse_tables
from .reconcile import check as check_reconcile
from .runtime import WORKDIR, debugging, kill_point, work_prefix
from .scheduling import heaviest_first, run_groups
from .several import SharedTableLocks, labels, preflight_each, share
from .signals import check as check_interrupted
from .sources.base import CHECKPOINT_ROWS, ReadEvents, ReadOptions, Source, TableInfo, identity
from .sources.registry import open_source
from .transform import Transform
from .uri import redact
from .views import refresh_views

IDENT = re.compile(r"^[A-Za-z_][A-Za-z0-9_]{0,62}$")
STRATEGIES = ("merge", "replace", "append", "delete+insert", "scd2")


@dataclass
class IngestOptions:
    source_uri: str  # the first of source_uris
    source_table: str
    dest_uri: str
    dest_table: str | None = None
    interval_start: datetime | None = None
    interval_end: datetime | None = None
    extract_parallelism: int = ReadOptions.parallelism
    incremental_strategy: str | None = None
    incremental_key: str | None = None
    primary_key: str | None = None
    full_refresh: bool = False
    progress: str | None = None
    max_retry_after: float = ReadOptions.max_retry_after
    batch_rows: int = ReadOptions.batch_rows
    checkpoint_rows: int = CHECKPOINT_ROWS
    table_parallelism: int = 4  # tables of different rate-limit groups loaded at once
    lookback: timedelta | None = None  # re-read this much before each saved cursor; None: each table's default
    deep_lookback: timedelta | None = None  # at most once per deep_every, re-read this much instead; None: the table's
    deep_every: timedelta = timedelta(days=1)
    columns: list[str] = field(default_factory=list)  # --columns name:type overrides
    masks: list[str] = field(default_factory=list)  # --mask column:algorithm[:param]
    partition_by: str | None = None  # --partition-by: where the destination partitions
    notes: list[str] = field(default_factory=list)  # said before the run (ingestr flags that mean nothing here)
    reconcile: str | None = None  # tables whose deletes are reconciled whatever the cost, 'all' or 'none'
    reconcile_every: timedelta | None = None  # reconcile the large tables when this much passed since the last
    hard_deletes: bool = False  # delete the rows of deleted records instead of marking them
    allow_mass_delete: bool = False  # mark even when a scan finds under half of a table's keys
    trim_whitespace: bool = False  # --trim-whitespace: trim every text value
    schema_contract: str | None = None  # --schema-contract: dlt's contract for existing tables (None: evolve)
    staging_dataset: str | None = None  # --staging-dataset: the schema of dlt's staging tables
    incremental_predicate: str | None = None  # --incremental-predicate: SQL added to a merge's match
    source_uris: list[str] = field(default_factory=list)  # --source-uri given several times: each its own source
    source_parallelism: int = 4  # sources (accounts) loaded at once, each with table_parallelism groups


@dataclass
class IngestResult:
    failed: list[str] = field(default_factory=list)
    progress: Progress | None = None

    @property
    def exit_code(self) -> int:
        return 1 if self.failed else 0


def resolve_targets(tables: dict[str, TableInfo], source_table: str, dest_table: str | None, default_schema: str,
                    scheme: str = "") -> list[Target]:  # fmt: skip
    names = (
        [n for n, t in tables.items() if t.in_all]
        if source_table.strip() == "all"
        else [t.strip() for t in source_table.split(",") if t.strip()]
    )
    if not names:
        raise UsageError(
            f"--source-table: give a table name, a comma-separated list or 'all'; tables: {', '.join(tables)}"
        )
    twice = sorted({n for n in names if names.count(n) > 1})
    if twice:
        raise UsageError(f"--source-table: '{twice[0]}' is named more than once; name each table once")
    for n in names:
        if n not in tables:
            raise UsageError(f"--source-table: unknown table '{n}'; allowed: {', '.join(tables)}, all")
    schema, table = default_schema, None
    if dest_table:
        parts = dest_table.split(".")
        if len(parts) > 2 or not all(parts):
            raise UsageError(f"--dest-table: '{dest_table}' must be 'table' or 'schema.table'")
        if len(parts) == 2:
            schema, table = parts
        else:
            table = parts[0]
        if table and "-" in table and IDENT.match(table.replace("-", "_")):
            table = table.replace("-", "_")  # ingestr's name of a table (catalog-variants) is ours with _
        for ident in (schema, table):
            if ident != "*" and not IDENT.match(ident):
                raise UsageError(
                    f"--dest-table: '{ident}' is not a valid identifier; use letters, digits and _ (not first), at most 63"
                )
        if table == "*":
            table = None
        if table and len(names) > 1:
            raise UsageError("--dest-table: with several source tables give only a schema, as 'schema.*'")
    return [Target(n, schema, table or tables[n].dest_name, identity(scheme, n) if scheme else "") for n in names]


def check_keys(tables: dict[str, TableInfo], targets: list[Target], opts: IngestOptions) -> list[str]:
    """``--primary-key``/``--incremental-key`` (ingestr's): the table's own keys are always used, as ingestr does
    for sources that handle incrementality. A name that is a column of the table, or another table's key (ingestr
    users pass ``--incremental-key updated`` for every Klaviyo table), gets a note; anything else is a typo."""
    notes: list[str] = []
    known = {c for info in tables.values() for c in (*info.primary_key, info.cursor) if c}
    for target in targets:
        info = tables[target.source]
        columns = {*info.columns, *info.primary_key}
        given = tuple(k.strip() for k in (opts.primary_key or "").split(",") if k.strip())
        if given and given != info.primary_key:
            bad = [k for k in given if k not in columns]
            if bad:
                raise UsageError(
                    f"--primary-key: table '{info.name}' has no column '{bad[0]}'; it is keyed by '{','.join(info.primary_key)}'"
                )
            notes.append(f"table '{info.name}': --primary-key {','.join(given)} is not used; its records are merged on "
                         f"'{','.join(info.primary_key)}', the key the source gives them")  # fmt: skip
        key = (opts.incremental_key or "").strip()
        if key and key != info.cursor:
            if key not in columns and key not in known:
                raise UsageError(f"--incremental-key: table '{info.name}' has no column '{key}'; "
                                 f"it uses '{info.cursor or 'none (full refresh)'}'")  # fmt: skip
            own = f"by its own key '{info.cursor}'" if info.cursor else "whole on every run (it has no incremental key)"
            notes.append(f"table '{info.name}': --incremental-key {key} is not used; the table is read {own}")
    return notes


def check_options(opts: IngestOptions) -> tuple[list[Source], Destination, list[Target], ReconcileSettings]:
    sources = [open_source(uri) for uri in (opts.source_uris or [opts.source_uri])]
    source = sources[0]
    dest = parse_destination(opts.dest_uri)
    if len(sources) > 1:
        share(sources)
        if not dest.merges_in_place:
            raise UsageError(f"--source-uri given {len(sources)} times: {dest.display} cannot replace one source's rows "
                             "of a table and keep the others'; load several into a destination that merges (duckdb, "
                             "postgresql, ...)")  # fmt: skip
    tables = source.tables()
    targets = resolve_targets(tables, opts.source_table, opts.dest_table, dest.default_schema(source.default_schema),
                              source.schemes[0])  # fmt: skip
    notes = [note for s in sources for note in s.notes]
    opts.notes = [*opts.notes, *dict.fromkeys(notes), *dest.notes, *check_keys(tables, targets, opts)]
    if opts.incremental_strategy and opts.incremental_strategy not in STRATEGIES:
        raise UsageError(
            f"--incremental-strategy: '{opts.incremental_strategy}' is not allowed; allowed: {', '.join(STRATEGIES)}"
        )
    if opts.incremental_strategy == "scd2" and not dest.supports_scd2:
        raise UsageError(f"--incremental-strategy scd2: {dest.display} cannot keep SCD2 history; "
                         "use a SQL destination (duckdb, postgresql, sqlite, ...)")  # fmt: skip
    transform = Transform.parse(opts.columns, opts.masks, opts.trim_whitespace)
    if opts.staging_dataset:
        if not IDENT.match(opts.staging_dataset):
            raise UsageError(
                f"--staging-dataset: '{opts.staging_dataset}' is not a valid identifier; use letters, digits and _ (not first), at most 63"
            )
        dest.staging_layout = opts.staging_dataset
    if opts.incremental_predicate:
        if opts.full_refresh:
            raise UsageError(
                "--incremental-predicate cannot be combined with --full-refresh (a full refresh merges nothing)"
            )
        if not dest.merge_predicates:
            opts.notes.append(f"--incremental-predicate is ignored: {dest.display} does not merge in SQL (DuckDB and "
                              "PostgreSQL do)")  # fmt: skip
    for target in targets:
        info = tables[target.source]
        dest.check_target(target.schema, target.table)
        transform.check(info)
        if opts.partition_by and opts.partition_by not in {*info.columns, *info.primary_key}:
            raise UsageError(f"--partition-by: table '{info.name}' has no column '{opts.partition_by}'")
    if opts.partition_by and not dest.partitions:
        opts.notes.append(f"--partition-by {opts.partition_by} is ignored: {dest.display} does not partition tables "
                          "(Delta tables do: delta:// or table_format=delta)")  # fmt: skip
    if opts.interval_start and opts.interval_end and opts.interval_end <= opts.interval_start:
        raise UsageError(
            f"--interval-end {iso(opts.interval_end)} is not after --interval-start {iso(opts.interval_start)}"
        )
    if opts.extract_parallelism < 1 or opts.extract_parallelism > 64:
        raise UsageError(f"--extract-parallelism: {opts.extract_parallelism} is out of range; allowed: 1 to 64")
    named, off, every_table = parse_tables(opts.reconcile, [t.source for t in targets])
    deletes = ReconcileSettings(
        named, off, opts.reconcile_every, opts.hard_deletes, opts.allow_mass_delete, every_table
    )
    check_destination(deletes, dest)
    return sources, dest, targets, deletes


def make_workdir() -> str:
    """A throw-away folder for dlt, named after this process; the temporary folders and files of processes that
    no longer run (killed with SIGKILL: dlt's folders, a source's spools) are removed first."""
    base = tempfile.gettempdir()
    for name in os.listdir(base):
        m = WORKDIR.match(name)
        if m and not _alive(int(m.group(1))):
            path = os.path.join(base, name)
            if os.path.isdir(path) and not os.path.islink(path):
                shutil.rmtree(path, ignore_errors=True)
            else:
                with contextlib.suppress(OSError):
                    os.remove(path)
    return tempfile.mkdtemp(prefix=work_prefix())


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


class _TableEvents(ReadEvents):
    """A reader's progress, forwarded to the progress view of its table."""

    def __init__(self, progress: Progress, table: str) -> None:
        self.progress, self.table = progress, table

    def pages(self, pages: int, rows: int) -> None:
        self.progress.page(self.table, pages, rows)

    def fraction(self, share: float) -> None:
        self.progress.fraction(self.table, share)

    def note(self, message: str) -> None:
        self.progress.note(self.table, message)

    def waiting(self, attempt: int, reason: str) -> None:
        self.progress.waiting(self.table, attempt, reason)


def ingest(opts: IngestOptions) -> IngestResult:
    sources, dest, targets, deletes = check_options(opts)
    source = sources[0]
    from .compat import say

    for note in opts.notes:
        say(note if note.startswith("warning:") else f"note: {note}")
    if source.views() and dest.views is None:
        raise UsageError(f"--source-uri: its views (layout=) need a SQL destination with views, DuckDB or PostgreSQL, "
                         f"not {dest.display}; leave layout= out or load into duckdb:// or postgresql://")  # fmt: skip
    if len(sources) == 1:
        source.preflight([t.source for t in targets])
        refused: dict[int, str] = {}
    else:  # one refused source fails its own tables only
        refused = preflight_each(sources, [t.source for t in targets])
    names = labels(sources, refused) if len(sources) > 1 else [""]
    with dest.lock(lambda message: say(f"note: {message}")):  # first: a second run waits for the first to end
        dest.preflight()
        try:
            result = _load_all(opts, sources, dest, targets, deletes, names, refused)
            if dest.takeover is not None:  # nothing left behind that the user did not ask for (dlt's staging copies)
                for schema in sorted({t.schema for t in targets}):
                    dest.takeover.drop_staging(schema)
            return result
        finally:
            dest.close()


def _run_table(load: TableLoad, reconcile: Reconcile, progress: Progress, result: IngestResult, name: str,
               reread: bool = True) -> bool:  # fmt: skip
    """Load one table (``name``: in progress, with its source's label when several run), reconcile its deletes when
    due, read again the rows of parents kept for it (``reread``; else :func:`_reread_table` does, after the run's
    other tables) and report it; its failure is recorded, never raised (the others go on). True: loaded, its
    rereads and report left to do."""
    check_interrupted()
    progress.start(name)
    try:
        with load.locked(lambda message: progress.note(name, message)):  # another run into this table waits
            fresh = not load.saved_state()  # read before the load: nothing was loaded before this run
            with load.dest_lock:  # the rows marked now: a merge may bring some back, with their dependents
                reconcile.before_load(load.committed_state())  # (a full refresh's too)
            load.carry.update(reconcile.carried())  # committed with each slice: a kill after it loses no revival
            load.run()
            kill_point("loaded")
            with load.dest_lock:  # the scan's result is written in one transaction, as every destination access
                reconcile.run(fresh)
            if reread:
                load.reread()  # the rows of parents that came back (kept by a reconcile, this run's or an earlier one's)
    except Exception as exc:  # noqa: BLE001 - one table's failure must not stop the others
        _failed(load, progress, result, name, exc)
        return False
    if not reread:
        return True
    _finished(load, progress, result, name)
    return False


def _reread_table(load: TableLoad, progress: Progress, result: IngestResult, name: str) -> None:
    """The rereads of a table loaded side by side with a table whose reconcile keeps parents for it (segment
    memberships and segments): after every other table, so a parent found back by this run's reconcile, which may
    have ended after this table's load, is read again in this run too; then its report."""
    try:
        with load.locked(lambda message: progress.note(name, message)):
            load.reread()
    except Exception as exc:  # noqa: BLE001 - as _run_table
        _failed(load, progress, result, name, exc)
        return
    _finished(load, progress, result, name)


def _failed(load: TableLoad, progress: Progress, result: IngestResult, name: str, exc: Exception) -> None:
    check_interrupted()  # a signal a library wrapped in its own exception stops the run
    known = isinstance(exc, OmniloadError)
    message = str(exc) if known else f"internal error: {type(exc).__name__}: {exc}"
    if debugging():
        print(redact(traceback.format_exc()), file=sys.stderr)
    progress.finish(name, "failed", redact(message), load.reader.stats)
    result.failed.append(name)
    _lacking(load, progress, name)


def _finished(load: TableLoad, progress: Progress, result: IngestResult, name: str) -> None:
    unplaced = load.reader.stats.unplaced
    if unplaced:  # loaded, but not all of it: say so, and exit 1
        progress.finish(name, "failed", f"table '{name}': {unplaced:,} records stamped after the run's end came in an "
                        "earlier slice and were not loaded", load.reader.stats)  # fmt: skip
        result.failed.append(name)
    else:
        progress.finish(name, "ok", "", load.reader.stats)
    _lacking(load, progress, name)


def _lacking(load: TableLoad, progress: Progress, name: str) -> None:
    lacking = load.reader.stats.no_cursor
    if lacking:
        progress.note(
            name,
            f"{lacking:,} records came without a value for '{load.info.cursor}': loaded, but they cannot "
            "move the saved cursor (an incremental run reads them again only when the source sends them again)",
        )


def _rereads_wait(loads: list[TableLoad], order: dict[int, int]) -> set[int]:
    """The loads whose rereads wait for the run's other tables: a table read again by parent (``reread_by``)
    whose parent table (naming it a dependent by that column) loads in the same run, from the same source."""
    return {id(load) for load in loads if any(
        (load.info.name, column) in other.info.dependents and order[id(other)] == order[id(load)]
        for other in loads if other is not load for column in load.info.reread_by)}  # fmt: skip


def _load_all(opts: IngestOptions, sources: list[Source], dest: Destination, targets: list[Target],
              deletes: ReconcileSettings, names: list[str], refused: dict[int, str]) -> IngestResult:  # fmt: skip
    from .compat import say
    from .destinations.predicate import use

    use(opts.incremental_predicate if dest.merge_predicates else None)  # None: no predicate left from an earlier run
    settings = LoadSettings(opts.interval_start, opts.interval_end, opts.incremental_strategy,
                            opts.full_refresh, opts.checkpoint_rows, opts.lookback,
                            Transform.parse(opts.columns, opts.masks, opts.trim_whitespace),
                            opts.partition_by if dest.partitions else None, opts.schema_contract,
                            deep_lookback=opts.deep_lookback, deep_every=opts.deep_every)  # fmt: skip
    read_options = ReadOptions(opts.extract_parallelism, opts.batch_rows, opts.max_retry_after)
    result = IngestResult()
    workdir = make_workdir()
    try:
        progress = Progress(opts.progress)
        dest_lock = threading.RLock()  # the destination is read and written by one table at a time
        loads, reconciles, keys, order = [], {}, {}, {}
        shared = SharedTableLocks(dest) if len(sources) > 1 else None
        every: list[str] = []  # progress keys: the table, or "<label>/<table>" when several sources run
        for n, source in enumerate(sources):
            key = (lambda t, n=n: f"{names[n]}/{t}") if len(sources) > 1 else (lambda t: t)
            every += [key(t.source) for t in targets]
            if n in refused:
                continue
            tables = source.tables()
            for target in targets:
                name = key(target.source)
                events = _TableEvents(progress, name)
                reader = source.reader(target.source, read_options, events)
                load = TableLoad(reader, dest, target, settings, workdir, dest_lock,
                                 lambda rows, t=name: progress.committed(t, rows), events.note,
                                 shared.hold if shared is not None else None)  # fmt: skip
                loads.append(load)
                keys[id(load)], order[id(load)] = name, n
                reconciles[id(load)] = Reconcile(reader, dest, target.schema, target.table, tables, deletes, events,
                                                 load.strategy, source.schemes[0])  # fmt: skip
        for load in loads:  # before anything is written
            load.check_origin()
            load.check_scope()
            check_reconcile(deletes, load.reader, dest)
        progress.pending(every, [names[n] for n in range(len(sources)) for _ in targets] if len(sources) > 1 else None)
        with progress:
            result.progress = progress
            for n, why in refused.items():  # a source refused by its preflight: each of its tables fails with it
                for target in targets:
                    progress.start(f"{names[n]}/{target.source}")
                    progress.finish(f"{names[n]}/{target.source}", "failed", redact(f"{names[n]}: {why}"))
                    result.failed.append(f"{names[n]}/{target.source}")
            groups: dict[tuple[int, str], list[TableLoad]] = {}
            for load in loads:  # tables that share a rate limit run one after another; groups run side by side
                groups.setdefault((order[id(load)], load.info.group or load.info.name), []).append(load)
            ordered = heaviest_first(list(groups.values()), lambda load: load.info.weight)
            workers = opts.table_parallelism * max(1, min(opts.source_parallelism, len(sources) - len(refused)))
            later, waiting = _rereads_wait(loads, order), []

            def run_one(load: TableLoad) -> None:
                wait = id(load) in later
                if _run_table(load, reconciles[id(load)], progress, result, keys[id(load)], not wait):
                    waiting.append(load)

            run_groups(ordered, min(workers, len(groups)), run_one)
            for load in waiting:
                _reread_table(load, progress, result, keys[id(load)])
        for note in refresh_views(sources[0], dest, targets):  # after every table: the views read them all
            say(f"note: {note}")
    finally:
        shutil.rmtree(workdir, ignore_errors=True)
    return result
