"""Timestamps, one parser for all: what users type (``2022-01-01``, RFC 3339), what APIs send (lenient ISO 8601)
and what omniload saves as a cursor. Every value comes back timezone-aware in UTC."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta

from .errors import UsageError

FORMS = "YYYY-MM-DD, YYYY-MM-DDTHH:MM:SS, or RFC 3339 with an offset such as 2022-01-01T10:00:00+02:00"


def parse_timestamp(text: str) -> datetime:
    """Lenient ISO 8601: ``Z`` or an offset or none (UTC), ``T`` or a space between date and time.
    Raises ``ValueError`` when the text is not a timestamp."""
    raw = str(text).strip().replace(" ", "T", 1)
    if raw.endswith(("Z", "z")):
        raw = raw[:-1] + "+00:00"
    dt = datetime.fromisoformat(raw)
    return dt.replace(tzinfo=UTC) if dt.tzinfo is None else dt.astimezone(UTC)


EARLIEST = datetime(1970, 1, 1, tzinfo=UTC)


def parse_date(text: str, flag: str, past: bool = False) -> datetime:
    """A date a user typed for ``flag``, from 1970 on (and not after now when ``past``); bad text is a
    :class:`UsageError` naming the allowed forms."""
    try:
        dt = parse_timestamp(text)
    except ValueError:
        raise UsageError(f"{flag}: cannot read '{text}' as a date; use {FORMS}") from None
    if dt < EARLIEST:
        raise UsageError(f"{flag}: '{text}' is before 1970-01-01; use a date from 1970 on")
    if past and dt > datetime.now(UTC):
        raise UsageError(f"{flag}: '{text}' is in the future; use a date up to now")
    return dt


def iso(dt: datetime) -> str:
    return dt.astimezone(UTC).isoformat()


_DURATION = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([smhd]?)\s*$")
_UNITS = {"": 1, "s": 1, "m": 60, "h": 3600, "d": 86400}


def parse_duration(text: str, flag: str) -> timedelta:
    """``90s``, ``30m``, ``2h``, ``7d`` or plain seconds; at most 366 days."""
    m = _DURATION.match(text)
    if not m:
        raise UsageError(f"{flag}: cannot read '{text}' as a duration; use e.g. 90s, 30m, 2h or 7d")
    seconds = float(m.group(1)) * _UNITS[m.group(2)]
    if seconds > 366 * 86400:
        raise UsageError(f"{flag}: '{text}' is longer than 366 days")
    return timedelta(seconds=seconds)
