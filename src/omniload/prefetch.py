"""Read an iterator ahead, in its own thread, into a bounded buffer: the loader reads the next checkpoint slice
while the current one is written (see :mod:`omniload.load`).

The producer thread pulls items from the iterator and puts them in a queue of ``depth`` items; when the queue is
full it waits, so that memory stays bounded and an iterator that reads over HTTP stops asking for more. The
consumer iterates the :class:`Prefetch` and gets the items in order, then the iterator's own error if it raised
one, re-raised as it is. :meth:`Prefetch.cancel` stops the producer and closes the iterator (a generator's
``finally`` runs, so that whatever it started stops too); nothing read ahead is handed on after it.
"""

from __future__ import annotations

import queue
import threading
from collections.abc import Callable, Iterator
from typing import Generic, TypeVar

T = TypeVar("T")
_ITEM, _END, _ERROR = "item", "end", "error"


class Prefetch(Generic[T]):
    """The items of ``make()``, read in a daemon thread started at once, at most ``depth`` items ahead."""

    def __init__(self, make: Callable[[], Iterator[T]], depth: int = 2, name: str = "prefetch") -> None:
        self._queue: queue.Queue = queue.Queue(maxsize=max(1, depth))
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._produce, args=(make,), name=name, daemon=True)
        self._thread.start()

    def _produce(self, make: Callable[[], Iterator[T]]) -> None:
        items = None
        try:
            items = make()
            for item in items:
                if not self._offer((_ITEM, item)):
                    return
            self._offer((_END, None))
        except BaseException as exc:  # noqa: BLE001 - handed to the consumer, raised there
            self._offer((_ERROR, exc))
        finally:
            close = getattr(items, "close", None)
            if close is not None:
                close()

    def _offer(self, entry: tuple) -> bool:
        """Put ``entry`` in the buffer, waiting while it is full; False when cancelled first."""
        while not self._stop.is_set():
            try:
                self._queue.put(entry, timeout=0.05)
                return True
            except queue.Full:
                continue
        return False

    def __iter__(self) -> Iterator[T]:
        while True:
            kind, value = self._queue.get()
            if kind == _END:
                return
            if kind == _ERROR:
                raise value
            yield value

    def cancel(self, wait: float = 5.0) -> None:
        """Stop reading ahead and close the iterator; wait up to ``wait`` seconds for the thread to end."""
        self._stop.set()
        self._thread.join(wait)
