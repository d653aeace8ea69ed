"""One step in the life of an account (admin route ``POST /__sandbox/season/step``): the clock moves on and the
account changes as real accounts do, deterministically from the sandbox's seed and the step's number.

A step advances the clock (new records of every resource appear: profiles, list and segment memberships joining,
segments, flows, campaigns, catalog entries, coupons and codes; a share of old ones are updated, with new values
and a newer update time; flows and campaigns are archived: :meth:`.dataset.Dataset.advance`), then adds **late
events** (arriving now, dated up to ``max_late_s`` back; a share more than a day late) and, each about once per
``period_s`` of simulated time, deletes a record or two of each resource of :data:`LIFE` (members leaving lists and
segments among them) and, rarer, a list (with what Klaviyo deletes along), restores a record deleted by an earlier
step (:data:`RESTORABLE`), and **dooms a parent**: the next time a page of its children (:data:`DOOMED`) is served,
their parent is deleted, mid-read. A resource is never cut below three quarters of what it listed (a small account
is not emptied, and no reconcile meets its mass-delete guard). From a step on (:func:`drift_steps`), records changed
since carry a **new attribute** (a profile custom property, an event property), from the next one an attribute
**changes type** (profiles' ``loyalty_points`` as text, the events' new property as a number).

The answer names every change with its time, so a driver can tell which rows a copy may still lack (late events
beyond a lookback) or still hold (deletes before the next reconcile); :class:`Life` (``state.life``, in-process)
keeps each deletion and restore with a sequence number, so a checker can order them against its runs.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from . import ids
from .dataset import iso, mix, salt
from .deletions import delete, listed, restore
from .records import item_of

LATE_SHARE = 0.02  # late events per new event of the step
DAY_S = 86_400
PERIOD_S = 2 * DAY_S  # each kind of change below comes about once per this much simulated time (``period_s``)
# resources that lose a record now and then (members leaving: a membership deleted, the profile stays)
LIFE = ("profiles", "list-memberships", "segment-memberships", "segments", "flows", "campaigns", "catalog-items",
        "catalog-variants", "catalog-categories", "coupons", "coupon-codes")  # fmt: skip
RARE = {"lists": 4}  # ... more rarely: once per this many periods
RESTORABLE = ("profiles", "segments", "flows", "campaigns", "catalog-items", "catalog-variants", "lists")
DOOMED = {"list-memberships": "lists", "segment-memberships": "segments"}  # child -> the parent deleted mid-read


def drift_steps(seed: int) -> dict[str, int]:
    """The step from which each schema drift applies: a new attribute, then a change of type."""
    first = 1 + seed % 2
    return {"new_attribute": first, "type_change": first + 1}


@dataclass
class Life:
    """What the season did, in order: (resource, id) -> sequence number of its last deletion / restore; ``seq``
    grows with each change, so a driver that notes it when a run starts knows which changes came before."""

    seq: int = 0
    deleted: dict[tuple[str, str], int] = field(default_factory=dict)
    restored: dict[tuple[str, str], int] = field(default_factory=dict)
    doom: str | None = None  # a child resource whose next page's parent is deleted
    first: dict[str, int] = field(default_factory=dict)  # records listed when the season first deleted one

    def note(self, book: dict, name: str, names: list[str]) -> list[str]:
        for rid in names:
            self.seq += 1
            book[(name, rid)] = self.seq
        return names


def life(state) -> Life:
    if not hasattr(state, "life"):
        state.life = Life()
    return state.life


def _thriving(state, name: str) -> bool:
    """Whether ``name`` still lists more than three quarters of what it listed when the season first deleted one
    (the season never empties a small account, nor deletes half a table between two reconciles: the copy's guard)."""
    now = len(listed(state, name))
    first = life(state).first.setdefault(name, now)
    return now > max(2, first * 3 // 4)


def step(state, seconds: int, max_late_s: int = 10 * DAY_S, deletes: bool = True, period_s: int = PERIOD_S) -> dict:
    """Advance ``seconds`` and apply one step's changes; what changed, with ``now``. Each kind of deletion, a
    restore and a doomed parent each come with chance ``seconds / period_s`` (every step when it is 1 or more)."""
    ds = state.dataset
    ev = state.events
    lf = life(state)
    before = ev.count()
    for kind, at in drift_steps(ds.seed).items():  # records changed from this step on carry it
        if ds.advances + 1 == at:
            ds.drift[kind] = ds.now_us + 1
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
    restored: dict[str, list[str]] = {}
    updated: dict[str, list[str]] = {}  # changed without an update time to show it
    if deletes:
        chance = seconds / period_s

        def comes(what: str, times: float = 1.0) -> bool:
            return mix(h ^ salt(ds.seed, what)) % 1_000_000 < chance * times * 1_000_000

        gone = {n: sorted(ds.deleted[n]) for n in RESTORABLE if ds.deleted.get(n)}  # deleted by earlier steps
        if "catalog-variants" in gone:  # a variant comes back only to an item that is there
            variants, items = state.builders["catalog-variants"], ds.deleted.get("catalog-items", set())
            gone["catalog-variants"] = [v for v in gone["catalog-variants"] if item_of(variants, v) not in items]
            gone = {n: kept for n, kept in gone.items() if kept}
        wanted = {name: 1 + (h >> 20) % 2 for name in LIFE if comes(name)}
        wanted.update({name: 1 for name, every in RARE.items() if comes(name, 1 / every)})
        for name, count in wanted.items():
            if name in ds.counts and _thriving(state, name):
                variants = set(ds.deleted.get("catalog-variants", ()))
                deleted[name] = lf.note(lf.deleted, name, delete(state, name, count))
                if name == "catalog-items":  # their variants went with them
                    along = sorted(ds.deleted["catalog-variants"] - variants)
                    lf.note(
                        lf.deleted, "catalog-variants", [state.builders["catalog-variants"].id_of(v) for v in along]
                    )
        if gone and comes("restore"):  # bring back one record deleted earlier (a profile, or another resource)
            name = "profiles" if "profiles" in gone and h % 2 else sorted(gone)[(h >> 12) % len(gone)]
            back = state.builders[name].id_of(gone[name][(h >> 8) % len(gone[name])])
            restored[name] = lf.note(lf.restored, name, restore(state, name, [back]))
        if comes("coupons/edit") and "coupons" in ds.counts:  # coupons have no update time: a new description
            live = listed(state, "coupons")
            pick = int(live[(h >> 24) % len(live)])
            ds.overrides["coupons"][pick] = ds.now_us
            ds.changed()
            updated["coupons"] = [state.builders["coupons"].id_of(pick)]
        if comes("doom", 0.5):
            lf.doom = sorted(DOOMED)[(h >> 16) % len(DOOMED)]
    return {
        "now": iso(ds.now_us),
        "step": number,
        "touched": touched,
        "new_events": new_events,
        "late": late,
        "deleted": deleted,
        "restored": restored,
        "updated": updated,
        "drift": {k: iso(v) for k, v in ds.drift.items()},
        "doom": lf.doom,
    }


def child_page_served(state, name: str, parent_id: str) -> str | None:
    """A page of ``name``'s children of ``parent_id`` was served: if that child resource is doomed, its parent is
    deleted now (the next page answers 404, as Klaviyo does for a deleted parent); the parent's id, or None."""
    lf = getattr(state, "life", None)
    if lf is None or lf.doom != name:
        return None
    lf.doom = None
    if not _thriving(state, DOOMED[name]):
        return None
    return lf.note(lf.deleted, DOOMED[name], delete(state, DOOMED[name], ids=[parent_id]))[0]
