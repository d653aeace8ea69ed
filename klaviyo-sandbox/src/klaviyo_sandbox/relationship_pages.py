"""Relationship endpoints: ``/api/tags/{id}/relationships/{campaigns,flows,lists,segments}``,
``/api/catalog-items/{id}/relationships/{categories,variants}`` and the flow triggers of lists, segments and metrics
(``/api/lists/{id}/relationships/flow-triggers``, ...: :mod:`.flow_triggers`).

They answer resource identifiers only (``{"type", "id"}``, no attributes, no links per record). A tag's campaigns,
flows, lists and segments are those whose ``tags`` relationship names it (:func:`.more.tags_of`, drawn when each was
created, so the links never change); a catalog item's category is the one it was created in. The tag endpoints
take no paging parameters (one answer holds every link); the catalog endpoints accept them, and their one page
holds an item's only category or all its variants (fewer than 100 at every scale: a variant belongs to one of the
items that existed when it was created).
"""

from __future__ import annotations

from typing import Any

import orjson

from . import flow_triggers
from .child_pages import UnknownParent
from .envelope import links
from .more import tags_of
from .query import QueryError
from .records import variants_of

TAG_KINDS = ("campaigns", "flows", "lists", "segments")
# sandbox endpoint name -> (parent resource, related resource)
RELATED = {**{f"tag-links:{k}": ("tags", k) for k in TAG_KINDS}, "catalog-item-categories": ("catalog-items", "catalog-categories"),
           "catalog-item-variants": ("catalog-items", "catalog-variants"),
           **{name: (parent, "flows") for name, parent in flow_triggers.PARENT.items()}}  # fmt: skip
PATHS = {**flow_triggers.PATHS, **{f"tag-links:{k}": f"/api/tags/{{id}}/relationships/{k}" for k in TAG_KINDS},
         "catalog-item-categories": "/api/catalog-items/{id}/relationships/categories",
         "catalog-item-variants": "/api/catalog-items/{id}/relationships/variants"}  # fmt: skip


def related(state, name: str, parent_index: int) -> list[tuple[str, str]]:
    """The (type, id) pairs parent record ``parent_index`` of endpoint ``name`` links to, in index order."""
    parent, kind = RELATED[name]
    ds = state.dataset
    if kind == "catalog-variants":
        return variants_of(state.builders[parent], parent_index)
    if name in flow_triggers.PARENT:  # flow triggers (flow_triggers.py)
        return flow_triggers.triggered(state, parent, parent_index)
    if parent == "catalog-items":
        category = state.builders[parent].build(parent_index)[2]["category.id"]
        return [("catalog-category", category)]
    tag = ("tag", state.builders["tags"].id_of(parent_index))
    builder = state.builders[kind]
    live = ds.live_mask(kind, ds.count(kind))
    typ = state.rules[name].resource_type
    return [(typ, builder.id_of(i)) for i in range(len(live)) if live[i] and tag in tags_of(builder, i)]


def relationship_page(state, rules, q, params: dict[str, str], base: str, parent_id: str) -> bytes:
    parent, _ = RELATED[rules.name]
    ds = state.dataset
    pidx = state.builders[parent].index_of(parent_id)
    if pidx is None or pidx in ds.deleted.get(parent, ()):
        raise UnknownParent(f"A {parent.rstrip('s')} with id {parent_id} does not exist.")
    if q.cursor is not None:  # every answer holds all the links (an item has one category): no cursor is issued
        raise QueryError("Invalid page cursor.", "page[cursor]")
    data: list[dict[str, Any]] = [{"type": t, "id": i} for t, i in related(state, rules.name, pidx)]
    page_links = links(base, rules.path.replace("{id}", parent_id), params, None, None)
    return orjson.dumps({"data": data, "links": page_links})


def truth(state, name: str) -> list[dict[str, Any]]:
    """Every link of the table ``name`` (``tag-links`` or ``catalog-item-categories``) as a record with
    ``parent_id`` (and ``kind`` for tag links)."""
    out = []
    for endpoint, (parent, kind) in RELATED.items():
        if endpoint.split(":")[0] != name:
            continue
        builder = state.builders[parent]
        live = state.dataset.live_mask(parent, state.dataset.count(parent))
        for p in range(len(live)):
            if live[p]:
                for _, rid in related(state, endpoint, p):
                    rec = {"id": rid, "attributes": {}, "parent_id": builder.id_of(p)}
                    out.append({**rec, "kind": kind} if name == "tag-links" else rec)
    return out
