"""The state of one run of the Klaviyo source, in one typed place (:class:`KlaviyoRun`), built once with the source
(one source per run), apart from its configuration: what every reader of the run shares.

- the rate limiters, one per bucket, so that tables of one bucket never overrun it together;
- what the server said (its clock, from ``Date``; a deprecated revision);
- the notes already said (each once per run);
- the account's timezone, read once for the report tables (reports.py); the account's id, read by the
  preflight (``account_column``: every row carries it);
- how readers coordinate rides (ride.py): which tables have readers (``opened``), which were planned
  (``planned``), and the rides parents fill for their riders (``rides``). A parent feeds a ride only when its
  rider has a reader that is not yet planned; a rider takes the ride when it is planned.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from zoneinfo import ZoneInfo

from .client import ServerInfo
from .ratelimit import BucketLimiter
from .ride import Ride


@dataclass
class KlaviyoRun:
    limiters: dict[str, BucketLimiter] = field(default_factory=dict)  # bucket -> its limiter, for the whole run
    server: ServerInfo = field(default_factory=ServerInfo)  # the server's clock and revision status
    noted: set[str] = field(default_factory=set)  # the notes said
    opened: set[str] = field(default_factory=set)  # the tables the run has readers for
    planned: set[str] = field(default_factory=set)  # the tables whose readers planned
    rides: dict[str, Ride] = field(default_factory=dict)  # rider -> what its parent read along for it
    account_zone: ZoneInfo | None = None  # the account's timezone (/api/accounts), once the report tables asked
    account_id: str | None = None  # the account's id (/api/accounts), once the preflight asked
    chosen_ids: list[str] | None = None  # metrics=: the chosen metrics' ids, resolved by the preflight (chosen.py)
