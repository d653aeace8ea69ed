"""DuckDB, the embedded default: ``duckdb:///rel.duckdb``, ``duckdb:////abs.duckdb``, ``duckdb:///:memory:``.

It owns the file checks (a file that is not a DuckDB database is refused), the buffer pool's size (128 MB, more
for a slice of wide rows), one run per file (a lock beside it while a run lasts; a second run waits for it),
reading the saved state with one query (so a table with nothing new never starts dlt), and two fast paths: "nothing new" (every fetched row is already
loaded with the same cursor) and the newest loaded cursor (events newer than it are appended, not merged).
Deleted rows are marked with the SQL of deletes.py, the live keys registered as an Arrow table.
"""

from __future__ import annotations

import contextlib
import os
import re
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar

from ..errors import CorruptState, DestinationBusy, DestinationUnreachable, UsageError
from ..signals import check as check_interrupted
from .base import NO_TABLE, Destination, Takeover, leftover_staging, local_path
from .deletes import SqlDeletes
from .fill import SqlFill
from .locks import LOCK_WAIT_ENV, POLL_SECONDS, file_lock
from .state import decode_state
from .views import SqlViews

MEMORY_ENV = "OMNILOAD_DUCKDB_MEMORY_LIMIT"
BASE_MEMORY = 128_000_000  # bytes ("128MB"): the buffer pool of narrow data (it spills to disk beyond it)
LONG_VALUE = 4096  # bytes: a load's strings longer than this stay in DuckDB's memory until it commits
# measured (duckdb 2.0): 300 profiles of 100 KB (30 MB of long values) need 200-256 MB, 1,000 more than 512 MB,
# 3,000 more than 1 GB; 8 bytes per long byte, on top of the base, loads each
LONG_FACTOR = 8
MACHINE_SHARE = 0.8  # at most DuckDB's own default: 80% of the memory this process may use


def duckdb_config() -> dict[str, Any]:
    # DuckDB would take 80% of RAM by default; a bounded buffer pool (it spills to disk) keeps a run's memory flat.
    # It never installs or loads an extension on its own: a destination library does not reach the network.
    return {"memory_limit": os.environ.get(MEMORY_ENV, f"{BASE_MEMORY // 1_000_000}MB"), "preserve_insertion_order": False,
            "autoinstall_known_extensions": False, "autoload_known_extensions": False}  # fmt: skip


def machine_memory() -> int:
    """Bytes of memory this process may use: the machine's, or its cgroup's limit when lower."""
    total = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    for path in ("/sys/fs/cgroup/memory.max", "/sys/fs/cgroup/memory/memory.limit_in_bytes"):
        with contextlib.suppress(OSError, ValueError):
            with open(path) as fh:
                total = min(total, int(fh.read().strip()))
    return total


def long_bytes(batch) -> int:
    """Bytes of the batch's string and binary values longer than ``LONG_VALUE``."""
    import pyarrow as pa
    import pyarrow.compute as pc

    found = 0
    for column in batch.columns:
        if pa.types.is_string(column.type) or pa.types.is_large_string(column.type) or pa.types.is_binary(column.type):
            lengths = pc.binary_length(column)
            found += pc.sum(pc.if_else(pc.greater(lengths, LONG_VALUE), lengths, 0)).as_py() or 0
    return found


DUCKDB_MAGIC = (8, b"DUCK")  # where a DuckDB database file says what it is
OTHER_FILES = {b"SQLite format 3\0": "a SQLite database: use a sqlite:// URI for it", b"PAR1": "a Parquet file"}


def check_database_file(p: Path) -> None:
    """Refuse an existing file that is not a DuckDB database (DuckDB would open a SQLite file through an
    extension it downloads from the internet; a Parquet or text file it would refuse midway)."""
    if not p.is_file():
        return
    with open(p, "rb") as fh:
        head = fh.read(16)
    offset, magic = DUCKDB_MAGIC
    if head[offset : offset + len(magic)] == magic:
        return
    what = next((f"it is {name}" for sign, name in OTHER_FILES.items() if head.startswith(sign)),
                "it is empty" if not head else "unknown content")  # fmt: skip
    raise UsageError(f"--dest-uri: '{p}' is not a DuckDB database ({what}); give a DuckDB file, or a path "
                     "where none exists yet to create one")  # fmt: skip


