"""Errors omniload reports to users: each maps to one clear line and an exit code."""

from __future__ import annotations


class OmniloadError(Exception):
    """Base class; ``exit_code`` is what the CLI exits with."""

    exit_code = 1


class UsageError(OmniloadError):
    """Bad input from the user (flags, URIs, dates, names): exit code 2, nothing written."""

    exit_code = 2


class SourceError(OmniloadError):
    """The source failed for one table (API error, exhausted retries, bad data): that table fails."""
