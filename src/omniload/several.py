"""Several sources of one scheme into the same tables in one run (``--source-uri`` given more than once: Klaviyo
accounts), side by side. Generic: a source is asked to share its tables (``Source.share_tables``: its rows then
carry a scope, such as ``account_id``) and to name itself (``Source.label``); the engine never learns what an
account is.

- Each source is checked on its own: one whose preflight refuses it (a revoked key) fails its tables only, named
  with its label; the others load. Two sources naming the same instance (one account twice) are refused.
- The run's loads of one destination table (one per source) share the table's run lock
  (:class:`SharedTableLocks`): taken when the first of them starts, released when the last ends, so they never
  wait for each other, while another omniload run still waits for all of them.
"""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Callable, Iterator

from .destinations import Destination
from .errors import UsageError
from .sources.base import Source


def share(sources: list[Source]) -> None:
    """Several sources: the same scheme, each told it shares its tables."""
    schemes = {s.schemes[0] for s in sources}
    if len(schemes) > 1:
        raise UsageError(f"--source-uri: several sources load into the same tables only when of one scheme; got "
                         f"{', '.join(sorted(s + '://' for s in schemes))}")  # fmt: skip
    shared: dict = {}  # one for all (Source.share_tables)
    for source in sources:
        source.share_tables(shared)


def preflight_each(sources: list[Source], tables: list[str]) -> dict[int, str]:
    """Each source's preflight; the refusal of each refused one, by its position (the others load)."""
    refused: dict[int, str] = {}
    for n, source in enumerate(sources):
        try:
            source.preflight(tables)
        except UsageError as exc:
            refused[n] = str(exc)
    return refused


def labels(sources: list[Source], refused: dict[int, str]) -> list[str]:
    """Each source's name in progress and errors (``#n``, its position, when it has none); two sources of the same
    name (one account given twice) are refused, before anything is written."""
    out = [source.label() or f"#{n + 1}" for n, source in enumerate(sources)]
    seen: dict[str, int] = {}
    for n, label in enumerate(out):
        if label in seen and n not in refused and seen[label] not in refused:
            raise UsageError(
                f"--source-uri: sources #{seen[label] + 1} and #{n + 1} are the same ({label}); give each once"
            )
        seen.setdefault(label, n)
    return out


class SharedTableLocks:
    """One destination table lock per table for all of this run's loads of it (see the module's docstring)."""

    def __init__(self, dest: Destination) -> None:
        self.dest = dest
        self._guard = threading.Lock()
        self._tables: dict[tuple[str, str], tuple[threading.Lock, list]] = {}  # -> (its lock, [holders, exit stack])

    @contextlib.contextmanager
    def hold(self, schema: str, table: str, on_wait: Callable[[str], None]) -> Iterator[None]:
        with self._guard:
            lock, held = self._tables.setdefault((schema, table), (threading.Lock(), [0, None]))
        with lock:
            if held[0] == 0:
                stack = contextlib.ExitStack()
                stack.enter_context(self.dest.table_lock(schema, table, on_wait))
                held[1] = stack
            held[0] += 1
        try:
            yield
        finally:
            with lock:
                held[0] -= 1
                if held[0] == 0:
                    held[1].close()
                    held[1] = None
