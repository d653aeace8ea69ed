"""Marking deleted rows through dlt, on every destination other than DuckDB and PostgreSQL (which mark with
SQL, deletes.py): warehouses, SQLite, Delta and Iceberg tables, and append-only files.

A merge replaces whole rows, so the rows to mark are read back and merged again, unchanged but for
``_omniload_deleted_at``; a row listed again is merged back with it empty. ``--hard-deletes`` merges the
deleted keys alone under dlt's ``hard_delete`` column hint, which deletes the rows they match. Files cannot
be rewritten: a tombstone row is appended instead (the key, ``_omniload_deleted_at``, other columns empty),
and a reader takes each key's newest row (largest ``_dlt_load_id``). Each table is read and written by a
pipeline of the name its loads use, synced from the destination first, so its schema and state are the
table's; when it was last reconciled is kept in that state. The tables a dependent was loaded into are found
by the identity in the newest saved state of each of the dataset's pipelines (dlt's state table or state
files). Within a scope (one account's rows) the scope's own pipeline (its state) reads and writes, and only the
scope's rows are read back and marked. Reading is per family: SQL through dlt's ``sql_client`` (here); Delta, Iceberg and files with their
own readers (lake.py, files.py).
"""

from __future__ import annotations

import contextlib
import shutil
import tempfile
from datetime import datetime
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc

from ..runtime import work_prefix
from .base import Deletes, Scope
from .deletes import DELETED, Deletion
from .rereads import DltRereads
from .state import loaded_from, pipeline_name

LOAD_ID = "_dlt_load_id"
CHUNK = 500  # keys per "in (...)" of a read


def _keys(table: pa.Table, columns) -> list[tuple]:
    return list(zip(*(table.column(c).cast(pa.string()).to_pylist() for c in columns), strict=False))


def _in(table: pa.Table, scope: Scope) -> pa.Table:
    """The rows of ``table`` holding the scope's values."""
    for column, value in scope:
        table = table.filter(pc.equal(table.column(column).cast(pa.string()), value))
    return table


def _only(table: pa.Table, columns, wanted: set[tuple]) -> pa.Table:
    return table.filter(pa.array([k in wanted for k in _keys(table, columns)], pa.bool_()))


