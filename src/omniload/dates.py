"""Parse the interval dates users type: ``2022-01-01``, ``2022-01-01T10:00:00``, RFC 3339 with an offset."""

from __future__ import annotations

from datetime import datetime, timezone

from .errors import UsageError

FORMS = "YYYY-MM-DD, YYYY-MM-DDTHH:MM:SS, or RFC 3339 with an offset such as 2022-01-01T10:00:00+02:00"


def parse_date(text: str, flag: str) -> datetime:
    """A timezone-aware UTC datetime; a value without a zone is UTC."""
    raw = text.strip()
    try:
        if raw.endswith(("Z", "z")):
            raw = raw[:-1] + "+00:00"
        dt = datetime.fromisoformat(raw)
    except ValueError:
        raise UsageError(f"{flag}: cannot read '{text}' as a date; use {FORMS}") from None
    if dt.tzinfo is None:
        dt = dt.replace(tzinfo=timezone.utc)
    return dt.astimezone(timezone.utc)


def iso(dt: datetime) -> str:
    return dt.astimezone(timezone.utc).isoformat()
