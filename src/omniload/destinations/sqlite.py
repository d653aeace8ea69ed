"""SQLite through dlt's sqlalchemy destination: ``sqlite:///relative.db``, ``sqlite:////abs/path.db``.

The default schema is ``main`` (the file itself); another schema in ``--dest-table`` is a file of its own beside
it (``<file>__<schema>.db``, as dlt attaches it). Paths follow SQLAlchemy: three slashes relative, four absolute.
Deleted rows are marked through dlt merges (tombstones.py). One run at a time loads a table: a lock file beside
the database (locks.py).
"""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from ..errors import UsageError
from .base import Destination, local_path
from .locks import file_lock
from .tombstones import DltDeletes


@dataclass
class Sqlite(DltDeletes, Destination):
    path: str = ""

    @classmethod
    def parse(cls, uri: str) -> Sqlite:
        rest = uri.split("://", 1)[1].split("?", 1)[0]
        if not rest.startswith("/") or rest == "/":
            raise UsageError("--dest-uri: use sqlite:///relative.db or sqlite:////abs/path.db")
        path = local_path(rest[1:])
        p = Path(path)
        if p.is_dir():
            raise UsageError(
                f"--dest-uri: '{path}' is a directory; give a SQLite file path such as {path.rstrip('/')}/data.db"
            )
        parent = p.parent if str(p.parent) else Path(".")
        if not parent.is_dir() or not os.access(parent, os.W_OK):
            raise UsageError(f"--dest-uri: folder '{parent}' does not exist or is not writable")
        return cls(
            "sqlite", "sqlalchemy", f"sqlite:///{path}", path=str(p), schema="main", package=("sqlalchemy", "sqlite")
        )

    def table_lock(self, schema: str, table: str, on_wait: Callable[[str], None]):
        """A lock file beside the database: ``<file>.<schema>.<table>.omniload-lock``."""
        lock_path = f"{os.path.realpath(self.path)}.{schema.lower()}.{table.lower()}.omniload-lock"
        return file_lock(lock_path, self.lock_wait, f"{schema}.{table}", self.display, on_wait)

    def column_hints(self, hints: dict[str, dict]) -> dict[str, dict]:
        """JSON columns as TEXT holding the document: SQLite has no JSON type, and SQLAlchemy's would encode the
        JSON text a second time (a string of a string)."""
        return {c: {**h, "data_type": "text"} if h.get("data_type") == "json" else h for c, h in hints.items()}

    def dlt_destination(self):
        import dlt

        return dlt.destinations.sqlalchemy(credentials=f"sqlite:///{Path(self.path).resolve()}")