class DltDeletes(DltRereads, Deletes):
    """Reconciling deletes through a dlt pipeline; a family overrides ``_rows`` (reading) where it reads otherwise."""

    _workdir: str | None = None
    _pipes: dict[tuple[str, str], tuple[Any, Any]] | None = None  # (dataset, pipeline) -> (pipeline, _stored)

    # -- the table's pipeline ----------------------------------------------------------------------------
    def _work(self) -> str:
        """The folder of this run's delete pipelines (named as every work folder: a killed run's is removed)."""
        if self._workdir is None:
            self._workdir = tempfile.mkdtemp(prefix=work_prefix("deletes-"))
        return self._workdir

    def _pipe(self, schema: str, table: str, scope: Scope = ()) -> Any:
        return self._synced(pipeline_name(schema, table, scope), schema)

    def _synced(self, name: str, schema: str) -> Any:
        """dlt's pipeline ``name`` in this run's work folder with the schema and state the destination stores for
        it: synced from the destination, unless this run synced it (or loaded through it) before and what the
        destination stores of it is still the same (``_stored``). A sync costs about 60 ms, and a reconcile asks for
        the same table's pipeline three or four times."""
        import dlt

        held = self._pipes.get((schema, name)) if self._pipes is not None else None
        if held is not None and held[1] is not None and self._stored(held[0]) == held[1]:
            return held[0]
        p = dlt.pipeline(pipeline_name=name, destination=self.dlt_destination(), dataset_name=schema,
                         pipelines_dir=self._work(), progress=None)  # fmt: skip
        p.sync_destination()
        self._loaded(p)
        return p

    def _loaded(self, p: Any) -> None:
        """``p`` holds what the destination stores of it (it was synced, or it loaded): remember both."""
        if self._pipes is None:
            self._pipes = {}
        self._pipes[(p.dataset_name, p.pipeline_name)] = (p, self._stored(p))

    def _stored(self, p: Any) -> Any:
        """Something cheap to read that changes whenever another writer stores a new state or schema of ``p``;
        None: unknown here (then every use syncs)."""
        return None

    def _schema_of(self, p: Any, table: str, need) -> dict | None:
        """The table's dlt columns; None: no such table, a column missing, or SCD2 history (not marked)."""
        if p.default_schema_name is None or table not in p.default_schema.tables:
            return None
        t = p.default_schema.tables[table]
        cols = t.get("columns", {})
        if not cols or not set(need) <= set(cols) or t.get("x-merge-strategy") == "scd2":
            return None
        return cols

    def _rows(self, p: Any, table: str, cols: dict, columns: list[str], where: tuple[str, list] | None) -> pa.Table:
        """``columns`` of the table's rows (those whose ``where[0]`` is among ``where[1]``), typed as dlt keeps them."""
        out: list[tuple] = []
        with p.sql_client() as c:
            sel = ", ".join(c.escape_column_name(n) for n in columns)
            sql = f"select {sel} from {c.make_qualified_table_name(table)}"
            if where is None:
                out = list(c.execute_sql(sql) or [])
            for n in range(0, len(where[1]) if where else 0, CHUNK):
                part = where[1][n : n + CHUNK]
                out += (
                    c.execute_sql(
                        f"{sql} where {c.escape_column_name(where[0])} in ({', '.join(['%s'] * len(part))})", *part
                    )
                    or []
                )
        return typed(cols, columns, out, p.destination.capabilities())

    def _held(self, p: Any, table: str, cols: dict, key, extra=(), scope: Scope = ()) -> pa.Table:
        """Key, mark and ``extra`` columns of every row (of ``scope``); where files append versions, each key's
        newest row."""
        columns = [*key, *(c for c in extra if c not in key)] + ([DELETED] if DELETED in cols else [])
        if not self.merges_in_place:
            columns.append(LOAD_ID)
        held = self._rows(p, table, cols, columns, None)
        if DELETED not in cols:
            held = held.append_column(DELETED, pa.nulls(held.num_rows, pa.timestamp("us", tz="UTC")))
        if not self.merges_in_place and held.num_rows:
            newest: dict[tuple, int] = {}
            for n, (k, load) in enumerate(zip(_keys(held, key), held.column(LOAD_ID).to_pylist(), strict=False)):
                if k not in newest or load >= held.column(LOAD_ID)[newest[k]].as_py():
                    newest[k] = n
            held = held.take(pa.array(sorted(newest.values()), pa.int64()))
        return _in(held, scope)

    def _full(self, p: Any, table: str, cols: dict, key, wanted: set[tuple], at: datetime | None,
              scope: Scope = ()) -> pa.Table:  # fmt: skip
        """The whole rows of the ``wanted`` keys (where files append versions: the newest that is not a
        tombstone), with ``_omniload_deleted_at`` set to ``at``."""
        columns = [c for c in cols if not c.startswith("_dlt_") and c != DELETED] + (
            [LOAD_ID] if not self.merges_in_place else []
        )
        if DELETED in cols and not self.merges_in_place:
            columns.append(DELETED)
        lead = next((n for n, c in enumerate(key) if c not in dict(scope)), 0)  # the first column past the scope's
        rows = self._rows(p, table, cols, columns, (key[lead], sorted({k[lead] for k in wanted})))
        rows = _only(rows, key, wanted)
        if not self.merges_in_place:
            if DELETED in rows.column_names:
                rows = rows.filter(pc.is_null(rows.column(DELETED))).drop_columns([DELETED])
            rows = rows.sort_by([(LOAD_ID, "descending")])
            first = {}
            for n, k in enumerate(_keys(rows, key)):
                first.setdefault(k, n)
            rows = rows.take(pa.array(sorted(first.values()), pa.int64())).drop_columns([LOAD_ID])
        return rows.append_column(DELETED, pa.array([at] * rows.num_rows, pa.timestamp("us", tz="UTC")))

    def _tombstones(self, key, gone: set[tuple], at: datetime) -> pa.Table:
        ordered = sorted(gone)
        data = {c: pa.array([k[n] for k in ordered], pa.string()) for n, c in enumerate(key)}
        return pa.table({**data, DELETED: pa.array([at] * len(ordered), pa.timestamp("us", tz="UTC"))})

    def _add_mark(self, p: Any, table: str) -> None:
        """Before the first mark of a table: add ``_omniload_deleted_at`` where dlt's merge would not."""

    def _delete(self, p: Any, table: str, key, keys: pa.Table) -> bool:
        """Delete the rows of ``keys`` with the table format's own writer; False: dlt's ``hard_delete`` merge does it."""
        return False

    def _hard(self, p: Any, table: str, key, gone: set[tuple], at: datetime, reconciled: datetime | None) -> None:
        """Delete the rows of the ``gone`` keys (and keep ``reconciled`` in the table's state)."""
        keys = self._tombstones(key, gone, at)
        if not self._delete(p, table, key, keys):
            self._write(p, table, key, [keys], True, reconciled)
        elif reconciled is not None:
            self._write(p, table, key, [], False, reconciled)

    def _write(self, p: Any, table: str, key, rows: list[pa.Table], hard: bool, reconciled: datetime | None) -> None:
        """One load of ``rows`` into the table: merged (``hard``: deleting what they match), or appended to files."""
        import dlt

        if DELETED not in p.default_schema.tables[table]["columns"]:
            self._add_mark(p, table)

        from ..dates import iso

        how = self.write_disposition("merge") if self.merges_in_place else "append"
        extra = {"table_format": self.table_format} if self.table_format else {}
        hints = {DELETED: {"data_type": "timestamp", "nullable": True, "hard_delete": hard}}

        @dlt.resource(name=table, write_disposition=how, primary_key=list(key), columns=hints, **extra)
        def tombstones():
            if reconciled is not None:
                dlt.current.resource_state()["reconciled_at"] = iso(reconciled)
            for part in rows:
                if part.num_rows:
                    yield part

        p.extract(tombstones(), loader_file_format=self.file_format)
        p.normalize()
        p.load()
        self._loaded(p)

    # -- Destination's interface -------------------------------------------------------------------------
    def key_stats(self, schema: str, table: str, key: tuple[str, ...], scope: Scope = ()) -> tuple[int, int] | None:
        p = self._pipe(schema, table, scope)
        cols = self._schema_of(p, table, key)
        if cols is None:
            return None
        held = self._held(p, table, cols, key, scope=scope)
        unmarked = held.filter(pc.is_null(held.column(DELETED)))
        own = [c for c in key if c not in dict(scope)]
        groups = len(set(unmarked.column(own[0]).to_pylist())) if len(own) > 1 else unmarked.num_rows
        return unmarked.num_rows, groups

    def last_reconciled(self, schema: str, table: str, scope: Scope = ()) -> datetime | None:
        from ..dates import parse_timestamp

        p = self._pipe(schema, table, scope)  # the scope's pipeline: its own state
        state = p.state.get("sources", {}).get(p.default_schema_name or "", {}).get("resources", {}).get(table, {})
        return parse_timestamp(state["reconciled_at"]) if state.get("reconciled_at") else None

    def mark_deleted(self, schema: str, table: str, key: tuple[str, ...], live: pa.Table, hard: bool, at: datetime,
                     max_share: float | None, scope: Scope = ()) -> Deletion | None:  # fmt: skip
        p = self._pipe(schema, table, scope)
        cols = self._schema_of(p, table, key)
        if cols is None:
            return None
        held = self._held(p, table, cols, key, scope=scope)
        listed = set(_keys(live, key))
        marked = pc.is_valid(held.column(DELETED)).to_pylist()
        keys = _keys(held, key)
        unmarked = [k for k, m in zip(keys, marked, strict=False) if not m]
        gone = {k for k in unmarked if k not in listed}
        if max_share is not None and len(gone) > max_share * len(unmarked):
            return Deletion(len(unmarked), len(gone))
        revived = (
            set() if hard else {k for k, m in zip(keys, marked, strict=False) if m and k in listed}
        )  # hard: as deletes.py
        if hard:
            self._hard(p, table, key, {k for k in keys if k not in listed}, at, at)
        elif self.merges_in_place:
            self._write(
                p,
                table,
                key,
                [
                    self._full(p, table, cols, key, gone, at, scope),
                    self._full(p, table, cols, key, revived, None, scope),
                ],
                False,
                at,
            )
        else:
            self._write(
                p,
                table,
                key,
                [self._tombstones(key, gone, at), self._full(p, table, cols, key, revived, None, scope)],
                False,
                at,
            )
        return Deletion(len(unmarked), len(gone), _only(held, key, gone).select(list(key)), len(revived))

    def loaded_from(self, schema: str, origin: str) -> list[str]:
        import dlt

        p = dlt.pipeline(pipeline_name="omniload__identities", destination=self.dlt_destination(), dataset_name=schema,
                         pipelines_dir=self._work(), progress=None)  # fmt: skip
        with p.destination_client() as client:
            return loaded_from(_stored_states(client), schema, origin)

    def marks(self, schema: str, table: str, key: tuple[str, ...], scope: Scope = ()) -> pa.Table | None:
        p = self._pipe(schema, table, scope)
        cols = self._schema_of(p, table, key)
        if cols is None or DELETED not in cols:
            return None
        held = self._held(p, table, cols, key, scope=scope)
        return held.filter(pc.is_valid(held.column(DELETED))).select([*key, DELETED])

    def revived(self, schema: str, table: str, key: tuple[str, ...], prior: pa.Table,
                scope: Scope = ()) -> pa.Table | None:  # fmt: skip
        p = self._pipe(schema, table, scope)
        cols = self._schema_of(p, table, key)
        if cols is None:
            return None
        held = self._held(p, table, cols, key, scope=scope)
        return _only(prior, key, set(_keys(held.filter(pc.is_null(held.column(DELETED))), key)))

    def unmark_matching(
        self, schema: str, table: str, key: tuple[str, ...], column: str, marks: pa.Table, scope: Scope = ()
    ) -> pa.Table | None:
        p = self._pipe(schema, table, scope)
        cols = self._schema_of(p, table, (*key, column))
        if cols is None:
            return None
        held = self._held(p, table, cols, key, (column,), scope)
        values = held.column(column).cast(pa.string()).to_pylist()
        if not self.merges_in_place:  # a tombstone holds the key alone: the column is its key's earlier rows'
            # the column named once where it is one of the key's (a membership's profile_id)
            every = self._rows(p, table, cols, list(dict.fromkeys([*key, column])), None)
            of = {
                k: v
                for k, v in zip(_keys(every, key), every.column(column).cast(pa.string()).to_pylist(), strict=False)
                if v is not None
            }
            values = [of.get(k) for k in _keys(held, key)]
        pairs = set(zip(marks.column(0).cast(pa.string()).to_pylist(), _utc(marks.column(1)), strict=False))
        along = [(c, m) in pairs for c, m in zip(values, _utc(held.column(DELETED)), strict=False)]
        back = held.filter(pa.array(along, pa.bool_()))
        if back.num_rows:
            self._write(
                p, table, key, [self._full(p, table, cols, key, set(_keys(back, key)), None, scope)], False, None
            )
        return back.select([*key, DELETED])

    def mark_matching(self, schema: str, table: str, key: tuple[str, ...], column: str, values: pa.Table, hard: bool,
                      at: datetime, scope: Scope = ()) -> Deletion | None:  # fmt: skip
        p = self._pipe(schema, table, scope)
        cols = self._schema_of(p, table, (*key, column))
        if cols is None:
            return None
        held = self._held(p, table, cols, key, (column,), scope)
        unmarked = held.filter(pc.is_null(held.column(DELETED)))
        matching = unmarked.filter(
            pc.is_in(unmarked.column(column).cast(pa.string()), value_set=values.column(0).cast(pa.string()))
        )
        gone = set(_keys(matching, key))
        if gone and hard:
            self._hard(p, table, key, gone, at, None)
        elif gone:
            rows = (
                self._tombstones(key, gone, at)
                if not self.merges_in_place
                else self._full(p, table, cols, key, gone, at, scope)
            )
            self._write(p, table, key, [rows], False, None)
        return Deletion(unmarked.num_rows, len(gone), matching.select(list(key)))

    def close(self) -> None:
        if self._workdir is not None:
            shutil.rmtree(self._workdir, ignore_errors=True)
            self._workdir = None
        self._pipes = None
        super().close()  # type: ignore[misc]


