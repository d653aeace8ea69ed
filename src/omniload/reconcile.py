"""Reconcile deletes: mark the destination rows whose key the source no longer holds (list endpoints never return
deleted records, so an incremental load alone keeps them looking current).

After a table is loaded, its reader lists every key the source holds now (``TableReader.current_keys``) and the
destination marks the rows whose key is gone (``_omniload_deleted_at``), or deletes them with ``--hard-deletes``;
a key listed again is unmarked, and a re-merged row comes back unmarked. What the source deletes along with a
row (a deleted profile's events, a deleted list's memberships: ``TableInfo.dependents``) is marked by key,
without scanning those tables, in every destination table of the schema whose loads saved that dependent's
identity (``klaviyo:events``), whatever its name; a table omniload did not load from it is never touched. A
row that comes back (listed again, or merged again by the load) brings back its dependents. One the source can
read by that parent (``TableInfo.reread_by``, where the destination keeps ``Deletes.add_rereads``) is not
unmarked by its mark: the parent's key is kept and that table's next load reads the parent's rows again and
merges back, unmarked, exactly those the source holds now (load.py ``TableLoad.reread``; those the source hid
while the parent was deleted come back with their old cursor values, older than any lookback), while a row that
ended meanwhile (a member who left the list) keeps its mark (issue #23). So such a dependent comes back at its
own table's next load: in the same run when the run loads it (pipeline.py ``_rereads_wait`` defers its re-read
after the run's other tables), else later, a documented lag. A table read again by parent has no dependents of
its own (Klaviyo's: events, event attributions, list and segment memberships; tests/test_deletes.py holds every
table to it), so nothing is brought back after its re-read (were one to have some, the rows its re-read merged
back would need their dependents brought back, and only those: not the rows :meth:`Reconcile.restore` already
did). Other dependents come back at once: those matching its key whose mark is the one it had (the
rows marked for another cause keep theirs). The marks held before the load are committed with each slice (the
table's saved state, ``revive``), so a kill after a slice merged a row back and before its dependents were
brought back is made good by the next run, which first brings back the dependents of the rows those marks name
that are current now. A row the scan lists again brings back its dependents before the scan unmarks it (a load
that committed no slice saved no marks naming it, so a kill after that unmark would lose them).

When: a table whose scan costs at most ``AUTO_REQUESTS`` requests (estimated from the destination's row count)
is reconciled on every run (but the first, which loads everything); larger ones only when named (``--reconcile profiles``) or when ``--reconcile-every``
has passed since their last reconcile (kept in the destination). The estimate is printed before a large scan.
Safety: the scan is read whole before anything is written (a fault, a kill or a too-long 429 wait marks
nothing), and a scan that would mark more than ``MASS_SHARE`` of the table's rows is refused unless
``--allow-mass-delete``.
Scoped tables (``TableInfo.scope``: one account's rows of a table several accounts load) are reconciled within
their scope: its rows alone are counted, marked and unmarked, with their dependents' rows of the same scope, and
its reconcile time is its own.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import pyarrow as pa
import pyarrow.compute as pc

from .dates import iso, parse_timestamp
from .destinations import Destination
from .destinations.deletes import DELETED
from .errors import MassDelete, UsageError
from .runtime import kill_point
from .sources.base import ReadEvents, ScanCost, TableInfo, TableReader, identity

AUTO_REQUESTS = 25  # a scan this cheap runs on every run
MASS_SHARE = 0.5  # a scan that would mark more than this share of a table's rows stops
REVIVE = "revive"  # the saved state's marks held before the load: {"columns": [...], "rows": [[key..., mark]]}


def _saved_marks(prior) -> dict | None:
    """The marks ``prior`` (key columns, mark) as saved state; None: none."""
    if prior is None or prior.num_rows == 0:
        return None
    rows = [[*r[:-1], iso(r[-1])] for r in zip(*(prior.column(c).to_pylist() for c in prior.column_names), strict=True)]
    return {"columns": prior.column_names, "rows": rows}


def _marks_of(saved: dict | None):
    """The marks saved by :func:`_saved_marks` as Arrow (key columns as text, the mark as UTC microseconds)."""
    if not saved or not saved.get("rows"):
        return None
    cols, rows = saved["columns"], saved["rows"]
    data = {c: pa.array([r[n] for r in rows], pa.string()) for n, c in enumerate(cols[:-1])}
    data[cols[-1]] = pa.array([parse_timestamp(r[-1]) for r in rows], pa.timestamp("us", tz="UTC"))
    return pa.table(data)


@dataclass(frozen=True)
class ReconcileSettings:
    tables: tuple[str, ...] = ()  # --reconcile: tables to reconcile whatever the cost
    off: bool = False  # --reconcile none: not even the cheap ones
    every: timedelta | None = None  # --reconcile-every: large tables when this much passed since the last time
    hard: bool = False  # --hard-deletes
    allow_mass: bool = False  # --allow-mass-delete
    every_table: bool = False  # --reconcile all: every table of the run that can be reconciled

    def asked(self, name: str) -> bool:
        """``--reconcile`` names the table (or says ``all``)."""
        return self.every_table or name in self.tables


def parse_tables(text: str | None, loading: list[str]) -> tuple[tuple[str, ...], bool, bool]:
    """``--reconcile``: a comma-separated list of the tables being loaded, ``all`` or ``none``; (the tables named,
    none, all)."""
    if not text:
        return (), False, False
    names = [n.strip() for n in text.split(",") if n.strip()]
    if names == ["none"]:
        return (), True, False
    if names == ["all"]:
        return (), False, True
    for n in names:
        if n not in loading:
            raise UsageError(f"--reconcile: '{n}' is not among the tables loaded by this run ({', '.join(loading)}); "
                             "name tables given to --source-table, 'all' or 'none'")  # fmt: skip
    return tuple(names), False, False


def check_destination(settings: ReconcileSettings, dest: Destination) -> None:
    """Refuse, before anything is written, ``--hard-deletes`` where rows cannot be deleted."""
    if settings.hard and dest.deletes is not None and dest.deletes.hard_refusal:
        raise UsageError(f"--hard-deletes: {dest.display}: {dest.deletes.hard_refusal}")


def check(settings: ReconcileSettings, reader: TableReader, dest: Destination) -> None:
    """Refuse, before anything is written, a ``--reconcile`` that cannot be done (``all``: only where no table
    of the run could be, the destination; a table that is never scanned is left out of it)."""
    name = reader.info.name
    if not settings.asked(name):
        return
    if dest.deletes is None:
        raise UsageError(f"--reconcile: {dest.display} cannot mark deleted rows; "
                         "reconcile deletes in a destination that merges or in files")  # fmt: skip
    if reader.scan_cost(0, 0) is None and name in settings.tables:
        raise UsageError(f"--reconcile: table '{name}' is not reconciled by a scan (it is loaded whole each run, or, "
                         "as events, too large: its rows are marked when their parent is)")  # fmt: skip


class Reconcile:
    """The deletes of one loaded table: decide, scan, mark, then mark its dependents; and bring back the
    dependents of its rows that came back."""

    def __init__(self, reader: TableReader, dest: Destination, schema: str, table: str, tables: dict[str, TableInfo],
                 settings: ReconcileSettings, events: ReadEvents, strategy: str, scheme: str = "") -> None:  # fmt: skip
        self.reader, self.dest, self.schema, self.table = reader, dest, schema, table
        self.deletes = dest.deletes  # None: this destination cannot mark deleted rows
        self.info, self.tables, self.settings, self.events = reader.info, tables, settings, events
        self.strategy, self.scheme = strategy, scheme
        self.prior = None  # the keys marked before the load, with their marks (tables with dependents)
        self.tracks = False  # the table's marks before the load are committed with its slices (REVIVE)

    def before_load(self, saved: dict | None = None) -> None:
        """Note the rows marked deleted now: one the load merges again (or the scan finds listed again) comes
        back with its dependents. A table replaced whole by its own strategy is never marked (one replaced on
        request may have been: its rows that come back bring back theirs too). First, the marks a previous run
        committed (``saved``, the table's saved state) bring back the dependents of their rows current now: that
        run may have been killed after its load and before it unmarked them."""
        if (
            self.info.dependents
            and len(self.info.record_key) == 1
            and self.deletes is not None
            and self.info.strategy != "replace"
        ):
            self._revive(_marks_of((saved or {}).get(REVIVE)))
            self.tracks = True
            self.prior = self.deletes.marks(self.schema, self.table, self.info.primary_key, self.info.scope)

    def carried(self) -> dict:
        """What the load commits with each slice: the marks held before it (None: none, the key is removed)."""
        return {REVIVE: _saved_marks(self.prior)} if self.tracks else {}

    def loaded_from(self, name: str) -> list[str]:
        """The destination tables of this schema that omniload loaded from source table ``name``."""
        return self.deletes.loaded_from(self.schema, identity(self.scheme, name)) if self.scheme else []

    def due(self, fresh: bool) -> tuple[ScanCost, bool] | None:
        """The scan's estimated cost and whether it is a large one; None: not this run (``fresh``: the table was
        just loaded from nothing, so it holds what the source listed; only a named table is scanned then)."""
        s, name = self.settings, self.info.name
        if s.off or self.deletes is None or self.strategy == "replace" or (fresh and not s.asked(name)):
            return None
        if self.reader.scan_cost(0, 0) is None:  # never scanned (events): not even a count of the table
            return None
        stats = self.deletes.key_stats(self.schema, self.table, self.info.primary_key, self.info.scope)
        if stats is None:
            return None
        cost = self.reader.scan_cost(*stats)
        if cost is None:
            return None
        small = cost.requests <= AUTO_REQUESTS
        if s.asked(name) or small:
            return cost, not small
        if s.every is not None:
            last = self.deletes.last_reconciled(self.schema, self.table, self.info.scope)
            if last is None or datetime.now(UTC) - last >= s.every:
                return cost, True
        return None

    def run(self, fresh: bool = False) -> None:
        plan = self.due(fresh)
        try:
            if plan is not None:
                self.scan(*plan)
        finally:  # rows the load merged again bring back their dependents even when the scan failed
            self.restore()

    def scan(self, cost: ScanCost, large: bool) -> None:
        """List every key, mark the rows whose key is gone, then their dependents."""
        name = self.info.name
        if large:
            self.events.note(f"reconciling deletes: listing every key costs about {cost.requests:,} requests, "
                             f"{cost.seconds / 60:.1f} min at the source's rate limits")  # fmt: skip
        at = datetime.now(UTC)
        live = self.reader.current_keys()  # whole, or it raised: nothing is marked from part of a scan
        if not self.settings.hard:  # (hard: a marked row listed again keeps its mark, as in mark_deleted)
            self._listed_again(live)
        share = None if self.settings.allow_mass else MASS_SHARE
        done = self.deletes.mark_deleted(
            self.schema, self.table, self.info.primary_key, live, self.settings.hard, at, share, self.info.scope
        )
        kill_point("scanned")
        if done is None:
            return
        if done.gone is None:
            raise MassDelete(f"table '{name}': the source lists {live.num_rows:,} keys, so {done.missing:,} of the "
                             f"{done.total:,} rows in {self.dest.display} would be marked deleted (over "
                             f"{MASS_SHARE:.0%}); nothing was marked; if they really were deleted, run again with "
                             "--allow-mass-delete")  # fmt: skip
        verb = "deleted" if self.settings.hard else "marked deleted"
        if done.gone.num_rows or done.revived:
            self.events.note(f"{done.gone.num_rows:,} rows {verb} (their keys are gone from the source)"
                             + (f", {done.revived:,} listed again" if done.revived else ""))  # fmt: skip
        self.cascade(self.info, done.gone, at, set())

    def _listed_again(self, live: pa.Table) -> None:
        """Before the scan unmarks the rows marked before the load that the source lists again, bring back their
        dependents (the same :meth:`uncascade` as :meth:`restore`: kept for the re-read of a re-readable one, else
        unmarked by their mark), and leave those rows out of what :meth:`restore` brings back (issue #23). The
        unmark is committed on its own, and the marks committed with the load's slices (``REVIVE``) name these
        rows only when the load committed a slice: after a kill right after the unmark, the parent would look
        current to every later run and its dependents stay marked forever. In this order a kill in between leaves
        the parent marked with its dependents back (or its key kept for their re-read): the parent is listed, so
        the next scan of its table unmarks it; late, never lost. So does a scan refused as a mass delete."""
        if self.prior is None or self.prior.num_rows == 0:
            return
        col = self.info.record_key[0]
        listed = pc.is_in(self.prior.column(col).cast(pa.string()),
                          value_set=live.column(col).cast(pa.string()).combine_chunks())  # fmt: skip
        self.uncascade(self.info, self.prior.filter(listed), set())
        self.prior = self.prior.filter(pc.invert(listed))

    def cascade(self, info: TableInfo, gone, at: datetime, seen: set[str]) -> None:
        """Mark the dependents of the rows just marked (recursively, for a single-column key within the scope)."""
        if gone.num_rows == 0 or len(info.record_key) != 1:
            return
        for dep, column in info.dependents:
            child = self.tables.get(dep)
            if child is None or dep in seen:
                continue
            for table in self.loaded_from(dep):
                done = self.deletes.mark_matching(self.schema, table, child.primary_key, column,
                                                  gone.select([info.record_key[0]]), self.settings.hard, at,
                                                  self.info.scope)  # fmt: skip
                if done is None:
                    continue
                if done.gone.num_rows:
                    verb = "deleted" if self.settings.hard else "marked deleted"
                    self.events.note(f"{done.gone.num_rows:,} rows of {table} {verb} with them")
                self.cascade(child, done.gone, at, seen | {info.name})

    def restore(self) -> None:
        """Unmark the dependents of the rows marked before the load that are current now (merged again, or
        listed again by the scan), those marked along with them (the same mark)."""
        self._revive(self.prior)

    def _revive(self, prior) -> None:
        """Unmark the dependents of the rows of ``prior`` (key and mark) that are current now."""
        if prior is None or prior.num_rows == 0:
            return
        back = self.deletes.revived(self.schema, self.table, self.info.primary_key, prior, self.info.scope)
        self.uncascade(self.info, back, set())

    def uncascade(self, info: TableInfo, back, seen: set[str]) -> None:
        """Bring back the dependents of the rows in ``back`` (key and the mark they had): keep those rows' keys for
        the re-read of a dependent the source can read by them, else unmark the dependents marked along with them."""
        if back is None or back.num_rows == 0:
            return
        for dep, column in info.dependents:
            child = self.tables.get(dep)
            if child is None or dep in seen:
                continue
            reread = column in child.reread_by and self.deletes.keeps_rereads
            for table in self.loaded_from(dep):
                if reread:  # its next load merges back, unmarked, the rows the source holds now (not those that
                    # ended while the parent was deleted: they keep the mark); it has no dependents of its own
                    parents = [str(v) for v in back.column(info.record_key[0]).to_pylist()]
                    self.deletes.add_rereads(self.schema, table, column, parents, self.info.scope)
                    self.events.note(f"{table}: the rows of {len(parents):,} parents current again are read again "
                                     "at its next load")  # fmt: skip
                    continue
                marks = back.select([info.record_key[0], DELETED]).rename_columns([column, DELETED])
                found = self.deletes.unmark_matching(
                    self.schema, table, child.primary_key, column, marks, self.info.scope
                )
                if found is None:
                    continue
                if found.num_rows:
                    self.events.note(f"{found.num_rows:,} rows of {table} current again with them")
                if len(child.record_key) == 1:
                    self.uncascade(child, found, seen | {info.name})
