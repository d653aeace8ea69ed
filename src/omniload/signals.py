"""Ctrl-C (SIGINT) and SIGTERM stop the whole run at once: the handler raises :class:`Interrupted` where the main
thread is, and remembers the signal, so that the table loop stops even where a library wrapped the exception
in its own. Slices already committed stay; the CLI prints one line and exits 128 + the signal number. A signal that
arrives while a module is being imported is only remembered, and stops the run at the next check: an exception
raised inside a native module's initialisation aborts the interpreter (DuckDB's: "Critical nanobind error", exit
-6, found by the season)."""

from __future__ import annotations

import os
import signal
import sys

from .errors import Interrupted

_received: int | None = None


def _handler(signum: int, frame: object) -> None:
    global _received
    if _received is not None:  # a second signal while stopping: stop now
        os._exit(128 + signum)
    _received = signum
    if not _importing(frame):
        raise Interrupted(signum)


def _importing(frame) -> bool:
    """Whether the main thread is inside an import (a frame of importlib's bootstrap on its stack)."""
    while frame is not None:
        if frame.f_code.co_filename.startswith("<frozen importlib"):
            return True
        frame = frame.f_back
    return False


def _unraisable(info) -> None:
    """A signal that arrived inside a weakref callback or a ``__del__`` raised :class:`Interrupted` where Python
    cannot propagate it and would print it with a traceback: say nothing, :func:`check` stops the run."""
    if not isinstance(info.exc_value, Interrupted):
        sys.__unraisablehook__(info)


def install() -> None:
    """Handle SIGINT and SIGTERM in this (main) thread."""
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, _handler)
    sys.unraisablehook = _unraisable


def received() -> int | None:
    """The signal that stopped the run, if one arrived."""
    return _received


def check() -> None:
    """Raise :class:`Interrupted` when a signal arrived (also when something caught the first raise)."""
    if _received is not None:
        raise Interrupted(_received)
