"""Cut one page of a child endpoint (``/api/flows/{id}/flow-actions``, ``/api/lists/{id}/profiles``, ...), render
a child record, and list every child record with its parent's id (the ground truth, for :mod:`.testing`).

The records under one parent are selected like any list (filters, sort, keyset or offset cursors); only the
ids differ for memberships, which are served under their profile's id (unique within one parent).
"""

from __future__ import annotations

from dataclasses import replace
from typing import Any
from urllib.parse import quote

import numpy as np
import orjson

from .children import CURSORS, MEMBERSHIPS, PARENTS, SELF_PATHS, alive, members, parent_alive, parents, record_id
from .envelope import links, resource
from .keyset import key_at, links_cursors, rank_entities, start_position


class UnknownParent(LookupError):
    """The parent id in the path names no record, or a deleted one: Klaviyo answers 404 (a deleted parent's
    children are an empty page instead with ``deleted_parent_404=False``)."""


def child_page(state, rules, q, params: dict[str, str], base: str, parent_id: str) -> bytes:
    name = rules.name
    ds = state.dataset
    pidx = state.builders[PARENTS[name]].index_of(parent_id)
    if pidx is None or (not parent_alive(ds, name)[pidx] and state.config.deleted_parent_404):  # else: no children
        raise UnknownParent(f"A {rules.path.split('/')[2].rstrip('s')} with id {parent_id} does not exist.")
    within = (parents(ds, name) == pidx) & alive(ds, name)
    idx, keys = state.select(name, q, (params.get("filter"), q.sort, pidx), within)
    ids = {record_id(state, name, i): i for i in idx.tolist()}
    desc = bool(q.sort and q.sort.startswith("-"))
    start = start_position(q, lambda v, i, incl: rank_entities(idx, keys, desc, v, i, incl), ids.get)
    page = idx[start : start + q.page_size].tolist()
    more = start + q.page_size < len(idx)

    def key(pos: int) -> tuple[Any, str]:
        return key_at(keys, pos), record_id(state, name, int(idx[pos]))

    first = key(start) if page else None
    last = key(start + len(page) - 1) if page else None
    nxt, prev = links_cursors(q, state.config.cursor_mode, start, q.page_size, more, first, last)
    page_links = links(base, rules.path.replace("{id}", quote(parent_id, safe="")), params, nxt, prev)
    fields = q.fields.get(rules.resource_type)
    data = ",".join(orjson.dumps(render(state, rules, name, i, base, fields, q.additional)).decode() for i in page)
    return f'{{"data":[{data}],"links":{orjson.dumps(page_links).decode()}}}'.encode()


def render(state, rules, name: str, i: int, base: str, fields: list[str] | None, additional: list[str]) -> dict:
    """The resource object of child record ``i`` (a membership renders as its profile plus ``joined_group_at``)."""
    rules = replace(rules, path=SELF_PATHS[name])
    builder = state.builders[name]
    if name not in MEMBERSHIPS:
        return resource(builder, i, rules, base, fields, additional, [])[0]
    profile = int(members(state.dataset, name)[i])
    obj = resource(state.builders["profiles"], profile, rules, base, fields, additional, [])[0]
    if fields is None or "joined_group_at" in fields:
        obj["attributes"]["joined_group_at"] = builder.times(i)[0]
    return obj


def truth(state, name: str, lo: int | None, hi: int | None) -> list[dict[str, Any]]:
    """Every child record whose incremental key is in ``[lo, hi)`` (microseconds), with ``parent_id`` (all of
    them for a child without an incremental key: coupon codes)."""
    ds = state.dataset
    created, updated = ds.arrays(name)
    keys = created if name in MEMBERSHIPS else updated
    keep = alive(ds, name)
    if name in CURSORS:
        keep = keep & (keys >= (lo if lo is not None else keys.min(initial=0)))
        if hi is not None:
            keep &= keys < hi
    parent = state.builders[PARENTS[name]]
    of = parents(ds, name)
    rules = state.rules[name]  # every additional field but the memberships' profile ones (metric properties' samples)
    extra = [] if name in MEMBERSHIPS else [f for fs in rules.additional_fields.values() for f in fs]
    out = []
    for i in np.nonzero(keep)[0].tolist():
        obj = render(state, rules, name, i, "", None if name not in MEMBERSHIPS else ["joined_group_at"], extra)
        obj["parent_id"] = parent.id_of(int(of[i]))
        out.append(obj)
    return out
