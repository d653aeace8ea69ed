"""Which message an event is attributed to, deterministically: the link between the sandbox's events and its
campaigns and flows that the reports count.

Events of email, SMS and order metrics are attributed (by a hash of the event's index) to a campaign message
(half of them), a flow message (a quarter) or nothing. A campaign's messages are the ones its
``campaign-messages`` relationship lists; a flow ``f`` has ``1 + f % 3`` messages, the second one SMS.
The event carries the attribution as Klaviyo does, in its properties: ``$message`` (and ``$flow``), and as an
``attribution`` resource (``include=attributions`` on /api/events, :meth:`Attribution.resources`): relationships
only, naming the event, the campaign and campaign message or the flow and flow message. The sandbox models no
attributed (touch) event and no message variation: those relationships are null.
"""

from __future__ import annotations

import hashlib

import numpy as np

from . import ids
from .dataset import Dataset, mix, mix_np
from .records import CHANNELS, METRICS, Builder

ATTRIBUTED = {"Placed Order", "Ordered Product", "Started Checkout", "Opened Email", "Clicked Email", "Received Email",
              "Bounced Email", "Marked Email as Spam", "Unsubscribed", "Received SMS", "Clicked SMS"}  # fmt: skip
ATTRIBUTED_M = np.array([name in ATTRIBUTED for name in METRICS])
REPORT_CHANNEL = {"email": "email", "sms": "sms", "mobile_push": "push-notification"}  # campaign channel -> report's
CAMPAIGN, FLOW = 0, 1


class Attribution:
    def __init__(self, ds: Dataset, salt: int, campaigns: Builder, flows: Builder) -> None:
        self.ds, self.salt, self.campaigns, self.flows = ds, salt, campaigns, flows
        self._messages: dict[tuple[int, int, int], tuple[str, str, str]] = {}

    @staticmethod
    def _hash_key(i: int) -> int:
        return (i * 81 + 0xA77) & ((1 << 64) - 1)

    def _pick(self, a: int, kind: int, t_us: int) -> tuple[int, int, int]:
        name = "campaigns" if kind == CAMPAIGN else "flows"
        n = self.ds.timelines[name].count_at_least(t_us)
        obj = (a >> 8) % n
        k = (a >> 40) % (1 + obj % 2 if kind == CAMPAIGN else 1 + obj % 3)
        return kind, obj, k

    def of(self, i: int, t_us: int, m: int) -> tuple[int, int, int] | None:
        """(kind, campaign or flow index, message number) of event ``i`` at ``t_us`` of metric ``m``, or None."""
        if METRICS[m % len(METRICS)] not in ATTRIBUTED:
            return None
        a = mix(self.salt ^ self._hash_key(i))
        kind = a % 4
        return None if kind == 3 else self._pick(a, CAMPAIGN if kind < 2 else FLOW, t_us)

    def of_many(self, idx: np.ndarray, t_us: np.ndarray, met: np.ndarray) -> list[tuple[int, int, int] | None]:
        """:meth:`of` for a page of events, the hashes computed at once."""
        a = mix_np(np.uint64(self.salt) ^ (idx.astype(np.uint64) * np.uint64(81) + np.uint64(0xA77)))
        kinds = (a % np.uint64(4)).astype(np.int64)
        keep = ATTRIBUTED_M[met % len(METRICS)] & (kinds != 3)
        out: list[tuple[int, int, int] | None] = [None] * len(idx)
        for j in np.nonzero(keep)[0].tolist():
            out[j] = self._pick(int(a[j]), CAMPAIGN if kinds[j] < 2 else FLOW, int(t_us[j]))
        return out

    def message(self, where: tuple[int, int, int]) -> tuple[str, str, str]:
        """(campaign or flow id, message id, report send channel) of an attribution."""
        hit = self._messages.get(where)
        if hit is None:
            kind, obj, k = where
            if kind == CAMPAIGN:
                b = self.campaigns
                mid = ids.ulid(obj * 4 + k, self.ds.created_us(b.name, obj) // 1000, b.salt ^ 0x4D5)
                hit = (b.id_of(obj), mid, REPORT_CHANNEL[CHANNELS[mix(b.salt ^ obj) % 3]])
            else:
                b = self.flows
                hit = (b.id_of(obj), ids.short_id(obj * 4 + k, b.salt ^ 0xF10F), "sms" if k == 1 else "email")
            self._messages[where] = hit
        return hit

    def props(self, where: tuple[int, int, int] | None) -> str:
        """The event-property text of an attribution (to add inside ``event_properties``)."""
        if where is None:
            return ""
        obj_id, mid, _ = self.message(where)
        return f',"$message":"{mid}"' + (f',"$flow":"{obj_id}"' if where[0] == FLOW else "")

    def resources(self, eid: str, where: tuple[int, int, int] | None, base: str) -> list[dict]:
        """The ``attribution`` resources of event ``eid`` attributed to ``where`` (none when it is not)."""
        if where is None:
            return []
        obj_id, mid, _ = self.message(where)
        aid = hashlib.md5(f"attribution:{eid}".encode()).hexdigest()
        kinds = ("campaign", "campaign-message") if where[0] == CAMPAIGN else ("flow", "flow-message")
        rels = {"event": ("event", eid), "attributed-event": None, "campaign": None, "campaign-message": None,
                "flow": None, "flow-message": None, "flow-message-variation": None}  # fmt: skip
        rels[kinds[0]], rels[kinds[1]] = (kinds[0], obj_id), (kinds[1], mid)
        url = f"{base}/api/attributions/{aid}"
        return [{"type": "attribution", "id": aid, "links": {"self": f"{url}/"}, "relationships": {
            name: {"data": {"type": ref[0], "id": ref[1]} if ref else None,
                   "links": {"self": f"{url}/relationships/{name}/", "related": f"{url}/{name}/"}}
            for name, ref in rels.items()}}]  # fmt: skip
