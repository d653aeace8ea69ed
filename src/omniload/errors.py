"""Errors omniload reports to users, one class per cause (as httpx does): each maps to one clear line and an
exit code, and carries its message itself, so nobody has to dig through exception chains to find it.

| class | cause | exit |
|---|---|---|
| :class:`UsageError` | bad flags, URIs, dates, names: nothing was written | 2 |
| :class:`ConfigurationError` | the source refused the request: key, scopes, revision, a filter (401/403/4xx) | 1 |
| :class:`NotFound` | the source says what the request names does not exist (404): a child reader skips a deleted parent | 1 |
| :class:`RateLimitWaitTooLong` | the next allowed request is further away than ``--max-retry-after`` | 1 |
| :class:`TooLongWait` | the same, from a rate limiter that does not know the table (the client names it) | 1 |
| :class:`RedirectRefused` | the API answered a redirect to another host than the configured one | 1 |
| :class:`RetriesExhausted` | a transient problem (5xx, network, bad bodies) outlasted every retry | 1 |
| :class:`BadData` | the API returned records that cannot be loaded faithfully | 1 |
| :class:`DestinationBusy` | another run holds the destination | 1 |
| :class:`DestinationUnreachable` | the destination cannot be opened or reached: nothing was written | 2 |
| :class:`DestinationFailed` | the destination refused a load (disk full, permissions, ...) | 1 |
| :class:`CorruptState` | the saved cursor or state in the destination cannot be read | 1 |
| :class:`MassDelete` | a delete scan would mark most of a table (``--allow-mass-delete``) | 1 |
| :class:`Interrupted` | Ctrl-C or SIGTERM (a ``BaseException``: ``except Exception`` must not stop it) | 128 + signal |
"""

from __future__ import annotations

import signal


class OmniloadError(Exception):
    """Base class; ``exit_code`` is what the CLI exits with."""

    exit_code = 1


class UsageError(OmniloadError):
    """Bad input from the user (flags, URIs, dates, names): exit code 2, nothing written."""

    exit_code = 2


class SourceError(OmniloadError):
    """The source failed for one table; the subclasses say why."""


class ConfigurationError(SourceError):
    """The API refused the request as configured (key, scopes, revision, parameters): retrying cannot help."""


class NotFound(ConfigurationError):
    """The API answered 404: what the request names does not exist (a parent deleted since it was listed)."""


class RateLimitWaitTooLong(SourceError):
    """A rate-limit pause longer than the allowed wait (``--max-retry-after``)."""


class RedirectRefused(SourceError):
    """The API redirected a request off the configured host: what another host serves is not the source's data."""


class RetriesExhausted(SourceError):
    """A transient failure (5xx, dropped connections, unreadable bodies) outlasted every retry."""


class TooLongWait(RateLimitWaitTooLong):
    """A rate limiter's next slot is ``seconds`` away, longer than allowed; the client re-raises it as a
    :class:`RateLimitWaitTooLong` that names the table."""

    def __init__(self, seconds: float) -> None:
        super().__init__(f"{seconds:.0f}s")
        self.seconds = seconds


class BadData(SourceError):
    """The API returned records that cannot be loaded faithfully."""


class DestinationError(OmniloadError):
    """The destination failed; the subclasses say why."""


class DestinationBusy(DestinationError):
    """Another process or omniload run is using the destination."""


class DestinationUnreachable(DestinationError):
    """The destination cannot be opened or reached (its preflight): exit code 2, as for a bad URI, since the run
    stops before anything is fetched or written."""

    exit_code = 2


class DestinationFailed(DestinationError):
    """The destination refused or failed a load."""


class CorruptState(OmniloadError):
    """What a previous run saved in the destination cannot be read; the message says how to reset it."""


class MassDelete(OmniloadError):
    """A delete scan found suspiciously few keys: marking would touch most of the table."""


class Interrupted(BaseException):
    """The run was stopped by a signal (a BaseException, so that ``except Exception`` does not swallow it)."""

    def __init__(self, signum: int) -> None:
        super().__init__(signal.Signals(signum).name)
        self.signum = signum
        self.exit_code = 128 + signum
