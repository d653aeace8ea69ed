"""The ``revision`` header: which values the sandbox accepts, and how it answers old ones.

Two policies (``SandboxConfig.revision_policy``):

- ``exact``: only the baseline revision (``rules.REVISION``, 2026-07-15) is accepted; anything else is
  ``400 invalid``.
- ``lifecycle`` (real-like): any date from Klaviyo's revision list is accepted, following Klaviyo's policy
  (stable about a year, deprecated about a year, then retired):

  * a date that is not itself a revision resolves to the latest revision on or before it;
  * a date before the first revision (2023-02-22) is ``400 invalid``;
  * a date after the baseline is ``400`` unless it is exactly the announced next revision (2026-10-15);
  * a revision more than two years older than the sandbox's clock is retired: ``410 gone``;
  * a revision one to two years old is deprecated: the response carries ``Deprecation: true`` and
    ``Sunset: <retirement date>`` (RFC 8594 HTTP-date), when ``deprecation_headers`` is on.

Whatever revision is asked for, the response always has the baseline (2026-07-15) shape: the sandbox models
one revision's endpoints only.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from email.utils import format_datetime

from .rules import REVISION

REVISION_RE = re.compile(r"^(\d{4}-\d{2}-\d{2})(\.[a-z]+)?$")
# Klaviyo's GA revisions, oldest first: irregular until mid-2024, then quarterly on the 15th.
REVISIONS = tuple(date.fromisoformat(d) for d in (
    "2023-02-22", "2023-06-15", "2023-07-15", "2023-09-15", "2023-10-15", "2023-12-15", "2024-02-15",
    "2024-05-15", "2024-06-15", "2024-07-15", "2024-10-15", "2025-01-15", "2025-04-15", "2025-07-15",
    "2025-10-15", "2026-01-15", "2026-04-15", "2026-07-15", "2026-10-15"))  # fmt: skip
BASELINE = date.fromisoformat(REVISION)
NEXT = date.fromisoformat("2026-10-15")  # announced (SDK 25.0.0), answered with the baseline shape
POLICY_URL = "https://developers.klaviyo.com/en/docs/api_versioning_and_deprecation_policy"


@dataclass
class RevisionAnswer:
    """``error``: (status, code, title, detail) when refused; else the resolved revision and extra headers."""

    error: tuple[int, str, str, str] | None = None
    resolved: date | None = None
    headers: dict[str, str] = field(default_factory=dict)


def _years_before(d: date, years: int) -> date:
    try:
        return d.replace(year=d.year - years)
    except ValueError:  # 29 February
        return d.replace(year=d.year - years, day=28)


def _http_date(d: date) -> str:
    return format_datetime(datetime(d.year, d.month, d.day, tzinfo=UTC), usegmt=True)


def check(rev: str | None, policy: str, today: date, deprecation_headers: bool = True) -> RevisionAnswer:
    """How the API answers a request carrying ``revision: rev`` when the clock reads ``today``."""
    if rev is None:
        return RevisionAnswer((400, "invalid", "Invalid input.",
                               f"Missing required header 'revision'. Pass the API revision, e.g. {REVISION}."))  # fmt: skip
    m = REVISION_RE.match(rev)
    try:
        asked = date.fromisoformat(m.group(1)) if m else None
    except ValueError:
        asked = None
    if asked is None:
        return RevisionAnswer(
            (400, "invalid", "Invalid input.", f"'{rev}' is not a valid revision; the format is YYYY-MM-DD[.suffix].")
        )
    if policy == "exact":
        if rev != REVISION:
            return RevisionAnswer(
                (400, "invalid", "Invalid input.", f"Revision '{rev}' is not supported by this API; use {REVISION}.")
            )
        return RevisionAnswer(resolved=BASELINE)
    if asked < REVISIONS[0] or (asked > BASELINE and asked != NEXT):
        return RevisionAnswer((400, "invalid", "Invalid input.", f"'{rev}' is not a valid revision."))
    resolved = max(r for r in REVISIONS if r <= asked)
    if resolved < _years_before(today, 2):
        detail = (f"Revision {resolved.isoformat()} has been retired and is no longer available. "
                  f"Please upgrade to a newer revision; see {POLICY_URL}.")  # fmt: skip
        return RevisionAnswer((410, "gone", "Gone.", detail), resolved)
    headers: dict[str, str] = {}
    if deprecation_headers and resolved < _years_before(today, 1):
        headers = {"Deprecation": "true", "Sunset": _http_date(resolved.replace(year=resolved.year + 2))}
    return RevisionAnswer(resolved=resolved, headers=headers)
