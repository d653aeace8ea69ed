"""Events, the sandbox's hot path: record ``i`` rendered straight to JSON text from its index.

An event's time comes from the events timeline (pairs of events share a timestamp, so windows get exact
ties), its profile is one that existed at that time, and its metric is one of the account's metrics.
Rendering avoids building dicts so that one core serves hundreds of 1000-event pages a second.
"""

from __future__ import annotations

from datetime import datetime, timezone

import orjson

from . import ids
from .dataset import Dataset, mix, salt
from .records import METRICS, Builder

_PROPS = {
    "Placed Order": '{{"$event_id":"{eid}","$value":{v:.2f},"$currency_code":"USD","OrderId":"R{n}","ItemNames":["{w}","Gift Card"],"Items":[{{"ProductID":"{p}","Quantity":{q},"ItemPrice":{ip:.2f}}}],"Discount Codes":[],"$extra":{{"source":"shopify","nested":{{"level":2}}}}}}',
    "Ordered Product": '{{"$event_id":"{eid}","$value":{v:.2f},"ProductID":"{p}","ProductName":"{w} item","Quantity":{q},"Categories":["{w}","Sale"]}}',
    "Viewed Product": '{{"$event_id":"{eid}","ProductID":"{p}","ProductName":"{w} item","Price":{ip:.2f},"URL":"https://shop.example.com/p/{p}","Categories":["{w}"]}}',
    "Opened Email": '{{"$event_id":"{eid}","Campaign Name":"{w} campaign","Subject":"Hello from {w}","$message":"M{n}","machine_open":{b},"Inbox Provider":"Gmail"}}',
    "Clicked Email": '{{"$event_id":"{eid}","Campaign Name":"{w} campaign","URL":"https://shop.example.com/c/{n}","$message":"M{n}"}}',
}
_DEFAULT_PROPS = '{{"$event_id":"{eid}","$value":{v:.2f},"source":"{w}","count":{q},"flag":{b}}}'
_WORDS = ["Summer", "Winter", "Flash", "VIP", "Welcome", "Holiday", "Launch", "Restock"]


_DAYS: dict[int, str] = {}


def _iso(us: int) -> str:
    s, frac = divmod(us, 1_000_000)
    day, sod = divmod(s, 86400)
    date = _DAYS.get(day)
    if date is None:
        date = _DAYS[day] = datetime.fromtimestamp(day * 86400, tz=timezone.utc).strftime("%Y-%m-%d")
    hh, rem = divmod(sod, 3600)
    mm, ss = divmod(rem, 60)
    if frac:
        return f"{date}T{hh:02d}:{mm:02d}:{ss:02d}.{frac:06d}+00:00"
    return f"{date}T{hh:02d}:{mm:02d}:{ss:02d}+00:00"


class Events:
    """Renders events of one dataset; ``base`` is the absolute URL prefix for ``links``."""

    def __init__(self, ds: Dataset, profiles: Builder, metrics: Builder) -> None:
        self.ds = ds
        self.tl = ds.timelines["events"]
        self.salt = salt(ds.seed, "events")
        self.profiles = profiles
        self.metrics = metrics

    def count(self) -> int:
        return self.ds.count("events")

    def time_us(self, i: int) -> int:
        return self.tl.time_us(i)

    def refs(self, i: int, t_us: int) -> tuple[int, int]:
        """(profile index, metric index) of event ``i``: both existed when the event happened."""
        h = mix(self.salt ^ (i << 1))
        n_metrics = self.ds.timelines["metrics"].count_at_least(t_us)
        return h % self.ds.profiles_at(t_us), (h >> 32) % n_metrics

    def profile_id(self, i: int) -> str:
        p, _ = self.refs(i, self.tl.time_us(i))
        return self.profiles.id_of(p)

    def metric_id(self, i: int) -> str:
        _, m = self.refs(i, self.tl.time_us(i))
        return self.metrics.id_of(m)

    def render_page(self, lo: int, hi: int, base: str) -> list[str]:
        """Events ``lo..hi-1`` as JSON texts; the two events of a pair share one time computation."""
        out = []
        t_us = -1
        last_unit = -1
        time_us = self.tl.time_us
        render = self.render
        for i in range(lo, hi):
            unit = i >> 1
            if unit != last_unit:
                t_us = time_us(i)
                dt = _iso(t_us)
                last_unit = unit
            out.append(render(i, base, t_us, dt))
        return out

    def render(self, i: int, base: str, t_us: int | None = None, dt: str | None = None) -> str:
        if t_us is None:
            t_us = self.tl.time_us(i)
        if dt is None:
            dt = _iso(t_us)
        eid = ids.event_id(i, self.salt)
        p, m = self.refs(i, t_us)
        pid = self.profiles.id_of(p)
        mid = self.metrics.id_of(m)
        h = mix(self.salt ^ (i * 7 + 3))
        tmpl = _PROPS.get(METRICS[m % len(METRICS)], _DEFAULT_PROPS)
        props = tmpl.format(
            eid=f"{i:x}", v=(h % 50000) / 100, n=h % 100000, w=_WORDS[h % 8], p=f"P{(h >> 20) % 5000}",
            q=1 + (h >> 8) % 4, ip=((h >> 12) % 20000) / 100, b="true" if h & 1 else "false",
        )
        uuid = f"{h:016x}{mix(h):016x}"
        url = f"{base}/api/events/{eid}"
        return (
            f'{{"type":"event","id":"{eid}","attributes":{{"timestamp":{t_us // 1_000_000},'
            f'"event_properties":{props},"datetime":"{dt}",'
            f'"uuid":"{uuid[:8]}-{uuid[8:12]}-{uuid[12:16]}-{uuid[16:20]}-{uuid[20:32]}"}},'
            f'"relationships":{{"profile":{{"data":{{"type":"profile","id":"{pid}"}},"links":{{"self":"{url}/relationships/profile/","related":"{url}/profile/"}}}},'
            f'"metric":{{"data":{{"type":"metric","id":"{mid}"}},"links":{{"self":"{url}/relationships/metric/","related":"{url}/metric/"}}}},'
            f'"attributions":{{"links":{{"self":"{url}/relationships/attributions/","related":"{url}/attributions/"}}}}}},'
            f'"links":{{"self":"{url}/"}}}}'
        )

    def as_dict(self, i: int, base: str) -> dict:
        return orjson.loads(self.render(i, base))

    def index_of(self, eid: str) -> int | None:
        i = ids.event_index(eid)
        if i is None or i >= self.count() or ids.event_id(i, self.salt) != eid:
            return None
        return i
