"""Folders of files through dlt's filesystem destination: ``parquet:///dir``, ``csv:///dir``, ``jsonl:///dir``.

One folder per table under ``dir/<schema>/``. Files cannot be merged in place: a merge appends every version
of a record (newest by ``_dlt_load_id``), and replace tables are rewritten. Parquet tables are read back to
see that a run has nothing new (then nothing is written). A deleted record gets a tombstone row (its key and
``_omniload_deleted_at``, other columns empty; tombstones.py): a reader takes each key's newest row. One run at
a time loads a table: a lock file in the root folder (locks.py); runs of other tables of the dataset go on beside
it, and dlt's listing of the saved states tolerates a file another run's clean-up deletes (statefiles.py).
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..errors import UsageError
from .base import Destination, local_path
from .locks import folder_table_lock
from .statefiles import tolerate_removed_files
from .tombstones import DltDeletes, fill
from .wakeup import wake_on_finalized_jobs

FILE_FORMATS = {"parquet": "parquet", "csv": "csv", "jsonl": "jsonl"}


def folder(scheme: str, uri: str) -> Path:
    """The local folder of a ``scheme:///dir`` URI (relative; four slashes: absolute; ingestr's ``scheme://dir``:
    relative too), checked writable."""
    rest = uri.split("://", 1)[1].split("?", 1)[0]
    if rest in ("", "/"):
        raise UsageError(f"--dest-uri: use {scheme}:///relative/dir, {scheme}://relative/dir or {scheme}:////abs/dir")
    path = local_path(rest[1:] if rest.startswith("/") else rest)
    p = Path(path)
    if p.exists() and not p.is_dir():
        raise UsageError(f"--dest-uri: '{path}' is a file; {scheme}:// needs a folder")
    parent = p if p.exists() else p.parent if str(p.parent) else Path(".")
    if not parent.is_dir() or not os.access(parent, os.W_OK):
        raise UsageError(f"--dest-uri: folder '{parent}' does not exist or is not writable")
    return p


def holds_all(loaded: Any, wanted: Any) -> bool:
    """Every row of Arrow table ``wanted`` is a row of ``loaded`` (the same columns, compared as Python values)."""
    rows_of = lambda t: set(zip(*(t.column(c).to_pylist() for c in wanted.column_names), strict=False))  # noqa: E731
    return rows_of(wanted) <= rows_of(loaded)


def newest_stored(root: str, dataset: str, folder: str, name: str | None) -> str:
    """The path of the newest file of ``name`` in one of dlt's own folders (``_dlt_pipeline_state``: a pipeline's
    saved states, ``_dlt_version``: a schema's versions) of a local dataset folder under ``root``, as dlt's
    filesystem destination names and picks them (``<name>__<load id>__<hash>.jsonl``, the largest load id); ""
    when there is none."""
    found, best = "", ""
    with contextlib.suppress(OSError):
        for entry in os.scandir(os.path.join(root, dataset, folder)):
            parts = os.path.splitext(entry.name)[0].rsplit("__", 2)
            if len(parts) == 3 and parts[0] == name and parts[1] > best:
                found, best = entry.path, parts[1]
    return found


def stored_files(root: str, p: Any) -> tuple[str, str]:
    """The newest stored state of dlt pipeline ``p`` and the newest stored version of its schema: the files a sync
    would restore; another writer's load changes one or both."""
    return (newest_stored(root, p.dataset_name, "_dlt_pipeline_state", p.pipeline_name),
            newest_stored(root, p.dataset_name, "_dlt_version", p.default_schema_name))  # fmt: skip


@dataclass
class Files(DltDeletes, Destination):
    path: str = ""
    hard_refusal = ("files cannot delete rows: they are only appended to; without --hard-deletes, a deleted record "
                    "gets a tombstone row (its key and _omniload_deleted_at)")  # fmt: skip

    @classmethod
    def parse(cls, scheme: str, uri: str) -> Files:
        p = folder(scheme, uri)
        return cls(scheme, "filesystem", f"{scheme}:///{p}", path=str(p), file_format=FILE_FORMATS[scheme],
                   merges_in_place=False, supports_scd2=False, compress_load_files=False)  # fmt: skip  # plain .csv / .jsonl

    def table_lock(self, schema: str, table: str, on_wait: Callable[[str], None]):
        return folder_table_lock(self.path, schema, table, self.lock_wait, self.display, on_wait)

    def scoped_replace(self) -> tuple[Any, bool]:
        """Files cannot delete one scope's rows: the table is replaced (so it holds one scope, one account)."""
        return "replace", False

    def already_loaded(self, schema: str, table: str, key: tuple[str, ...], cursor: str, rows) -> bool:
        """Every fetched (key, cursor) is in the table's Parquet files (read back with pyarrow); other formats:
        unknown (load)."""
        if rows.num_rows == 0:
            return True
        folder = Path(self.path) / schema / table
        if self.file_format != "parquet" or not folder.is_dir():
            return False
        import pyarrow.dataset as ds

        cols = [*key, cursor]
        try:
            loaded = ds.dataset(str(folder), format="parquet").to_table(columns=cols)
        except Exception:  # noqa: BLE001 - unreadable files: take the safe path, load
            return False
        return holds_all(loaded, rows.select(cols))

    def dlt_destination(self):
        import dlt

        wake_on_finalized_jobs()  # the state table's job is a finalized one
        tolerate_removed_files()  # another run's clean-up of its saved states while this one lists them
        return dlt.destinations.filesystem(bucket_url=Path(self.path).resolve().as_uri())

    def _stored(self, p) -> tuple[str, str]:
        return stored_files(self.path, p)

    def _rows(self, p, table: str, cols: dict, columns: list[str], where):
        """Every file of the table read with pyarrow (CSV: as text, but the mark), the columns a file lacks empty."""
        import pyarrow as pa
        import pyarrow.compute as pc
        import pyarrow.csv as pacsv
        import pyarrow.json as pajson
        import pyarrow.parquet as pq

        parts = []
        for f in sorted((Path(self.path) / p.dataset_name / table).glob(f"*.{self.file_format}")):
            if self.file_format == "parquet":
                t = pq.read_table(f)
            elif self.file_format == "csv":
                text = {c: pa.string() for c in columns if c != "_omniload_deleted_at"}
                t = pacsv.read_csv(f, convert_options=pacsv.ConvertOptions(column_types=text, strings_can_be_null=True))
            else:
                t = pajson.read_json(f)
            t = fill(t.select([c for c in columns if c in t.column_names]), cols, columns, p)
            if where:
                t = t.filter(pc.is_in(t.column(where[0]).cast(pa.string()), value_set=pa.array(where[1], pa.string())))
            parts.append(t)
        return pa.concat_tables(parts, promote_options="permissive") if parts else fill(pa.table({}), cols, columns, p)
