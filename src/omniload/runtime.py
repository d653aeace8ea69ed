"""Process set-up, done once from ``main()`` before any heavy library loads: bounded native memory, quiet dlt,
no telemetry, and ``_dlt_load_id`` on Arrow rows; ``--debug`` (OMNILOAD_DEBUG=1) turns tracebacks on; and the
one name of this process's temporary folders and files (``work_prefix``); and, for tests only, a kill at a named
point (``kill_point``)."""

from __future__ import annotations

import os
import re
import signal

# A temporary folder or file of process <pid> (dlt's work folder, a delete's pipelines, a ride's spool): every
# one is named so, and pipeline.make_workdir removes those of processes that no longer run (killed with SIGKILL).
WORKDIR = re.compile(r"^omniload-(\d+)-")


def work_prefix(what: str = "") -> str:
    """The name prefix of a temporary folder or file of this process (``what``: e.g. ``deletes-``)."""
    return f"omniload-{os.getpid()}-{what}"


def kill_point(name: str) -> None:
    """Test-only: ``OMNILOAD_TEST_KILL_AT=<name>`` kills this process with SIGKILL here, to check what a kill at
    that point leaves (``loaded``: a table's last slice committed, its deletes not yet reconciled; ``scanned``:
    a reconcile's marks and unmarks committed, its dependents not yet marked). Never set it in production."""
    if os.environ.get("OMNILOAD_TEST_KILL_AT") == name:
        os.kill(os.getpid(), signal.SIGKILL)


def setup() -> None:
    _bound_native_memory()
    # omniload reports every failure in one line; dlt's own log (tracebacks of retried jobs) only with --debug
    os.environ.setdefault("RUNTIME__LOG_LEVEL", "WARNING" if debugging() else "CRITICAL")
    # A data tool must not phone home by default: dlt's anonymous telemetry stays off unless the user sets it.
    os.environ.setdefault("RUNTIME__DLTHUB_TELEMETRY", "false")
    # A SIGINT/SIGTERM must stop the run wherever it is (signals.py): dlt would otherwise hold signals back while it
    # normalizes and loads, then forget them when that step ends, and the run would go on as if none came.
    os.environ.setdefault("RUNTIME__INTERCEPT_SIGNALS", "false")
    # the work folder stays small: completed load packages are deleted
    os.environ.setdefault("LOAD__DELETE_COMPLETED_JOBS", "true")
    # every row says which load wrote it (_dlt_load_id), as with row-dict sources; Arrow sources need this switch
    os.environ.setdefault("NORMALIZE__PARQUET_NORMALIZER__ADD_DLT_LOAD_ID", "true")


def debugging() -> bool:
    """``--debug`` or ``OMNILOAD_DEBUG=1``: show tracebacks and dlt's log."""
    return os.environ.get("OMNILOAD_DEBUG", "").lower() in ("1", "true", "yes")


def _bound_native_memory() -> None:
    """Keep a long run's memory flat. glibc gives every thread that allocates its own malloc arena and rarely
    returns their memory (measured: +40 MB per committed slice with dlt, DuckDB and Arrow threads); two arenas
    stop that growth at no measurable speed cost. Arrow then allocates through the same bounded malloc."""
    os.environ.setdefault("ARROW_DEFAULT_MEMORY_POOL", "system")
    _libc("mallopt", -8, 2)  # M_ARENA_MAX = 2


def release_memory() -> None:
    """Hand the heap's free memory back to the system (after a slice is committed: its batches, dlt's files
    and DuckDB's buffers are gone, but malloc keeps the freed pages unless asked), so that peak memory stays flat
    however many slices a run commits. ``OMNILOAD_MALLOC_TRIM=0`` turns it off (for benchmarks to compare)."""
    if os.environ.get("OMNILOAD_MALLOC_TRIM", "1") != "0":
        _libc("malloc_trim", 0)


def _libc(function: str, *args: int) -> None:
    """Call glibc's ``function`` where there is one (not on musl, macOS or Windows: nothing to do there)."""
    try:
        import ctypes

        getattr(ctypes.CDLL("libc.so.6"), function)(*args)
    except (OSError, AttributeError):
        pass
