"""Deleting records (admin route ``POST /__sandbox/delete``): what Klaviyo forgets, deterministically.

A deleted record is no longer listed; what Klaviyo deletes with it goes too: a profile's events and its list and
segment memberships, a list's or segment's memberships, a flow's actions and their messages (see
:func:`.children.alive`), a catalog item's variants. ``count=N`` picks N of the records still listed by a hash of (seed, resource, batch),
so the same calls delete the same records; ``ids=`` names them. A restore brings records back, touched now (so an
incremental run reads them again).
"""

from __future__ import annotations

import numpy as np

from .children import MEMBERSHIPS, PARENTS, alive, parents, record_id
from .dataset import mix, salt


class DeleteError(ValueError):
    """A delete request that names no resource or unknown ids."""


def listed(state, name: str) -> np.ndarray:
    """Indices of the records of ``name`` still listed (archived ones included)."""
    ds = state.dataset
    if name in PARENTS:
        return np.nonzero(alive(ds, name))[0]
    return np.nonzero(ds.live_mask(name, ds.count(name)))[0]


def shown_id(state, name: str, i: int) -> str:
    """How a deleted record is named in the answer: its id, ``parent_id:profile_id`` for a membership."""
    if name in MEMBERSHIPS:
        parent = state.builders[PARENTS[name]].id_of(int(parents(state.dataset, name)[i]))
        return f"{parent}:{record_id(state, name, i)}"
    return record_id(state, name, i)


def _index(state, name: str, rid: str) -> int | None:
    if name in MEMBERSHIPS:
        return next((int(i) for i in listed(state, name) if shown_id(state, name, int(i)) == rid), None)
    return state.builders[name].index_of(rid)


def delete(state, name: str, count: int = 0, ids: list[str] | None = None) -> list[str]:
    """Delete ``count`` records of ``name`` (or those named by ``ids``); the ids deleted."""
    ds = state.dataset
    if name not in ds.deleted or name == "events":
        raise DeleteError(f"resource must be one of {', '.join(n for n in ds.deleted if n != 'events')}")
    if ids:
        chosen = []
        for rid in ids:
            i = _index(state, name, rid)
            if i is None or i in ds.deleted[name]:
                raise DeleteError(f"no {name} record with id {rid}")
            chosen.append(i)
    else:
        batch = salt(ds.seed, f"{name}/delete/{len(ds.deleted[name])}")
        candidates = listed(state, name).tolist()
        chosen = sorted(candidates, key=lambda i: mix(batch ^ i))[:count]
    names = [shown_id(state, name, i) for i in chosen]
    ds.deleted[name].update(chosen)
    if name == "catalog-items" and "catalog-variants" in ds.deleted:  # an item's variants go with it
        from .records import item_of

        variants = state.builders["catalog-variants"]
        doomed = set(chosen)
        ds.deleted["catalog-variants"].update(
            v for v in range(ds.count("catalog-variants")) if item_of(variants, v) in doomed
        )
    ds.changed()
    return names


def restore(state, name: str, ids: list[str]) -> list[str]:
    """Bring deleted records back, their update time now (resources with one)."""
    ds = state.dataset
    builder = state.builders.get(name)
    back = []
    for rid in ids:
        i = next((j for j in ds.deleted.get(name, ()) if builder and builder.id_of(j) == rid), None)
        if i is None:
            raise DeleteError(f"no deleted {name} record with id {rid}")
        ds.deleted[name].discard(i)
        ds.overrides[name][i] = ds.now_us - ds.now_us % 1_000_000
        back.append(rid)
    ds.changed()
    return back
