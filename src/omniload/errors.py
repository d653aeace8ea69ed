"""Errors omniload reports to users, one class per cause (as httpx does): each maps to one clear line and an
exit code, and carries its message itself, so nobody has to dig through exception chains to find it.

| class | cause | exit |
|---|---|---|
| :class:`UsageError` | bad flags, URIs, dates, names: nothing was written | 2 |
| :class:`ConfigurationError` | the source refused the request: key, scopes, revision, a filter (401/403/4xx) | 1 |
| :class:`RateLimitWaitTooLong` | the next allowed request is further away than ``--max-retry-after`` | 1 |
| :class:`RedirectRefused` | the API answered a redirect to another host than the configured one | 1 |
| :class:`RetriesExhausted` | a transient problem (5xx, network, bad bodies) outlasted every retry | 1 |
| :class:`BadData` | the API returned records that cannot be loaded faithfully | 1 |
| :class:`DestinationBusy` | another run holds the destination | 1 |
| :class:`DestinationUnreachable` | the destination cannot be opened or reached | 1 |
| :class:`DestinationFailed` | the destination refused a load (disk full, permissions, ...) | 1 |
| :class:`CorruptState` | the saved cursor or state in the destination cannot be read | 1 |
"""

from __future__ import annotations


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


class RateLimitWaitTooLong(SourceError):
    """A rate-limit pause longer than the allowed wait (``--max-retry-after``)."""


class RedirectRefused(SourceError):
    """The API redirected a request off the configured host: what another host serves is not the source's data."""


class RetriesExhausted(SourceError):
    """A transient failure (5xx, dropped connections, unreadable bodies) outlasted every retry."""


class BadData(SourceError):
    """The API returned records that cannot be loaded faithfully."""


class DestinationError(OmniloadError):
    """The destination failed; the subclasses say why."""


class DestinationBusy(DestinationError):
    """Another process or omniload run is using the destination."""


class DestinationUnreachable(DestinationError):
    """The destination cannot be opened or reached."""


class DestinationFailed(DestinationError):
    """The destination refused or failed a load."""


class CorruptState(OmniloadError):
    """What a previous run saved in the destination cannot be read; the message says how to reset it."""
