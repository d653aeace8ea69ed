"""What the sandbox holds, read straight from its dataset (no HTTP, no filter code): the tests' ground truth.

Archived records are included even where the API lists them only on request (campaigns; flows unless
``archived_visible``): a complete copy partitions on ``archived``. Events are the ones visible now (late ones
included, visibility delay applied, those of deleted profiles gone), in the API's (datetime, index) order.
Deleted records (``POST /__sandbox/delete``) are gone, with what Klaviyo deletes along with them. Child
resources (flow actions, memberships, ...) come from :mod:`.children`, each with its parent's id."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from . import children
from .app import SandboxState
from .dataset import UPDATED_FIELD
from .digest import endpoint_rules

# Each of the 15 list endpoints' time key (the attribute its clock moves; events: their datetime), for the tests.
CURSORS = {name: UPDATED_FIELD[name] or ("datetime" if name == "events" else None) for name in endpoint_rules()}
from .envelope import resource
from .query import to_us



def records(state: SandboxState, name: str, start: datetime | None = None, end: datetime | None = None) -> list[dict[str, Any]]:
    """Every visible record of ``name`` whose incremental key is in ``[start, end)`` (all, for keyless tables)."""
    lo = to_us(start) if start else None
    hi = to_us(end) if end else None
    ds = state.dataset
    if name in children.PARENTS:  # child resources carry their parent's id as ``parent_id``
        return children.truth(state, name, lo, hi)
    if name == "events":  # generated and late events visible now, in (datetime, index) order
        seq = state.events.seq(lo, hi)
        return [state.events.as_dict(i, "") for i in seq.run(0, seq.total, False) if not state.events.hidden(i)]
    builder = state.builders[name]
    rules = state.rules[name]
    extra = ["subscriptions"] if name == "profiles" else []
    _, updated = ds.arrays(name)
    out = []
    gone = ds.deleted.get(name, set())
    for i in range(ds.count(name)):
        if i in gone:  # deleted: no longer listed
            continue
        if UPDATED_FIELD[name]:
            t = int(updated[i])
            if (lo is not None and t < lo) or (hi is not None and t >= hi):
                continue
        obj, _ = resource(builder, i, rules, "", None, extra, [])
        if name == "campaigns":
            obj["channel"] = builder.build(i)[2]["messages.channel"]
        out.append(obj)
    return out
