"""DuckDB, the embedded default: ``duckdb:///rel.duckdb``, ``duckdb:////abs.duckdb``, ``duckdb:///:memory:``.

It owns the file checks, one run per file (a lock beside it while a run lasts), reading the saved state with one query (so a
table with nothing new never starts dlt), and two fast paths: "nothing new" (every fetched row is already
loaded with the same cursor) and the newest loaded cursor (events newer than it are appended, not merged).
Deleted rows are marked with the SQL of deletes.py, the live keys registered as an Arrow table.
"""

from __future__ import annotations

import contextlib
import os
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Iterator

from ..errors import CorruptState, DestinationBusy, UsageError
from .base import NO_TABLE, Destination, local_path
from .deletes import SqlDeletes
from .views import SqlViews
from .state import decode_state


def duckdb_config() -> dict[str, Any]:
    # DuckDB would take 80% of RAM by default; a bounded buffer pool (it spills to disk) keeps a run's memory flat.
    return {"memory_limit": os.environ.get("OMNILOAD_DUCKDB_MEMORY_LIMIT", "128MB"), "preserve_insertion_order": False}


@dataclass
class DuckDB(SqlViews, SqlDeletes, Destination):
    path: str = ""  # file or ":memory:"
    _conn: Any = None  # the run's connection (opened by preflight, closed by close)

    @classmethod
    def parse(cls, uri: str) -> "DuckDB":
        rest = uri.split("://", 1)[1].split("?", 1)[0]
        if rest in ("", "/"):
            raise UsageError("--dest-uri: use duckdb:///relative.duckdb, duckdb:////abs/path.duckdb or duckdb:///:memory:")
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
                raise UsageError(f"--dest-uri: '{path}' is a directory; give a DuckDB file path such as {path.rstrip('/')}/data.duckdb")
            parent = p.parent if str(p.parent) else Path(".")
            if not parent.is_dir():
                raise UsageError(f"--dest-uri: folder '{parent}' does not exist; create it or choose another path")
            if not os.access(parent, os.W_OK) or (p.exists() and not os.access(p, os.W_OK)):
                raise UsageError(f"--dest-uri: '{path}' is not writable")
            path = str(p)
        return cls("duckdb", "duckdb", f"duckdb:///{path}", path=path, schema="main", file_format="parquet",
                   compress_load_files=False, notes=notes)  # fmt: skip

    def check_target(self, schema: str, table: str) -> None:
        """DuckDB names a file's catalog after it (``dest.duckdb`` is ``dest``); a schema of the same name makes every
        query ambiguous ("Ambiguous reference to catalog or schema"), so it is refused before any work."""
        if self.in_memory:
            return
        catalog = os.path.basename(self.path).split(".")[0].lower()
        catalog = "main_db" if catalog == "main" else catalog
        for name in (schema, f"{schema}_staging"):
            if name.lower() == catalog:
                raise UsageError(f"--dest-table: schema '{name}' has the name DuckDB gives the file {self.display} "
                                 f"(its catalog '{catalog}'), which DuckDB cannot tell apart; choose another schema "
                                 "in --dest-table, or another file name")  # fmt: skip

    @property
    def in_memory(self) -> bool:
        return self.path == ":memory:"

    def preflight(self) -> None:
        import duckdb

        try:  # one connection for the whole run: dlt clones it per thread, the fast paths read through cursors
            self._conn = duckdb.connect(self.path, config=duckdb_config())
        except duckdb.IOException as exc:
            if "lock" in str(exc).lower():
                raise DestinationBusy(f"destination {self.display} is in use by another process; wait for it to finish") from None
            raise UsageError(f"--dest-uri: cannot open {self.display} as a DuckDB database: {exc}") from None

    @contextlib.contextmanager
    def lock(self) -> Iterator[None]:
        """One omniload run per DuckDB file at a time: a second one gets a clear error instead of a lock fight.
        The lock is taken on the file's real path (a symlink names the same file) and removed when the run ends."""
        if self.in_memory:
            yield
            return
        import fcntl

        lock_path = os.path.realpath(self.path) + ".lock"
        while True:
            fh = open(lock_path, "a")
            try:
                fcntl.flock(fh, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                fh.close()
                raise DestinationBusy(f"destination {self.display} is in use by another omniload run; wait for it to finish") from None
            try:  # the run before us may have removed the file between our open and our lock: lock the new one
                if os.stat(lock_path).st_ino == os.fstat(fh.fileno()).st_ino:
                    break
            except FileNotFoundError:
                pass
            fh.close()
        try:
            yield
        finally:
            with contextlib.suppress(OSError):
                os.unlink(lock_path)  # while still holding it, so nobody holds a lock on a removed file alone
            fcntl.flock(fh, fcntl.LOCK_UN)
            fh.close()

    def dlt_destination(self):
        import dlt
        from dlt.destinations.impl.duckdb.configuration import DuckDbCredentials

        return dlt.destinations.duckdb(DuckDbCredentials(self._conn))

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

    def newest_loaded(self, schema: str, table: str, cursor: str) -> Any:
        rows = self._read(f'select max("{cursor}") from "{schema}"."{table}"')
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

    def after_load(self, schema: str, table: str) -> None:
        """Empty the table's staging copy: a merge leaves the last load's rows there (a second copy of a big
        table); dlt fills it afresh on the next merge."""
        self._read(f'delete from "{schema}_staging"."{table}"')

    def advice(self, cause: str) -> str:
        lowered = cause.lower()
        if "out of memory" in lowered:  # first: its text says "could not allocate block", which holds "lock"
            limit = duckdb_config()["memory_limit"]
            return f"DuckDB ran out of its memory limit ({limit}); raise OMNILOAD_DUCKDB_MEMORY_LIMIT and run again"
        if re.search(r"\block\b|conflicting lock", lowered):
            return f"another process has {self.path} open; close it (or wait for it to finish) and run again"
        return super().advice(cause)

    def close(self) -> None:
        if self._conn is not None:
            self._conn.close()
            self._conn = None
