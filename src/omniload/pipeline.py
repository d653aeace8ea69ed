"""Join a source and a destination: resolve tables and names, then load each table through dlt.

One dlt pipeline per destination table, working in a throw-away folder, so that everything that must
survive a run (data, schema, incremental cursor) lives in the destination itself. A table that fails is
reported and the others still load; bad input is refused before anything is written.
"""

from __future__ import annotations

import contextlib
import os
import re
import shutil
import tempfile
from dataclasses import dataclass, field
from datetime import datetime, timezone

from .dates import iso
from .load import load_table
from .errors import OmniloadError, SourceError, UsageError
from .progress import Progress
from .destinations import Destination, parse_destination
from .uri import KlaviyoURI, parse_source, redact

IDENT = re.compile(r"^[A-Za-z_][A-Za-z0-9_]{0,62}$")
STRATEGIES = ("merge", "replace", "append", "delete+insert")


@dataclass
class IngestOptions:
    source_uri: str
    source_table: str
    dest_uri: str
    dest_table: str | None = None
    interval_start: datetime | None = None
    interval_end: datetime | None = None
    extract_parallelism: int = 8
    incremental_strategy: str | None = None
    incremental_key: str | None = None
    primary_key: str | None = None
    full_refresh: bool = False
    progress: str | None = None
    max_retry_after: float = 300.0
    batch_rows: int = 50_000
    checkpoint_rows: int = 500_000  # a crash loses at most about this many rows of work


@dataclass
class Target:
    source: str  # Klaviyo table name
    schema: str
    table: str


@dataclass
class IngestResult:
    failed: list[str] = field(default_factory=list)
    progress: Progress | None = None

    @property
    def exit_code(self) -> int:
        return 1 if self.failed else 0


def resolve_targets(source_table: str, dest_table: str | None, default_schema: str = "main") -> list[Target]:
    from .sources.klaviyo.tables import TABLES

    names = list(TABLES) if source_table.strip() == "all" else [t.strip() for t in source_table.split(",") if t.strip()]
    if not names:
        raise UsageError(f"--source-table: give a table name, a comma-separated list or 'all'; tables: {', '.join(TABLES)}")
    for n in names:
        if n not in TABLES:
            raise UsageError(f"--source-table: unknown table '{n}'; allowed: {', '.join(TABLES)}, all")
    schema, table = default_schema, None
    if dest_table:
        parts = dest_table.split(".")
        if len(parts) > 2 or not all(parts):
            raise UsageError(f"--dest-table: '{dest_table}' must be 'table' or 'schema.table'")
        if len(parts) == 2:
            schema, table = parts
        else:
            table = parts[0]
        for ident in (schema, table):
            if ident != "*" and not IDENT.match(ident):
                raise UsageError(f"--dest-table: '{ident}' is not a valid identifier; use letters, digits and _ (not first), at most 63")
        if table == "*":
            table = None
        if table and len(names) > 1:
            raise UsageError("--dest-table: with several source tables give only a schema, as 'schema.*'")
    return [Target(n, schema, table or n.replace("-", "_")) for n in names]


def check_options(opts: IngestOptions) -> tuple[KlaviyoURI, Destination, list[Target]]:
    src = parse_source(opts.source_uri)
    dest = parse_destination(opts.dest_uri)
    targets = resolve_targets(opts.source_table, opts.dest_table, dest.default_schema)
    if opts.incremental_strategy and opts.incremental_strategy not in STRATEGIES:
        raise UsageError(f"--incremental-strategy: '{opts.incremental_strategy}' is not allowed; allowed: {', '.join(STRATEGIES)}")
    if opts.interval_start and opts.interval_end and opts.interval_end <= opts.interval_start:
        raise UsageError(f"--interval-end {iso(opts.interval_end)} is not after --interval-start {iso(opts.interval_start)}")
    if opts.extract_parallelism < 1 or opts.extract_parallelism > 64:
        raise UsageError(f"--extract-parallelism: {opts.extract_parallelism} is out of range; allowed: 1 to 64")
    return src, dest, targets


