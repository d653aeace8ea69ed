"""A form's versions (issue #25): ``/api/forms/{id}/form-versions``, the versions the form events and form reports
already name (form_events.py), served as a child endpoint of their own.

Form ``f`` has ``1 + f % 2`` versions (an A/B test when 2); version ``k``'s id is drawn from ``(form, k)``, so the
``form_version_id`` of a form event is a version this endpoint lists. A version is made with its form and changes
with it: ``created_at`` is the form's, ``updated_at`` the form's (so a form the clock touches has its versions
touched too), ``status`` the form's; ``form_type`` and ``variation_name`` are drawn from ``(form, k)``; ``ab_test``
names the variation when the form has two versions. Values follow ``FormVersionResponseObjectResource`` of the
spec (the conformance test validates the answers). A deleted form's endpoint answers 404, as every child's.

A form holds at most two versions, so the page is cut from them directly (filters on ``updated_at``,
``created_at``, ``form_type``, ``status``; sorts on the times; offset cursors for ``page[size]=1``).
"""

from __future__ import annotations

from typing import Any
from urllib.parse import quote

import orjson

from . import ids
from .child_pages import UnknownParent
from .dataset import mix
from .envelope import links, prune
from .keyset import links_cursors
from .query import QueryError, _matches, field_value

FORM_TYPES = ["popup", "embed", "flyout", "full_page", "banner"]
VARIATIONS = ["A", "B"]
PATH = "/api/forms/{id}/form-versions"


def count(form: int) -> int:
    """How many versions form ``form`` has."""
    return 1 + form % 2


def version_id(forms, form: int, k: int) -> str:
    """The id of version ``k`` of form ``form`` (``forms``: the forms' builder)."""
    return ids.short_id(form * 2 + k, forms.salt ^ 0xF0F5)


def versions(state, form: int, base: str) -> list[dict[str, Any]]:
    """The resource objects of form ``form``'s versions, in version order."""
    forms = state.builders["forms"]
    attrs, _, _ = forms.build(form)
    form_id = forms.id_of(form)
    out = []
    for k in range(count(form)):
        vid = version_id(forms, form, k)
        h = mix(forms.salt ^ (form * 2 + k) ^ 0xF0F6)
        url = f"{base}/api/form-versions/{quote(vid, safe='')}"
        two = count(form) > 1
        out.append({"type": "form-version", "id": vid, "attributes": {
            "form_type": FORM_TYPES[h % len(FORM_TYPES)], "variation_name": f"Version {VARIATIONS[k]}" if two else "Default",
            "ab_test": {"variation_name": VARIATIONS[k]} if two else None, "status": attrs["status"],
            "created_at": attrs["created_at"], "updated_at": attrs["updated_at"]},
            "relationships": {"form": {"data": {"type": "form", "id": form_id},
                                       "links": {"self": f"{url}/relationships/form/", "related": f"{url}/form/"}}},
            "links": {"self": f"{url}/"}})  # fmt: skip
    return out


def _form_index(state, form_id: str) -> int:
    forms, ds = state.builders["forms"], state.dataset
    f = forms.index_of(form_id)
    if f is None or f >= ds.count("forms") or f in ds.deleted.get("forms", ()):
        raise UnknownParent(f"A form with id {form_id} does not exist.")
    return f


def page(state, rules, q, params: dict[str, str], base: str, form_id: str) -> bytes:
    """One page of ``/api/forms/{form_id}/form-versions`` for the validated query ``q``."""
    found = versions(state, _form_index(state, form_id), base)
    picked = [v for v in found if all(_matches(field_value(v["attributes"], {}, {}, v["id"], c.field), c, q.seconds)
                                      for c in q.conditions)]  # fmt: skip
    if q.sort:
        key = q.sort.lstrip("-")
        picked.sort(key=lambda v: v["attributes"][key], reverse=q.sort.startswith("-"))
    if q.cursor is not None and q.cursor.kind != "pos":  # the sandbox wrote none but offset cursors here
        raise QueryError("Invalid page cursor.", "page[cursor]")
    start = q.cursor.offset if q.cursor is not None else 0
    chosen = picked[start : start + q.page_size]
    nxt, prev = links_cursors(q, "offset", start, q.page_size, start + q.page_size < len(picked), None, None)
    fields = q.fields.get(rules.resource_type)
    if fields is not None:
        chosen = [{**v, "attributes": prune(v["attributes"], fields)} for v in chosen]
    page_links = links(base, PATH.replace("{id}", quote(form_id, safe="")), params, nxt, prev)
    return orjson.dumps({"data": chosen, "links": page_links})


def truth(state, lo: int | None, hi: int | None) -> list[dict[str, Any]]:
    """Every version of every form that exists, whose ``updated_at`` is in ``[lo, hi)`` (microseconds), with
    ``parent_id`` (the form's id)."""
    ds = state.dataset
    _, updated = ds.arrays("forms")
    gone = ds.deleted.get("forms", set())
    out = []
    for f in range(ds.count("forms")):
        t = int(updated[f])
        if f in gone or (lo is not None and t < lo) or (hi is not None and t >= hi):
            continue
        out.extend({**v, "parent_id": state.builders["forms"].id_of(f)} for v in versions(state, f, ""))
    return out
