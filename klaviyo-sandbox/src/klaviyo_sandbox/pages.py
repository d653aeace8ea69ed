"""Cut one page of a validated list request: pick its records, render them, and write the paging links."""

from __future__ import annotations

from typing import Any

import orjson

from . import ids
from .children import PARENTS, alive
from .envelope import included_object, links, prune, resource
from .keyset import key_at, links_cursors, rank_entities, start_position
from .late import LATE_BASE
from .more import coupon_codes_named
from .query import event_bounds, event_matches

# endpoints whose first page has a ``prev`` link too, as recorded (lists: ``page[cursor]=<Filters: any(id,[...])>``)
FIRST_PAGE_PREV = ("lists",)


def _document(data_json: str, page_links: dict, included: list | None) -> bytes:
    tail = orjson.dumps(page_links).decode()
    inc = f',"included":{orjson.dumps(included).decode()}' if included is not None else ""
    return f'{{"data":[{data_json}],"links":{tail}{inc}}}'.encode()


def _included(
    state, wanted: list[tuple[str, str]], base: str, fields: dict[str, list[str]] | None = None
) -> list[dict]:
    """The included resource objects, each once, pruned to ``fields[<type>]`` where the request names it."""
    seen: dict[tuple[str, str], dict] = {}
    for typ, rid in wanted:
        if (typ, rid) not in seen:
            obj = included_object(state, typ, rid, base)
            if fields and typ in fields:
                obj["attributes"] = prune(obj["attributes"], fields[typ])
            seen[(typ, rid)] = obj
    return list(seen.values())


def events_page(state, rules, q, params: dict[str, str], base: str) -> bytes:
    ev = state.events
    lower, upper, rest = event_bounds(q)
    seq = ev.seq(lower, upper)
    desc = q.sort in ("-datetime", "-timestamp")
    start = start_position(q, lambda v, i, incl: seq.rank(int(v), i, desc, incl), ev.index_of)
    size = q.page_size
    if rest or ev.ds.deleted.get("profiles"):  # non-time filters or deleted profiles: scan forward from the start
        picked: list[int] = []
        pos = start
        while pos < seq.total and len(picked) < size:
            for i in seq.run(pos, size, desc):
                pos += 1
                if event_matches(ev, i, rest) and not ev.hidden(i):
                    picked.append(i)
                    if len(picked) == size:
                        break
        scanned, more = pos - start, pos < seq.total
    else:
        picked = list(seq.run(start, size, desc))
        scanned, more = size, start + size < seq.total

    def key(i: int) -> tuple[int, str]:
        return ev.time_us(i), ids.event_id(i, ev.salt)

    nxt, prev = links_cursors(q, state.config.cursor_mode, start, scanned, more,
                              key(picked[0]) if picked else None, key(picked[-1]) if picked else None)  # fmt: skip
    page_links = links(base, rules.path, params, nxt, prev)
    fields = q.fields.get("event")
    # one run of generated events (no late one: a late event and a skipped hidden one would balance the count)
    contiguous = picked and max(picked) < LATE_BASE and picked[-1] - picked[0] == len(picked) - 1
    if not q.includes and fields is None and not desc and contiguous:
        return _document(",".join(ev.render_page(picked[0], picked[-1] + 1, base)), page_links, None)
    objs, wanted, attributions = [], [], []
    for i in picked:
        obj = ev.as_dict(i, base)
        if fields is not None:
            obj["attributes"] = prune(obj["attributes"], fields)
        for rel in q.includes:
            if rel == "attributions":  # to-many: listed, and included whole (they are the event's own)
                found = ev.attributions(i, base)
                obj["relationships"][rel]["data"] = [{"type": a["type"], "id": a["id"]} for a in found]
                attributions.extend(found)
                continue
            data = obj["relationships"][rel].get("data")
            if data:
                wanted.append((data["type"], data["id"]))
        objs.append(obj)
    included = _included(state, wanted, base) + attributions if q.includes else None
    return _document(",".join(orjson.dumps(o).decode() for o in objs), page_links, included)


def entities_page(state, rules, q, params: dict[str, str], base: str) -> bytes:
    within = alive(state.dataset, rules.name) if rules.name in PARENTS else None  # coupon codes of deleted coupons
    named = coupon_codes_named(state, q) if rules.name == "coupon-codes" else None
    within = within if named is None else within & named
    idx, keys = state.select(rules.name, q, (params.get("filter"), q.sort), within)
    builder = state.builders[rules.name]
    desc = bool(q.sort and q.sort.startswith("-"))
    start = start_position(q, lambda v, i, incl: rank_entities(idx, keys, desc, v, i, incl), builder.index_of)
    page = idx[start : start + q.page_size].tolist()
    more = start + q.page_size < len(idx)

    def key(pos: int) -> tuple[Any, str]:
        return key_at(keys, pos), builder.id_of(int(idx[pos]))

    first = key(start) if page else None
    last = key(start + len(page) - 1) if page else None
    nxt, prev = links_cursors(q, state.config.cursor_mode, start, q.page_size, more, first, last)
    if rules.name in FIRST_PAGE_PREV and q.cursor is None:  # not a cursor the sandbox reads: following it is a 400
        prev = f"<Filters: {params.get('filter', '')}>"
    page_links = links(base, rules.path, params, nxt, prev)
    objs, wanted = [], []
    for i in page:
        obj, w = resource(builder, i, rules, base, q.fields.get(rules.resource_type), q.additional, q.includes,
                          state.config.include_limit)  # fmt: skip
        objs.append(obj)
        wanted.extend(w)
    included = _included(state, wanted, base, q.fields) if q.includes else None
    return _document(",".join(orjson.dumps(o).decode() for o in objs), page_links, included)
