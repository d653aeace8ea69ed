"""What the sandbox holds, read straight from its dataset (no HTTP, no filter code): the tests' ground truth.

Archived records are included even where the API lists them only on request (campaigns; flows unless
``archived_visible``): a complete copy partitions on ``archived``. Events are the ones visible now (late ones
included, visibility delay applied, those of deleted profiles gone), in the API's (datetime, index) order.
Deleted records (``POST /__sandbox/delete``) are gone, with what Klaviyo deletes along with them. Child
resources (flow actions, memberships, ...) come from :mod:`.children`, each with its parent's id; include tables
(campaign messages, campaign and flow tags) from their parent's relationships, one record per related resource.
Reports are recomputed from those events (their ``$message``/``$flow``, ``form_id``/``form_version_id``
properties), the campaigns' message lists and the segment memberships' start and end, with the
definitions of each statistic in :class:`Tally` and :mod:`.audience_reports`."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta
from typing import Any

from . import child_pages, children, flow_triggers, form_versions, relationship_pages
from .app import SandboxState
from .attribution import FLOW, REPORT_CHANNEL
from .audience_reports import FormTally, segment_history
from .envelope import included_object, resource
from .query import to_us
from .reports import Tally
from .resources import UPDATED_FIELD

EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
CURSORS: dict[str, str | None] = {**UPDATED_FIELD, "events": "datetime"}  # each resource's incremental key
# opt-in count tables (single-resource endpoints): name -> (parent resource, attribute)
COUNTS = {"list-profile-counts": ("lists", "profile_count"), "segment-profile-counts": ("segments", "profile_count"),
          "campaign-recipient-estimations": ("campaigns", "estimated_recipient_count")}  # fmt: skip
# tables read from a parent's ``included`` resources: name -> (parent resource, relationship)
INCLUDED = {"campaign-messages": ("campaigns", "campaign-messages"), "campaign-tags": ("campaigns", "tags"),
            "flow-tags": ("flows", "tags")}  # fmt: skip


def records(
    state: SandboxState, name: str, start: datetime | None = None, end: datetime | None = None
) -> list[dict[str, Any]]:
    """Every visible record of ``name`` whose incremental key is in ``[start, end)`` (all, for keyless tables)."""
    lo = to_us(start) if start else None
    hi = to_us(end) if end else None
    ds = state.dataset
    if name in (
        "tag-links",
        "catalog-item-categories",
        *flow_triggers.PARENT,
    ):  # relationship endpoints: identifiers only
        return relationship_pages.truth(state, name)
    if name in INCLUDED:  # one record per (parent, related record), read from the parent's relationships
        parent, rel = INCLUDED[name]
        owner = state.rules[parent].resource_type
        out = []
        for rec in records(state, parent):
            for ref in (rec.get("relationships", {}).get(rel) or {}).get("data") or ():
                obj = included_object(state, ref["type"], ref["id"], "")
                out.append(
                    {
                        "id": ref["id"],
                        "attributes": obj["attributes"],
                        "relationships": {owner: {"data": {"id": rec["id"]}}},
                    }
                )
        return out
    if name in COUNTS:  # one count per parent, recomputed from the memberships served (``parent_id``: its id)
        return _counts(state, name)
    if name == "form-versions":  # a form's versions, with the form's id as ``parent_id``
        return form_versions.truth(state, lo, hi)
    if name in children.PARENTS:  # child resources carry their parent's id as ``parent_id``
        return child_pages.truth(state, name, lo, hi)
    if name == "event_attributions":  # the attributions of those events, each with its event's datetime
        out = []
        for e in records(state, "events", start, end):
            for a in state.events.attributions(state.events.index_of(e["id"]), ""):
                out.append({**a, "attributes": {"datetime": e["attributes"]["datetime"]}})
        return out
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
        obj, _ = resource(builder, i, rules, "", None, extra, [], complete=True)
        if name == "campaigns":
            obj["channel"] = builder.build(i)[2]["messages.channel"]
        out.append(obj)
    return out


def _counts(state: SandboxState, name: str) -> list[dict[str, Any]]:
    """A list's or segment's members now (``profile_count``), from the memberships the API serves; or a campaign's
    expected recipients (``estimated_recipient_count``): the distinct profiles now in the lists its audience
    includes, less those in the lists it excludes, and for an email campaign less the profiles whose email
    marketing is suppressed."""
    parent, attribute = COUNTS[name]
    kind = "segment-memberships" if parent == "segments" else "list-memberships"
    members: dict[str, set[str]] = {}
    for m in records(state, kind):
        members.setdefault(m["parent_id"], set()).add(m["id"])
    suppressed: set[str] = set()
    if parent == "campaigns":
        suppressed = {p["id"] for p in records(state, "profiles")
                      if p["attributes"]["subscriptions"]["email"]["marketing"]["suppression"]}  # fmt: skip
    out = []
    for rec in records(state, parent):
        if parent == "campaigns":
            audiences = rec["attributes"]["audiences"]
            reach = set().union(*(members.get(x, set()) for x in audiences["included"]))
            reach -= set().union(*(members.get(x, set()) for x in audiences["excluded"] or ()))
            value = len(reach - suppressed) if rec["channel"] == "email" else len(reach)
        else:
            value = len(members.get(rec["id"], ()))
        out.append({"id": rec["id"], "attributes": {attribute: value}, "parent_id": rec["id"]})
    return out


def _metric_names(state: SandboxState) -> dict[str, str]:
    """metric id -> its base name (the account's later copies are named "Placed Order (1)", ...)."""
    return {m["id"]: re.sub(r" \(\d+\)$", "", m["attributes"]["name"]) for m in records(state, "metrics")}


def _groups(state: SandboxState, family: str) -> dict[str, tuple[str, str, str]]:
    """message id -> (campaign or flow id, message id, report channel), as the campaigns and flows APIs list them."""
    out = {}
    if family == "campaign":
        for c in records(state, "campaigns"):
            for ref in c["relationships"]["campaign-messages"]["data"]:
                out[ref["id"]] = (c["id"], ref["id"], REPORT_CHANNEL[c["channel"]])
    else:
        for f in records(state, "flows"):
            for k in range(3):  # a flow's messages (attribution.py): the second one is SMS
                fid, mid, channel = state.events.attribution.message(
                    (FLOW, state.builders["flows"].index_of(f["id"]), k)
                )
                out[mid] = (fid, mid, channel)
    return out


def _days(start: datetime, end: datetime) -> list[datetime]:
    return [start + timedelta(days=d) for d in range((end - start).days)]


def _periods(start: datetime, end: datetime, whole: bool) -> list[tuple[datetime, datetime]]:
    """The periods a report tallies: each day of ``[start, end)`` (in ``start``'s zone), or the whole timeframe
    (a values report: ``whole``), keyed by their start (and, whole, their end too)."""
    return [(start, end)] if whole else [(d, d + timedelta(days=1)) for d in _days(start, end)]


def _key(lo: datetime, hi: datetime, whole: bool) -> tuple:
    return (lo, hi) if whole else (lo,)


def message_report(state: SandboxState, family: str, start: datetime, end: datetime, conversion: str,
                   whole: bool = False) -> dict[tuple, dict]:  # fmt: skip
    """(group id, message id, channel, day start) -> statistics, from the events as the API serves them, for every
    day of ``[start, end)`` on which a message's attributed events give a statistic other than zero; ``whole``:
    (group id, message id, channel, start, end) -> the totals of the timeframe (a values report)."""
    names, groups = _metric_names(state), _groups(state, family)
    out: dict[tuple, dict] = {}
    for day, day_end in _periods(start, end, whole):
        tallies: dict[tuple, Tally] = {}
        for e in records(state, "events", day, day_end):
            props = e["attributes"]["event_properties"]
            if "$message" not in props or ("$flow" in props) != (family == "flow"):
                continue
            metric = e["relationships"]["metric"]["data"]["id"]
            group = groups[props["$message"]]
            tallies.setdefault(group, Tally()).add(names[metric], e["relationships"]["profile"]["data"]["id"],
                                                   props.get("$value"), metric == conversion)  # fmt: skip
        for group, tally in tallies.items():
            stats = tally.statistics()
            if any(stats.values()):
                out[(*group, *_key(day, day_end, whole))] = stats
    return out


def metric_aggregates(state: SandboxState, start: datetime, end: datetime) -> dict[tuple, dict]:
    """(metric id, day start) -> count, sum_value, unique, for every metric and day with events."""
    out: dict[tuple, dict] = {}
    for day in _days(start, end):
        per: dict[str, list] = {}
        for e in records(state, "events", day, day + timedelta(days=1)):
            acc = per.setdefault(e["relationships"]["metric"]["data"]["id"], [0, 0.0, set()])
            acc[0] += 1
            acc[1] += e["attributes"]["event_properties"].get("$value") or 0.0
            acc[2].add(e["relationships"]["profile"]["data"]["id"])
        for metric, (count, total, who) in per.items():
            out[(metric, day)] = {"count": count, "sum_value": round(total, 2), "unique": len(who)}
    return out


def attributed_conversions(state: SandboxState, start: datetime, end: datetime, conversion: str) -> dict[tuple, dict]:
    """(conversion metric id, attributed flow, attributed message, day start) -> count, sum_value, unique of the
    conversion metric's served events by their ``$flow`` and ``$message`` properties ("" where they have none)."""
    out: dict[tuple, dict] = {}
    for day in _days(start, end):
        per: dict[tuple, list] = {}
        for e in records(state, "events", day, day + timedelta(days=1)):
            if e["relationships"]["metric"]["data"]["id"] == conversion:
                props = e["attributes"]["event_properties"]
                acc = per.setdefault(
                    (conversion, props.get("$flow", ""), props.get("$message", ""), day), [0, 0.0, set()]
                )
                acc[0] += 1
                acc[1] += props.get("$value") or 0.0
                acc[2].add(e["relationships"]["profile"]["data"]["id"])
        out.update({k: {"count": n, "sum_value": round(v, 2), "unique": len(who)} for k, (n, v, who) in per.items()})
    return out


def form_report(state: SandboxState, start: datetime, end: datetime, whole: bool = False) -> dict[tuple, dict]:
    """(form id, form version id, day start) -> statistics, from the served events' ``form_id`` and
    ``form_version_id`` properties, for every day on which a form version's statistics are not all zero
    (``whole``: the timeframe's totals, keyed by its start and end)."""
    names = _metric_names(state)
    out: dict[tuple, dict] = {}
    for day, day_end in _periods(start, end, whole):
        tallies: dict[tuple, FormTally] = {}
        for e in records(state, "events", day, day_end):
            props = e["attributes"]["event_properties"]
            if "form_id" in props:
                tally = tallies.setdefault(
                    (props["form_id"], props["form_version_id"], *_key(day, day_end, whole)), FormTally()
                )
                tally.add(
                    names[e["relationships"]["metric"]["data"]["id"]],
                    e["relationships"]["profile"]["data"]["id"],
                    None,
                    False,
                )
        out.update({k: t.statistics() for k, t in tallies.items()})
    return out


def segment_report(state: SandboxState, start: datetime, end: datetime, whole: bool = False) -> dict[tuple, dict]:
    """(segment id, day start) -> members added and removed, net change and members at the day's end, from every
    segment membership there ever was (the served ones' ``joined_group_at``, and the ended ones' start and end,
    ``audience_reports.segment_history``), for every day on which a segment has members or loses some
    (``whole``: the timeframe's, keyed by its start and end)."""
    of, joined_us, left_us = segment_history(state)
    segments = state.builders["segments"]
    spans: dict[str, list[tuple[datetime, datetime | None]]] = {}
    for s, j, lft in zip(of.tolist(), joined_us.tolist(), left_us.tolist(), strict=True):
        ended = None if lft == children.NEVER else EPOCH + timedelta(microseconds=lft)
        spans.setdefault(segments.id_of(s), []).append((EPOCH + timedelta(microseconds=j), ended))
    out: dict[tuple, dict] = {}
    for segment, times in spans.items():
        for day, day_end in _periods(start, end, whole):
            added = sum(day <= t < day_end for t, _ in times)
            removed = sum(e is not None and day <= e < day_end for _, e in times)
            total = sum(t < day_end and (e is None or e >= day_end) for t, e in times)
            if total or added or removed:
                out[(segment, *_key(day, day_end, whole))] = {"members_added": added, "members_removed": removed,
                                                             "net_members_changed": added - removed,
                                                             "total_members": total}  # fmt: skip
    return out
