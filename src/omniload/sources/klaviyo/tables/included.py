"""Tables read from another endpoint's ``included`` resources (issue #12): campaign messages, campaign tags, flow
tags and event attributions.

Klaviyo returns a campaign's messages and a campaign's or flow's tags only as relationships of the campaign or
flow (``include=campaign-messages``, ``include=tags``). Such a table re-lists its parent endpoint, every
partition, with ``include=`` and the sparse fieldset ``fields[<parent type>]=id`` (no parent attributes), and
keeps one row per (parent, related record); ``TableSpec.include`` tells the decoder (decode.py). The cost is the
parent's listing again: campaigns/100 requests per channel and archived half (6 partitions, campaigns bucket),
flows/50 per half (flows bucket), whatever the number of messages or tags. The parent's cursor does not say
when its messages or tags changed, so these tables are read whole and replaced on every run (never scanned for
deletes: a vanished row is gone on the next load).

Event attributions (``include=attributions`` on /api/events) are the exception: an attribution resource has no
attributes, only relationships (event, attributed-event, campaign, campaign-message, flow, flow-message,
flow-message-variation), each row carries its event's ``datetime`` and is loaded incrementally with it, keyed by
(event_id, id). ``include`` changes neither the page size (up to 1,000) nor the rate limit (the events bucket).
Read on its own it would list every event a second time (``fields[event]=datetime``: small pages, but as many
requests as the events table), so when ``events`` is loaded in the same run the attributions ride along with
its requests instead (ride.py): the events reader asks for ``include=attributions`` and keeps the included
records, and this table is loaded from them at no request of its own. It reads the API itself only when the
events of the run do not cover its interval (loaded alone, loaded first, or its cursor behind the events').
"""

from __future__ import annotations

from dataclasses import replace

from ....types import JSON, TEXT, TS
from ..spec import TableSpec
from .core import CORE

_PARENTS = {t.name: t for t in CORE}


def included(name: str, parent: str, include: str, resource_type: str, columns: dict[str, str], **kw) -> TableSpec:
    """A table of the resources ``include`` names on ``parent``'s records, read with ``parent``'s listing."""
    p = _PARENTS[parent]
    return TableSpec(name, p.path, resource_type, columns, p.burst, p.steady, p.page_size, include=include,
                     partitions=tuple((frag, {}) for frag, _ in p.partitions), bucket=p.rate_bucket, to_one=(p.resource_type,),
                     extra_params={f"fields[{p.resource_type}]": "id", "include": include}, **kw)  # fmt: skip


INCLUDED: list[TableSpec] = [
    included("campaign-messages", "campaigns", "campaign-messages", "campaign-message",
             dict(definition=JSON, send_times=JSON, created_at=TS, updated_at=TS)),
    included("campaign-tags", "campaigns", "tags", "tag", dict(name=TEXT), id_column="tag_id",
             primary_key=("campaign_id", "tag_id")),
    included("flow-tags", "flows", "tags", "tag", dict(name=TEXT), id_column="tag_id", primary_key=("flow_id", "tag_id")),
    # the events' endpoint, limits, page size, cursor and its filters, immutability and lookback
    replace(_PARENTS["events"], name="event_attributions", resource_type="attribution", columns=dict(datetime=TS),
            to_one=("event", "attributed-event", "campaign", "campaign-message", "flow", "flow-message",
                    "flow-message-variation"),
            extra_params={"fields[event]": "datetime", "include": "attributions"}, include="attributions",
            primary_key=("event_id", "id"), bucket=_PARENTS["events"].rate_bucket, derived={}),  # no event properties
]  # fmt: skip
# the include table that rides along with a table's own requests when both are loaded: table -> rider (ride.py)
RIDERS = {"events": "event_attributions"}