def _open_destination(dest: Destination):
    """Reach the destination once before any work: a DuckDB file in use or not a database, or a server that
    refuses the connection, fails here. Returns the connection to use for ``duckdb:///:memory:``."""
    dest.require_packages()
    if dest.is_duckdb:
        import duckdb

        if dest.path == ":memory:":
            return duckdb.connect(":memory:")
        try:
            duckdb.connect(dest.path).close()
        except duckdb.IOException as exc:
            if "lock" in str(exc).lower():
                raise SourceError(f"destination {dest.display} is in use by another process; wait for it to finish") from None
            raise UsageError(f"--dest-uri: cannot open {dest.display} as a DuckDB database: {exc}") from None
    elif dest.kind == "postgres":
        import psycopg2

        c = dest.credentials
        try:
            psycopg2.connect(dbname=c["database"], user=c["username"], password=c["password"], host=c["host"],
                             port=c.get("port", 5432), connect_timeout=10).close()  # fmt: skip
        except psycopg2.Error as exc:
            reason = redact(str(exc).strip().splitlines()[0]).replace(c["password"] or "\0", "***")
            raise UsageError(f"--dest-uri: cannot connect to {dest.display}: {reason}") from None
    return None


def _preflight(src: KlaviyoURI) -> None:
    """Fail fast, before writing anything, when the API host cannot be reached at all."""
    import socket
    from urllib.parse import urlsplit

    parts = urlsplit(src.base_url)
    host, port = parts.hostname or "", parts.port or (443 if parts.scheme == "https" else 80)
    try:
        socket.create_connection((host, port), timeout=10).close()
    except OSError as exc:
        reason = exc.strerror or type(exc).__name__
        raise UsageError(f"--source-uri: cannot reach {host}:{port} ({reason}); check base_url and the network") from None


@contextlib.contextmanager
def _exclusive(dest: Destination):
    """One omniload run per DuckDB file at a time: a second one gets a clear error instead of a lock fight."""
    if not dest.is_duckdb or dest.path == ":memory:":
        yield
        return
    import fcntl

    with open(f"{dest.path}.lock", "a") as fh:
        try:
            fcntl.flock(fh, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            raise SourceError(f"destination {dest.display} is in use by another omniload run; wait for it to finish") from None
        try:
            yield
        finally:
            fcntl.flock(fh, fcntl.LOCK_UN)


def ingest(opts: IngestOptions) -> IngestResult:
    src, dest, targets = check_options(opts)
    _preflight(src)
    with _exclusive(dest):
        return _ingest(opts, src, dest, targets)


def _ingest(opts: IngestOptions, src: KlaviyoURI, dest: Destination, targets: list[Target]) -> IngestResult:
    os.environ.setdefault("RUNTIME__LOG_LEVEL", "ERROR")
    # every row says which load wrote it (_dlt_load_id), as with row-dict sources; Arrow sources need this switch
    os.environ.setdefault("NORMALIZE__PARQUET_NORMALIZER__ADD_DLT_LOAD_ID", "true")
    from .sources.klaviyo.client import RetryPolicy
    from .sources.klaviyo.source import KlaviyoConfig

    memory_conn = _open_destination(dest)
    config = KlaviyoConfig(src.api_key, src.base_url, src.revision, RetryPolicy(max_retry_after=opts.max_retry_after))
    end = opts.interval_end or datetime.now(timezone.utc)
    result = IngestResult()
    workdir = tempfile.mkdtemp(prefix="omniload-")
    try:
        with Progress(opts.progress) as progress:
            result.progress = progress
            for target in targets:
                progress.start(target.source)
                stats: dict[str, int] = {}
                try:
                    load_table(config, dest, memory_conn, target, opts, end, workdir, progress, stats)
                except Exception as exc:  # noqa: BLE001 - one table's failure must not stop the others
                    msg = redact(_message(exc))
                    progress.finish(target.source, "failed", msg, stats)
                    result.failed.append(target.source)
                else:
                    progress.finish(target.source, "ok", "", stats)
    finally:
        shutil.rmtree(workdir, ignore_errors=True)
    return result


def _message(exc: BaseException) -> str:
    seen = exc
    while seen is not None:
        if isinstance(seen, OmniloadError):
            return str(seen)
        seen = seen.__cause__ or seen.__context__ or getattr(seen, "exception", None)
    return f"{type(exc).__name__}: {exc}"
