"""Single-resource GETs (issue #25): ``/api/lists/{id}`` and ``/api/segments/{id}`` (with
``additional-fields[list|segment]=profile_count``) and ``/api/campaign-recipient-estimations/{id}``, the counts
analysts ask for that no list endpoint gives.

Their rules are the rules file's ``singles`` (generated from the spec like every other): sparse fields, additional
fields, includes, and the lower rate limit ``profile_count`` brings (1/s, 15/m, stated in the endpoint's
description), which :func:`bucket` names so the server paces it apart. A list's or segment's ``profile_count``
is its members now (the memberships its ``/profiles`` endpoint serves: :func:`members`); a campaign's
``estimated_recipient_count`` the profiles its audience would reach now (:func:`estimated_recipients`), so a
count follows the memberships and suppressions as the clock moves. An
unknown or deleted id answers 404.
"""

from __future__ import annotations

from dataclasses import replace
from typing import Any
from urllib.parse import quote

import numpy as np
import orjson

from . import children, consent
from .child_pages import UnknownParent
from .envelope import resource
from .rules import EndpointRules, rules_at

# sandbox endpoint name -> (spec path, the resource whose record is asked)
SINGLES = {"lists:one": ("/api/lists/{id}", "lists"), "segments:one": ("/api/segments/{id}", "segments"),
           "campaign-recipient-estimations": ("/api/campaign-recipient-estimations/{id}", "campaigns")}  # fmt: skip
MEMBERSHIPS = {"lists": "list-memberships", "segments": "segment-memberships"}


def single_rules() -> dict[str, EndpointRules]:
    """The rules of every single-resource GET served, keyed by sandbox name."""
    return {name: rules_at(name, path, "singles") for name, (path, _) in SINGLES.items()}


def name_of(collection: str) -> str | None:
    """The sandbox name of ``/api/<collection>/{id}``, if it is served."""
    return next((n for n, (path, _) in SINGLES.items() if path == f"/api/{collection}/{{id}}"), None)


def bucket(rules: EndpointRules, params: dict[str, str]) -> tuple[str, int, int]:
    """(rate-limit bucket, burst, steady) of a request: the endpoint's, or the lower one an additional field asks."""
    for key, (burst, steady) in rules.additional_limits.items():
        param, value = key.split("=", 1)
        if value in params.get(param, "").split(","):
            return f"{rules.name}:{value}", burst, steady
    return rules.name, rules.burst, rules.steady


def members(state, resource_name: str) -> np.ndarray:
    """The members now of every record of ``lists`` or ``segments`` (by index)."""
    ds, name = state.dataset, MEMBERSHIPS[resource_name]
    of = children.parents(ds, name)[children.alive(ds, name)]
    return np.bincount(of, minlength=ds.count(resource_name))


def estimated_recipients(state, campaign: int) -> int:
    """Klaviyo's expected recipients of campaign ``campaign``, as its help centre defines them: the profiles now in
    the lists its audience includes, each once, less those in the lists it excludes, and for an email campaign
    less the profiles suppressed from email (unsubscribed or globally suppressed)."""
    ds, lists = state.dataset, state.builders["lists"]
    attrs, _, hidden = state.builders["campaigns"].build(campaign)
    alive = children.alive(ds, "list-memberships")
    of, who = children.parents(ds, "list-memberships")[alive], children.members(ds, "list-memberships")[alive]

    def profiles(ids: list[str] | None) -> set[int]:
        wanted = [i for i in (lists.index_of(x) for x in ids or ()) if i is not None]
        return set(who[np.isin(of, wanted)].tolist())

    out = profiles(attrs["audiences"]["included"]) - profiles(attrs["audiences"]["excluded"])
    if hidden["messages.channel"] == "email":
        out -= set(np.nonzero(suppressed(state) >= 0)[0].tolist())
    return len(out)


def suppressed(state) -> np.ndarray:
    """Every profile's email suppression time (-1: not suppressed), computed once per clock version."""
    ds = state.dataset
    return children._cached(ds, "suppressed", lambda: consent.suppressed_us(ds, state.builders["profiles"]))


def _index(state, resource_name: str, rid: str) -> int:
    ds = state.dataset
    i = state.builders[resource_name].index_of(rid)
    if i is None or i >= ds.count(resource_name) or i in ds.deleted.get(resource_name, ()):
        raise UnknownParent(f"A {resource_name.rstrip('s')} with id {rid} does not exist.")
    return i


def record(state, rules: EndpointRules, q, base: str, rid: str) -> dict[str, Any]:
    """The resource object ``GET`` answers for ``rid`` (``q``: the validated query)."""
    _, parent = SINGLES[rules.name]
    i = _index(state, parent, rid)
    url = f"{base}{SINGLES[rules.name][0].replace('{id}', quote(rid, safe=''))}/"
    fields = q.fields.get(rules.resource_type)
    if parent == "campaigns":
        attrs = {"estimated_recipient_count": estimated_recipients(state, i)}
        attrs = {k: v for k, v in attrs.items() if fields is None or k in fields}
        return {"type": rules.resource_type, "id": rid, "attributes": attrs, "links": {"self": url}}
    listed = replace(rules, path=f"/api/{parent}")
    obj, _ = resource(state.builders[parent], i, listed, base, fields, [], [])  # (includes: not modelled here)
    if "profile_count" in q.additional:  # only when asked for, whatever the sparse fieldset says
        obj["attributes"]["profile_count"] = int(members(state, parent)[i])
    return obj


def page(state, rules: EndpointRules, q, params: dict[str, str], base: str, rid: str) -> bytes:
    """The whole answer: ``{"data": <resource object>, "links": {"self": ...}}``."""
    obj = record(state, rules, q, base, rid)
    return orjson.dumps({"data": obj, "links": {"self": obj["links"]["self"]}})
