"""Ctrl-C (SIGINT) and SIGTERM stop the whole run at once: the handler raises :class:`Interrupted` where the main
thread is, and remembers the signal, so that the table loop stops even where a library wrapped the exception
in its own. Slices already committed stay; the CLI prints one line and exits 128 + the signal number."""

from __future__ import annotations

import os
import signal

_received: int | None = None


class Interrupted(BaseException):
    """The run was stopped by a signal (a BaseException, so that ``except Exception`` does not swallow it)."""

    def __init__(self, signum: int) -> None:
        super().__init__(signal.Signals(signum).name)
        self.signum = signum
        self.exit_code = 128 + signum


def _handler(signum: int, frame: object) -> None:
    global _received
    if _received is not None:  # a second signal while stopping: stop now
        os._exit(128 + signum)
    _received = signum
    raise Interrupted(signum)


def install() -> None:
    """Handle SIGINT and SIGTERM in this (main) thread."""
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, _handler)


def received() -> int | None:
    """The signal that stopped the run, if one arrived."""
    return _received


def check() -> None:
    """Raise :class:`Interrupted` when a signal arrived (also when something caught the first raise)."""
    if _received is not None:
        raise Interrupted(_received)