def _utc(marks) -> list:
    """Marks as UTC microsecond times, to compare (a reader may give them in another unit or zone)."""
    return marks.cast(pa.timestamp("us", tz="UTC")).to_pylist()


def _stored_states(client: Any):
    """(pipeline name, newest saved state) of every pipeline of a dlt job client's dataset: the names from the
    state table (SQL) or the state files' names (filesystem: ``<pipeline>__<load id>__<hash>.jsonl``)."""
    import os

    table = client.schema.state_table_name
    try:
        if hasattr(client, "list_table_files"):
            names = {os.path.basename(f).rsplit(".", 1)[0].rsplit("__", 2)[0] for f in client.list_table_files(table)}
        else:
            sql = client.sql_client
            names = {
                r[0]
                for r in sql.execute_sql(f"select distinct pipeline_name from {sql.make_qualified_table_name(table)}")
                or []
            }
    except Exception:  # noqa: BLE001 - no state table yet: nothing was loaded
        return
    for name in sorted(names):
        stored = client.get_stored_state(name)
        if stored is not None:
            yield name, stored.state


def typed(cols: dict, columns: list[str], rows: list[tuple], caps: Any) -> pa.Table:
    """Rows a DB-API cursor returned, as Arrow columns of the types dlt keeps for them (SQLite gives timestamps as
    text, a JSON column may come back as text or as a document)."""
    import json

    from dlt.common.data_types.type_helpers import coerce_value, py_type_to_sc_type
    from dlt.common.libs.pyarrow import columns_to_arrow

    schema = columns_to_arrow({c: cols[c] for c in columns}, caps, "UTC")
    arrays = []
    for n, name in enumerate(columns):
        want = cols[name].get("data_type", "text")
        values = []
        for row in rows:
            v = row[n]
            if v is not None and want == "json":
                v = v if isinstance(v, str) else json.dumps(v)
            elif v is not None:
                with contextlib.suppress(Exception):
                    v = coerce_value(want, py_type_to_sc_type(type(v)), v)
            values.append(v)
        arrays.append(pa.array(values, schema.field(name).type))
    return pa.Table.from_arrays(arrays, schema=schema)


def fill(rows: pa.Table, cols: dict, columns: list[str], p: Any) -> pa.Table:
    """``rows``' ``columns`` in order, as dlt types them (a reader's string views as strings), those it lacks (a
    column dlt knows that no file holds yet) as nulls."""
    from dlt.common.libs.pyarrow import columns_to_arrow

    schema = columns_to_arrow({c: cols[c] for c in columns}, p.destination.capabilities(), "UTC")
    out = {}
    for c in columns:
        want = schema.field(c).type
        out[c] = rows.column(c) if c in rows.column_names else pa.nulls(rows.num_rows, want)
        with contextlib.suppress(pa.ArrowException):  # as it was read where it does not cast (CSV text)
            out[c] = out[c].cast(want)
    return pa.table(out)
