"""JSON:API documents the sandbox sends: resource objects, `included`, paging links and error bodies."""

from __future__ import annotations

import base64
import uuid
from typing import Any
from urllib.parse import quote, urlencode

import orjson

from .more import campaign_message

INCLUDED_BUILDERS = {"profile": "profiles", "metric": "metrics", "tag": "tags", "flow": "flows",
                     "catalog-variant": "catalog-variants", "list": "lists", "segment": "segments",
                     "tag-group": "tag-groups", "coupon": "coupons", "catalog-item": "catalog-items"}  # fmt: skip


def error_body(status: int, code: str, title: str, detail: str, parameter: str | None = None) -> bytes:
    source: dict[str, str] = {"parameter": parameter} if parameter else {"pointer": "/data/"}
    err = {"id": str(uuid.uuid4()), "status": status, "code": code, "title": title, "detail": detail,
           "source": source, "links": {}, "meta": {}}  # fmt: skip
    return orjson.dumps({"errors": [err]})


def encode_cursor(offset: int) -> str:
    return base64.urlsafe_b64encode(f"next::pos::{offset}".encode()).decode().rstrip("=")


def decode_cursor(text: str) -> int | None:
    try:
        raw = base64.urlsafe_b64decode(text + "=" * (-len(text) % 4)).decode()
    except (ValueError, UnicodeDecodeError):
        return None
    prefix = "next::pos::"
    if not raw.startswith(prefix) or not raw[len(prefix) :].isdigit():
        return None
    return int(raw[len(prefix) :])


def links(base: str, path: str, params: dict[str, str], nxt: str | None, prev: str | None) -> dict[str, Any]:
    """``self``/``next``/``prev`` as absolute URLs that keep the whole query (brackets percent-encoded);
    ``self`` repeats the request's own cursor, ``next``/``prev`` carry the given cursor texts (None: null)."""
    rest = {k: v for k, v in params.items() if k != "page[cursor]"}
    query = urlencode(rest, quote_via=quote, safe="")
    prefix = f"{base}{path}?{query}&" if query else f"{base}{path}?"

    def at(cursor: str) -> str:
        return f"{prefix}page%5Bcursor%5D={quote(cursor, safe='')}"

    own = params.get("page[cursor]")
    self_url = at(own) if own else (f"{base}{path}?{query}" if query else f"{base}{path}")
    return {"self": self_url, "next": at(nxt) if nxt else None, "prev": at(prev) if prev else None}


def prune(attrs: dict[str, Any], wanted: list[str]) -> dict[str, Any]:
    """Sparse fieldsets: keep the listed attributes; ``a.b`` keeps only ``b`` inside object ``a``."""
    out: dict[str, Any] = {}
    for f in wanted:
        if f == "id":
            continue
        head, _, tail = f.partition(".")
        if head not in attrs:
            continue
        if not tail:
            out[head] = attrs[head]
        elif isinstance(attrs[head], dict):
            node = out.setdefault(head, {})
            if isinstance(node, dict):
                sub = prune(attrs[head], [tail])
                node.update(sub)
        else:
            out.setdefault(head, attrs[head])
    return out


# relationships whose ``data`` Klaviyo sends only when ``include`` names them, as the recordings show: a catalog
# variant's ``item`` never (links only; variants take no include), a catalog item's ``variants`` with include=variants
DATA_WHEN_INCLUDED = {
    "catalog-variant": ("item",),
    "catalog-item": ("variants",),
    # custom objects: their spec does not let a to-one relationship's data be null [spec]
    "object-type": ("current-schema", "draft-schema"),
    "object-schema": ("source-mapping",),
}


def resource(builder, i: int, rules, base: str, fields: list[str] | None, additional: list[str], includes: list[str],
             limit: int | None = None, complete: bool = False):  # fmt: skip
    """One resource object plus the (type, id) pairs its included relationships point at. ``limit``: an included
    to-many relationship names at most this many records; ``complete``: every to-one relationship's data, as
    the sandbox holds it (the tests' truth)."""
    attrs, rels, hidden = builder.build(i)
    if fields is not None:
        attrs = prune(attrs, fields)
    for extra in additional:  # asked for explicitly: present whatever the sparse fieldset says
        attrs[extra] = hidden.get("_additional", {}).get(extra)
    rid = builder.id_of(i)
    url = f"{base}{rules.path}/{quote(rid, safe='')}"
    relationships: dict[str, Any] = {}
    wanted: list[tuple[str, str]] = []
    for name, spec in rules.relationships.items():
        links = {"self": f"{url}/relationships/{name}/", "related": f"{url}/{name}/"}
        val = rels.get(name)
        hide = not (complete and spec["cardinality"] == "to-one") and name not in includes
        if hide and name in DATA_WHEN_INCLUDED.get(rules.resource_type, ()):
            relationships[name] = {"links": links}
        elif spec["cardinality"] == "to-one":
            data = {"type": val[0], "id": val[1]} if val else None
            relationships[name] = {"data": data, "links": links}
            if val and name in includes:
                wanted.append(val)
        elif val or name in includes:
            items = list(val or [])[:limit] if name in includes and limit else list(val or [])
            relationships[name] = {"data": [{"type": t, "id": x} for t, x in items], "links": links}
            if name in includes:
                wanted.extend(items)
        else:
            relationships[name] = {"links": links}
    obj = {"type": rules.resource_type, "id": rid, "attributes": attrs, "links": {"self": f"{url}/"}}
    if relationships:
        obj["relationships"] = relationships
    return obj, wanted


def included_object(state, typ: str, rid: str, base: str) -> dict[str, Any]:
    """The resource object of an included (type, id); types the sandbox does not model get bare objects."""
    name = INCLUDED_BUILDERS.get(typ)
    if name:
        builder = state.builders[name]
        i = builder.index_of(rid)
        if i is not None:
            attrs, _, _ = builder.build(i)
            return {
                "type": typ,
                "id": rid,
                "attributes": attrs,
                "links": {"self": f"{base}/api/{name}/{quote(rid, safe='')}/"},
            }
    attrs: dict[str, Any] = {}
    if typ == "campaign-message":
        attrs = campaign_message(state, rid) or {}
        return {"type": typ, "id": rid, "attributes": attrs, "links": {"self": f"{base}/api/campaign-messages/{rid}/"}}
    if typ == "tag-group":
        attrs = {"name": "Default group", "exclusive": False, "default": True}
    return {"type": typ, "id": rid, "attributes": attrs, "links": {"self": f"{base}/api/{typ}s/{rid}/"}}
