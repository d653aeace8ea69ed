"""One step in the life of an account (admin route ``POST /__sandbox/season/step``): the clock moves on and the
account changes as real accounts do, deterministically from the sandbox's seed and the step's number.

A step advances the clock (new records appear, a share of old ones get a newer ``updated``, flows are archived:
:meth:`.dataset.Dataset.advance`), then adds **late events** (arriving now, dated up to ``max_late_s`` back; a
share more than a day late), deletes a few profiles and lists (with what Klaviyo deletes along) and restores some
profiles deleted by earlier steps. The answer names every change with its time, so a driver can tell which rows a
copy may still lack (late events beyond a lookback) or still hold (deletes before the next reconcile).
"""

from __future__ import annotations

from . import ids
from .dataset import iso, mix, salt
from .deletions import delete, restore

LATE_SHARE = 0.02  # late events per new event of the step
DAY_S = 86_400


def step(state, seconds: int, max_late_s: int = 10 * DAY_S, deletes: bool = True) -> dict:
    """Advance ``seconds`` and apply one step's changes; what changed, with ``now``."""
    ds = state.dataset
    ev = state.events
    before = ev.count()
    touched = ds.advance(seconds)
    number = ds.advances
    h = mix(salt(ds.seed, f"season/{number}"))
    new_events = ev.count() - before
    late = []
    n_late = max(1, int(new_events * LATE_SHARE)) if new_events else 1
    for k in range(min(n_late, 200)):
        g = mix(h ^ (k + 1))
        # a third more than a day late (up to max_late_s), the others within the day
        lag = DAY_S + g % max(max_late_s - DAY_S, 1) if g % 3 == 0 else 60 + g % (DAY_S - 60)
        lag = min(lag, max_late_s)
        for i in ev.late.insert(ds.now_us, 1, lag):
            late.append({"id": ids.event_id(i, ev.salt), "datetime": iso(ev.time_us(i)), "lag_s": lag})
    deleted: dict[str, list[str]] = {}
    restored: list[str] = []
    if deletes:
        gone = sorted(ds.deleted["profiles"])  # deleted by earlier steps
        if h % 2 == 0:
            deleted["profiles"] = delete(state, "profiles", 1 + h % 3)
        if h % 11 == 3:
            deleted["lists"] = delete(state, "lists", 1)
        if gone and h % 5 == 1:  # bring back one profile deleted earlier
            builder = state.builders["profiles"]
            restored = restore(state, "profiles", [builder.id_of(gone[(h >> 8) % len(gone)])])
    return {
        "now": iso(ds.now_us),
        "step": number,
        "touched": touched,
        "new_events": new_events,
        "late": late,
        "deleted": deleted,
        "restored": restored,
    }
