"""Run locks: one omniload run at a time per destination table (DuckDB: per file).

Two runs loading one table at once interleave their staging tables, merges and saved cursors, and rows are
lost with both runs reporting success. So each table's whole load (saved state, staging, commits, reconcile)
holds the table's lock: a second run waits for it up to ``OMNILOAD_LOCK_WAIT`` seconds (default 300), saying
so once, then that table fails with one line (:class:`DestinationBusy`); its other tables still load. The lock
dies with the run that holds it (``flock`` on a lock file, a PostgreSQL session's advisory lock), so a killed
run leaves nothing stale behind. Each destination picks the mechanism (``Destination.table_lock``).
"""

from __future__ import annotations

import contextlib
import os
import time
from collections.abc import Callable, Iterator

from ..errors import DestinationBusy, UsageError
from ..signals import check as check_interrupted

LOCK_WAIT_ENV = "OMNILOAD_LOCK_WAIT"
DEFAULT_LOCK_WAIT = 300.0  # seconds a run waits for another run's table lock
POLL_SECONDS = 0.2


def lock_wait() -> float:
    """``OMNILOAD_LOCK_WAIT``: seconds to wait for another run's table lock (0: refuse at once)."""
    text = os.environ.get(LOCK_WAIT_ENV, "").strip()
    if not text:
        return DEFAULT_LOCK_WAIT
    try:
        value = float(text)
    except ValueError:
        value = -1.0
    if not 0 <= value <= 86400:
        raise UsageError(f"{LOCK_WAIT_ENV}: '{text}' is not allowed; give the seconds to wait for another run's "
                         "table lock, 0 to 86400")  # fmt: skip
    return value


def wait_for(attempt: Callable[[], bool], wait: float, what: str, display: str, on_wait: Callable[[str], None]) -> None:
    """Call ``attempt`` (take the lock without blocking: True when taken) until it succeeds or ``wait`` seconds
    passed; then :class:`DestinationBusy` naming ``what`` (``schema.table``). Ctrl-C stops the wait."""
    deadline = time.monotonic() + wait
    said = False
    while not attempt():
        check_interrupted()
        if time.monotonic() >= deadline:
            raise DestinationBusy(f"another omniload run is loading {what} in {display} (waited {wait:g}s); "
                                  f"wait for it to finish and run again, or raise {LOCK_WAIT_ENV} (seconds)")  # fmt: skip
        if not said:
            on_wait(f"another omniload run is loading {what}; waiting up to {wait:g}s for it to finish")
            said = True
        time.sleep(POLL_SECONDS)


@contextlib.contextmanager
def file_lock(lock_path: str, wait: float, what: str, display: str, on_wait: Callable[[str], None]) -> Iterator[None]:
    """An exclusive ``flock`` on ``lock_path`` (created if missing, removed when released), taken within ``wait``
    seconds. The kernel releases it when the holder dies, so there is no stale lock to detect."""
    import fcntl

    fh = None

    def attempt() -> bool:
        nonlocal fh
        while True:
            handle = open(lock_path, "a")
            try:
                fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                handle.close()
                return False
            try:  # the run before us may have removed the file between our open and our lock: lock the new one
                if os.stat(lock_path).st_ino == os.fstat(handle.fileno()).st_ino:
                    fh = handle
                    return True
            except FileNotFoundError:
                pass
            handle.close()

    wait_for(attempt, wait, what, display, on_wait)
    try:
        with contextlib.suppress(OSError):  # who holds it, for whoever looks at the file
            os.truncate(lock_path, 0)
            os.write(fh.fileno(), f"pid {os.getpid()}\n".encode())
        yield
    finally:
        with contextlib.suppress(OSError):
            os.unlink(lock_path)  # while still holding it, so nobody holds a lock on a removed file alone
        fcntl.flock(fh, fcntl.LOCK_UN)
        fh.close()


def folder_table_lock(root: str, schema: str, table: str, wait: float, display: str,
                      on_wait: Callable[[str], None]):  # fmt: skip
    """The table lock of a folder destination (files, local Delta and Iceberg): a hidden lock file in the root
    folder, ``<root>/.<schema>.<table>.omniload-lock``, outside the dataset (dlt creates that folder itself, and
    readers of a table's folder never see it)."""
    os.makedirs(root, exist_ok=True)
    name = f".{schema}.{table}.omniload-lock".lower()
    return file_lock(os.path.join(root, name), wait, f"{schema}.{table}", display, on_wait)
