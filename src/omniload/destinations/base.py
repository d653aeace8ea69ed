"""What a destination is: a dlt destination plus what omniload does around it (preflight, locking, reading
the saved state, fast paths). The generic loader asks the destination; it never runs SQL itself.

The base class is a SQL destination reached through dlt: saved state comes from dlt's own state sync, and
there are no fast paths (every run loads what it fetched). Subclasses override what they do better.
"""

from __future__ import annotations

import contextlib
import importlib.util
from dataclasses import dataclass, field
from typing import Any, Callable, Iterator

from ..errors import UsageError
from .locks import DEFAULT_LOCK_WAIT

NO_TABLE = object()  # newest_loaded(): the table does not exist yet


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
    supports_scd2: bool = True  # dlt's scd2 merge strategy (SQL destinations)
    partitions: bool = False  # honours dlt's partition column hint (--partition-by)
    stores_nul: bool = True  # text and JSON can hold NUL characters; False: they are removed on the way
    notes: list[str] = field(default_factory=list)  # said before the run (how the URI was read)

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
            raise UsageError(f"--dest-uri: {self.kind} needs extra packages; install them with: pip install 'omniload[{self.package[1]}]'")

    def preflight(self) -> None:
        """Reach the destination once before any work (UsageError when it cannot be used as given)."""
        self.require_packages()

    @contextlib.contextmanager
    def lock(self) -> Iterator[None]:
        """Held for the whole run; destinations that can be corrupted by two runs refuse the second."""
        yield

    lock_wait: float = DEFAULT_LOCK_WAIT  # seconds a run waits for another run's table lock (locks.py)

    @contextlib.contextmanager
    def table_lock(self, schema: str, table: str, on_wait: Callable[[str], None]) -> Iterator[None]:
        """Held for one table's whole load (saved state, staging, commits, reconcile): another run into the same
        table waits up to ``lock_wait`` seconds, then that table fails (``DestinationBusy``); runs into other
        tables go on. The default takes no lock: destinations without a way to lock say so in the README."""
        yield

    def dlt_destination(self):
        import dlt

        return getattr(dlt.destinations, self.kind)(credentials=self.credentials, **self.options)

    def saved_state(self, pipeline_name: str, schema: str, pipeline: Callable[[], Any]) -> dict[str, Any]:
        """The newest pipeline state a previous run committed (dlt restores it from the destination)."""
        p = pipeline()
        p.sync_destination()
        return dict(p.state)

    def already_loaded(self, schema: str, table: str, key: tuple[str, ...], cursor: str, rows) -> bool:
        """True when every row of ``rows`` is in the table with the same cursor (nothing new). Unknown: False."""
        return False

    def newest_loaded(self, schema: str, table: str, cursor: str) -> Any:
        """The table's largest cursor value, ``NO_TABLE`` if it does not exist, None when unknown."""
        return None

    # -- deletes (deletes.py: SQL; tombstones.py: through dlt; the others leave these as they are) ---------------
    supports_deletes = False
    hard_refusal = ""  # why --hard-deletes cannot be done here ('': it can)

    def key_stats(self, schema: str, table: str, key: tuple[str, ...]) -> tuple[int, int] | None:
        """(rows not marked deleted, distinct values of the leading key column); None: unknown or no table."""
        return None

    def last_reconciled(self, schema: str, table: str) -> Any:
        """When ``table``'s deletes were last reconciled (None: never)."""
        return None

    def mark_deleted(self, schema: str, table: str, key: tuple[str, ...], live, hard: bool, at, max_share):
        """Mark the rows whose key is not among ``live`` (an Arrow table of keys) deleted at ``at`` (column
        ``_omniload_deleted_at``), or delete them when ``hard``; one transaction. Returns a ``deletes.Deletion``."""
        raise NotImplementedError

    def mark_matching(self, schema: str, table: str, key: tuple[str, ...], column: str, values, hard: bool, at):
        """Mark (or delete) the rows whose ``column`` is one of ``values``: what the source deleted along."""
        raise NotImplementedError

    def loaded_from(self, schema: str, origin: str) -> list[str]:
        """The tables of ``schema`` whose loads saved the identity ``origin`` (``klaviyo:events``)."""
        return []

    def marks(self, schema: str, table: str, key: tuple[str, ...]):
        """An Arrow table of the key and ``_omniload_deleted_at`` of the rows marked deleted; None: none known."""
        return None

    def revived(self, schema: str, table: str, key: tuple[str, ...], prior):
        """The rows of ``prior`` (key and mark, from :meth:`marks`) whose key is held unmarked now."""
        return None

    def unmark_matching(self, schema: str, table: str, key: tuple[str, ...], column: str, marks):
        """Unmark the rows whose (``column``, mark) is a row of ``marks``; their keys and old marks (None: no table)."""
        return None

    def advice(self, cause: str) -> str:
        """What the user can do about a failed load whose cause reads ``cause``."""
        return "run again with --debug (or OMNILOAD_DEBUG=1) to see the details"

    def saw_batch(self, schema: str, table: str, batch) -> None:
        """Each Arrow batch of the slice being extracted for ``table`` (a destination may size itself for it)."""

    def before_load(self, schema: str, table: str) -> None:
        """Called before each slice of ``table`` is normalized and loaded (with the destination lock held)."""

    def after_load(self, schema: str, table: str) -> None:
        """Called after each committed load of ``table`` (with the destination lock held)."""

    def close(self) -> None:
        """Release what preflight opened."""