@dataclass
class DuckDB(SqlFill, SqlViews, SqlDeletes, Takeover, Destination):
    column_types: ClassVar[dict[str, str]] = {"double": "DOUBLE", "text": "VARCHAR"}
    path: str = ""  # file or ":memory:"
    merge_predicates: bool = True
    _conn: Any = None  # the run's connection (opened by preflight, closed by close)
    _long: dict = field(default_factory=dict)  # (schema, table) -> long value bytes of the slice being extracted
    _limit: str = ""  # the buffer pool's size now
    _deadline: float = 0.0  # time.monotonic() until which opening the file waits for another process's lock

    @classmethod
    def parse(cls, uri: str) -> DuckDB:
        rest = uri.split("://", 1)[1].split("?", 1)[0]
        if rest in ("", "/"):
            raise UsageError(
                "--dest-uri: use duckdb:///relative.duckdb, duckdb:////abs/path.duckdb or duckdb:///:memory:"
            )
        notes = []
        # duckdb://k.duckdb (ingestr's form) is relative too; duckdb:///tmp/x.duckdb is relative unless only the
        # absolute folder exists (ingestr reads it as absolute): then it is the absolute one, with a note
        path = local_path(rest[1:] if rest.startswith("/") else rest)
        if rest.startswith("/") and path != ":memory:" and not os.path.isabs(path):
            here, there = Path(path).parent, Path("/" + path).parent
            if str(here) not in ("", ".") and not here.is_dir() and there.is_dir():
                notes.append(f"duckdb:///{path}: there is no folder '{here}' here, so the absolute path /{path} is used "
                             f"(write duckdb:////{path} to say so)")  # fmt: skip
                path = "/" + path
        if path != ":memory:":
            p = Path(path)
            if p.is_dir():
                raise UsageError(
                    f"--dest-uri: '{path}' is a directory; give a DuckDB file path such as {path.rstrip('/')}/data.duckdb"
                )
            parent = p.parent if str(p.parent) else Path(".")
            if not parent.is_dir():
                raise UsageError(f"--dest-uri: folder '{parent}' does not exist; create it or choose another path")
            if not os.access(parent, os.W_OK) or (p.exists() and not os.access(p, os.W_OK)):
                raise UsageError(f"--dest-uri: '{path}' is not writable")
            check_database_file(p)
            path = str(p)
        return cls("duckdb", "duckdb", f"duckdb:///{path}", path=path, schema="main", file_format="parquet",
                   compress_load_files=False, parquet_codec="none", notes=notes)  # fmt: skip

    def check_target(self, schema: str, table: str) -> None:
        """DuckDB names a file's catalog after it (``dest.duckdb`` is ``dest``); a schema of the same name makes every
        query ambiguous ("Ambiguous reference to catalog or schema"), so it is refused before any work."""
        if self.in_memory:
            return
        catalog = os.path.basename(self.path).split(".")[0].lower()
        catalog = "main_db" if catalog == "main" else catalog
        for name in (schema, self.staging_schema(schema)):
            if name.lower() == catalog:
                raise UsageError(f"--dest-table: schema '{name}' has the name DuckDB gives the file {self.display} "
                                 f"(its catalog '{catalog}'), which DuckDB cannot tell apart; choose another schema "
                                 "in --dest-table, or another file name")  # fmt: skip

    @property
    def in_memory(self) -> bool:
        return self.path == ":memory:"

    def preflight(self) -> None:
        import duckdb

        while True:  # one connection for the whole run: dlt clones it per thread, the fast paths read through cursors
            try:
                self._conn = duckdb.connect(self.path, config=duckdb_config())
                self._limit = duckdb_config()["memory_limit"]
                return
            except duckdb.IOException as exc:
                if "lock" not in str(exc).lower():
                    raise DestinationUnreachable(
                        f"--dest-uri: cannot open {self.display} as a DuckDB database: {exc}"
                    ) from None
                if time.monotonic() >= self._deadline:  # another process (not an omniload run) holds the file
                    raise DestinationBusy(
                        f"destination {self.display} is in use by another process (waited {self.lock_wait:g}s); wait "
                        f"for it to finish and run again, or raise {LOCK_WAIT_ENV} (seconds)"
                    ) from None
                check_interrupted()
                time.sleep(POLL_SECONDS)

    @contextlib.contextmanager
    def lock(self, on_wait: Callable[[str], None] = lambda _: None) -> Iterator[None]:
        """One omniload run per DuckDB file at a time (DuckDB lets one process write a file): a second run waits
        for the first up to ``OMNILOAD_LOCK_WAIT`` seconds, saying so once, then fails with one line, as a second
        run into a locked table does elsewhere. The lock is taken on the file's real path (a symlink names the same
        file) and removed when the run ends; what is left of the wait also covers opening the file, which another
        process (not an omniload run) may hold."""
        self._deadline = time.monotonic() + self.lock_wait
        if self.in_memory:
            yield
            return
        lock = contextlib.ExitStack()
        try:
            lock.enter_context(
                file_lock(os.path.realpath(self.path) + ".lock", self.lock_wait, self.display, self.display, on_wait)
            )
        except DestinationBusy:
            raise DestinationBusy(
                f"destination {self.display} is in use by another omniload run (waited {self.lock_wait:g}s); wait "
                f"for it to finish and run again, or raise {LOCK_WAIT_ENV} (seconds)"
            ) from None
        with lock:
            yield

    def step_lock(self, schema: str, table: str, on_wait: Callable[[str], None]):
        """DuckDB takes one writing process per file: a step waits (``lock_wait``) for the lock ``lock`` takes, so
        steps, and a CLI run, write the file one after another."""
        if self.in_memory:
            return contextlib.nullcontext()
        what = "a table of this DuckDB file"  # whichever table the other writer loads
        return file_lock(os.path.realpath(self.path) + ".lock", self.lock_wait, what, self.display, on_wait)

    def dlt_destination(self):
        import dlt
        from dlt.destinations.impl.duckdb.configuration import DuckDbCredentials

        return dlt.destinations.duckdb(DuckDbCredentials(self._conn), staging_dataset_name_layout=self.staging_layout)

    def _read(self, sql: str, params: list | None = None, wanted: Any = None) -> Any:
        """Rows of one query on the run's connection (``wanted``: an Arrow table it may read as
        ``_wanted``); ``NO_TABLE`` when a table it names does not exist yet, None when the query fails (callers
        then take the safe path: load)."""
        import duckdb

        con = self._conn.cursor()
        try:
            if wanted is not None:
                con.register("_wanted", wanted)
            return con.execute(sql, params or []).fetchall()
        except duckdb.CatalogException:
            return NO_TABLE
        except duckdb.Error:
            return None
        finally:
            con.close()

    def saved_state(self, pipeline_name: str, schema: str, pipeline: Callable[[], Any]) -> dict[str, Any]:
        """Read with one query, as dlt itself restores state (newest state row of a completed load)."""
        query = (f'select s.state from "{schema}"."_dlt_pipeline_state" s join "{schema}"."_dlt_loads" l '
                 "on l.load_id = s._dlt_load_id where s.pipeline_name = ? and l.status = 0 "
                 "order by l.load_id desc limit 1")  # fmt: skip
        rows = self._read(query, [pipeline_name])
        if not isinstance(rows, list) or not rows:
            return {}
        try:
            return decode_state(rows[0][0])
        except ValueError:
            raise CorruptState(f"the saved state of {schema} in {self.display} cannot be read; "
                               "run again with --full-refresh to reset the table and its cursor") from None  # fmt: skip

    def already_loaded(self, schema: str, table: str, key: tuple[str, ...], cursor: str, rows) -> bool:
        if rows.num_rows == 0:
            return True
        match = " and ".join(f't."{c}" is not distinct from w."{c}"' for c in (*key, cursor))
        cols = ", ".join(f'"{c}"' for c in (*key, cursor))
        found = self._read(f'select count(*), (select count(*) from (select distinct {cols} from _wanted)) from '
                           f'(select distinct {cols} from _wanted) w where exists '
                           f'(select 1 from "{schema}"."{table}" t where {match})', wanted=rows.select([*key, cursor]))  # fmt: skip
        return isinstance(found, list) and found[0][0] == found[0][1]

    def newest_loaded(self, schema: str, table: str, cursor: str, scope: tuple[tuple[str, str], ...] = ()) -> Any:
        where = " and ".join(f'"{c}" = ?' for c, _ in scope)
        rows = self._read(f'select max("{cursor}") from "{schema}"."{table}"' + (f" where {where}" if where else ""),
                          [v for _, v in scope])  # fmt: skip
        return rows[0][0] if isinstance(rows, list) else rows

    def _write_connection(self) -> Any:
        return self._conn.cursor()  # a duplicate of the run's connection: its own transaction, closed after

    def _begin(self, con: Any) -> None:
        con.begin()

    def _cursor(self, con: Any) -> Any:
        return con  # a DuckDB cursor is another connection, outside this transaction

    def _load_keys(self, con: Any, name: str, keys: Any) -> None:
        con.register("_omniload_arrow", keys)
        con.execute(f"create temporary table {name} as select * from _omniload_arrow")
        con.unregister("_omniload_arrow")

    def _close(self, con: Any) -> None:
        con.close()

    def saw_batch(self, schema: str, table: str, batch) -> None:
        if MEMORY_ENV not in os.environ:
            self._long[(schema, table)] = self._long.get((schema, table), 0) + long_bytes(batch)

    def before_load(self, schema: str, table: str) -> None:
        """Size the buffer pool for the slice about to load: DuckDB cannot spill a load's long strings before it
        commits, so a slice of wide rows gets ``LONG_FACTOR`` bytes per byte of them on top of the base, at most
        80% of the machine's memory (DuckDB's own default). ``OMNILOAD_DUCKDB_MEMORY_LIMIT`` fixes the size."""
        if MEMORY_ENV in os.environ:
            return
        wanted = min(
            BASE_MEMORY + LONG_FACTOR * self._long.pop((schema, table), 0), int(machine_memory() * MACHINE_SHARE)
        )
        limit = f"{max(wanted, BASE_MEMORY) // 1_000_000}MB"
        if limit != self._limit:
            if self._read(f"set memory_limit = '{limit}'") is not None:
                self._limit = limit

    def after_load(self, schema: str, table: str) -> None:
        """Empty the table's staging copy: a merge leaves the last load's rows there (a second copy of a big
        table); dlt fills it afresh on the next merge."""
        self._read(f'delete from "{self.staging_schema(schema)}"."{table}"')

    def dlt_table(self, schema: str, table: str) -> dict[str, str] | None:
        rows = self._read("select column_name, data_type from information_schema.columns where table_schema = ? "
                          "and table_name = ? order by ordinal_position", [schema, table])  # fmt: skip
        columns = dict(rows) if isinstance(rows, list) else {}
        return columns if "_dlt_load_id" in columns else None

    def read_table(self, schema: str, table: str, columns: list[str], rows: int) -> Iterator[Any]:
        import pyarrow as pa

        types = self.dlt_table(schema, table) or {}
        cols = ", ".join(f'cast("{c}" as varchar) as "{c}"' if types.get(c) == "JSON" else f'"{c}"' for c in columns)
        con = self._conn.cursor()
        try:
            reader = con.sql(f'select {cols} from "{schema}"."{table}"').fetch_arrow_reader(rows)
            for batch in reader:
                yield pa.Table.from_batches([batch])
        finally:
            con.close()

    def drop_table(self, schema: str, table: str) -> None:
        self._conn.execute(f'drop table "{schema}"."{table}"')
        self._conn.execute(f'drop table if exists "{self.staging_schema(schema)}"."{table}"')

    def drop_staging(self, schema: str) -> None:
        staging = self.staging_schema(schema)
        if staging != schema and leftover_staging(self._read, schema, staging):
            self._read(f'drop schema "{staging}" cascade')

    def advice(self, cause: str) -> str:
        lowered = cause.lower()
        if "out of memory" in lowered:  # first: its text says "could not allocate block", which holds "lock"
            limit = self._limit or duckdb_config()["memory_limit"]
            return (f"DuckDB ran out of its memory limit ({limit}); raise {MEMORY_ENV}, or load rows this wide in "
                    "smaller slices (a lower --checkpoint-rows), and run again")  # fmt: skip
        if re.search(r"\block\b|conflicting lock", lowered):
            return f"another process has {self.path} open; close it (or wait for it to finish) and run again"
        return super().advice(cause)

    def close(self) -> None:
        if self._conn is not None:
            self._conn.close()
            self._conn = None
