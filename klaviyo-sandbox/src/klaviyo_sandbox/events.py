"""Events, the sandbox's hot path: record ``i`` rendered straight to JSON text from its index.

An event's time comes from the events timeline (pairs of events share a timestamp, so windows get exact
ties), its profile is one that existed at that time, and its metric is one of the account's metrics.
Rendering avoids building dicts so that one core serves hundreds of 1000-event pages a second.
"""

from __future__ import annotations

from datetime import UTC, datetime

import numpy as np
import orjson

from . import ids
from .attribution import Attribution
from .dataset import Dataset, mix, mix_np, salt
from .form_events import FORM_M, FormLinks
from .late import LATE_BASE, EventSeq, LateStore
from .records import FORM_METRICS, METRICS, Builder

_PROPS = {
    "Placed Order": '{{"$event_id":"{eid}","$value":{v:.2f},"$currency_code":"USD","OrderId":"R{n}","ItemNames":["{w}","Gift Card"],"Items":[{{"ProductID":"{p}","Quantity":{q},"ItemPrice":{ip:.2f}}}],"Discount Codes":[],"$extra":{{"source":"shopify","nested":{{"level":2}}}}}}',
    "Ordered Product": '{{"$event_id":"{eid}","$value":{v:.2f},"ProductID":"{p}","ProductName":"{w} item","Quantity":{q},"Categories":["{w}","Sale"]}}',
    "Viewed Product": '{{"$event_id":"{eid}","ProductID":"{p}","ProductName":"{w} item","Price":{ip:.2f},"URL":"https://shop.example.com/p/{p}","Categories":["{w}"]}}',
    "Opened Email": '{{"$event_id":"{eid}","Campaign Name":"{w} campaign","Subject":"Hello from {w}","machine_open":{b},"Inbox Provider":"Gmail"}}',
    "Clicked Email": '{{"$event_id":"{eid}","Campaign Name":"{w} campaign","URL":"https://shop.example.com/c/{n}"}}',
}
_PROPS.update(dict.fromkeys(FORM_METRICS, '{{"$event_id":"{eid}","form_type":"popup","source":"{w}"}}'))  # no $value
_DEFAULT_PROPS = '{{"$event_id":"{eid}","$value":{v:.2f},"source":"{w}","count":{q},"flag":{b}}}'
_WORDS = ["Summer", "Winter", "Flash", "VIP", "Welcome", "Holiday", "Launch", "Restock"]


_DAYS: dict[int, str] = {}


_HEX = "0123456789abcdef"


def _encode_rows(
    parts: list[tuple[np.ndarray, str, int]], insert: tuple[int, str] | None = None, sep: str = ""
) -> list[str]:
    """Vectorised fixed-width encoding: each row is its parts' digits, joined by ``sep``."""
    n = len(parts[0][0])
    mats = []
    for values, alphabet, width in parts:
        codes = np.frombuffer(alphabet.encode(), dtype=np.uint8)
        v = values.astype(np.uint64)
        base = np.uint64(len(alphabet))
        mat = np.empty((n, width), dtype=np.uint8)
        for k in range(width - 1, -1, -1):
            mat[:, k] = codes[(v % base).astype(np.int64)]
            v = v // base
        mats.append(mat)
    if insert is not None:
        pos, text = insert
        mats.insert(pos, np.tile(np.frombuffer(text.encode(), dtype=np.uint8), (n, 1)))
    if sep:
        dash = np.full((n, 1), ord(sep), dtype=np.uint8)
        mats = [m for mat in mats for m in (mat, dash)][:-1]
    full = np.hstack(mats)
    width = full.shape[1]
    blob = full.tobytes().decode()
    return [blob[j * width : (j + 1) * width] for j in range(n)]


def _iso(us: int) -> str:
    s, frac = divmod(us, 1_000_000)
    day, sod = divmod(s, 86400)
    date = _DAYS.get(day)
    if date is None:
        date = _DAYS[day] = datetime.fromtimestamp(day * 86400, tz=UTC).strftime("%Y-%m-%d")
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
        self._metric_ids: dict[int, str] = {}
        self.late = LateStore(ds.seed)
        self.delay_us = 0  # visibility delay: an event shows only this long (sandbox clock) after it exists
        self.attribution = Attribution(
            ds, salt(ds.seed, "events/attribution"), profiles.peer("campaigns"), profiles.peer("flows")
        )
        self.forms = FormLinks(ds, salt(ds.seed, "events/forms"), profiles.peer("forms"))

    def count(self) -> int:
        """Generated events that are visible now (created at least the visibility delay ago)."""
        if not self.delay_us:
            return self.ds.count("events")
        return self.tl.count_until(self.ds.now_us - self.delay_us)

    def seq(self, lower_us: int | None = None, upper_us: int | None = None) -> EventSeq:
        """Every visible event (generated and late) with ``lower_us <= datetime < upper_us``, in page order."""
        late = self.late.visible(self.ds.now_us, self.delay_us) if self.late.items else []
        return EventSeq(self.tl, self.count(), late, lower_us, upper_us)

    def time_us(self, i: int) -> int:
        return self.late.times[i] if i >= LATE_BASE else self.tl.time_us(i)

    def refs(self, i: int, t_us: int) -> tuple[int, int]:
        """(profile index, metric index) of event ``i``: both existed when the event happened."""
        h = mix(self.salt ^ (i << 1))
        n_metrics = self.ds.timelines["metrics"].count_at_least(t_us)
        return h % self.ds.profiles_at(t_us), (h >> 32) % n_metrics

    def hidden(self, i: int) -> bool:
        """Event ``i`` belonged to a profile that was deleted: Klaviyo deletes a profile's events with it."""
        gone = self.ds.deleted.get("profiles")
        return bool(gone) and self.refs(i, self.time_us(i))[0] in gone

    def profile_id(self, i: int) -> str:
        p, _ = self.refs(i, self.time_us(i))
        return self.profiles.id_of(p)

    def metric_id(self, i: int) -> str:
        _, m = self.refs(i, self.time_us(i))
        return self.metrics.id_of(m)

    def render_page(self, lo: int, hi: int, base: str) -> list[str]:
        """Events ``lo..hi-1`` as JSON texts, identical to :meth:`render`; hashes, ids and times are computed
        for the whole page at once with numpy, leaving one string format per event."""
        idx = np.arange(lo, hi, dtype=np.int64)
        u64 = idx.astype(np.uint64)
        salt_ = np.uint64(self.salt)
        t_us = self.tl.times_us(idx)
        secs = t_us // 1_000_000
        whole = np.datetime_as_string(secs.astype("datetime64[s]"), unit="s")
        micro = np.datetime_as_string(t_us.astype("datetime64[us]"), unit="us")
        dts = [d + "+00:00" for d in np.where(t_us % 1_000_000 == 0, whole, micro).tolist()]
        h1 = mix_np(salt_ ^ (u64 << np.uint64(1)))
        ptl, mtl = self.ds.timelines["profiles"], self.ds.timelines["metrics"]
        n_prof = np.maximum(1, ((secs - ptl.start_s) * ptl.units) // ptl.span_s).astype(np.uint64)
        n_met = np.maximum(1, ((secs - mtl.start_s) * mtl.units) // mtl.span_s).astype(np.uint64)
        prof = (h1 % n_prof).astype(np.int64)
        met_np = ((h1 >> np.uint64(32)) % n_met).astype(np.int64)
        met = met_np.tolist()
        extras = [self.attribution.props(a) for a in self.attribution.of_many(idx, t_us, met_np)]
        for j in np.nonzero(FORM_M[met_np % len(METRICS)])[0].tolist():
            extras[j] += self.forms.props(self.forms.of(int(idx[j]), int(t_us[j]), met[j]))
        if self.ds.drift:
            for j, (i, t) in enumerate(zip(idx.tolist(), t_us.tolist(), strict=True)):
                extras[j] += self.drift_props(i, t)
        eids = _encode_rows([(mix_np(salt_ ^ u64) % np.uint64(62**4), ids.B62, 4), (idx, ids.B62, 7)])
        const = ids._enc(self.profiles.salt & ((1 << 40) - 1), ids.B32, 8)
        pids = _encode_rows([(ptl.times_us(prof) // 1000, ids.B32, 10), (prof, ids.B32, 8)], insert=(1, const))
        mids = [self._metric_id(k) for k in met]
        h = mix_np(salt_ ^ (u64 * np.uint64(7) + np.uint64(3)))
        h2 = mix_np(h)
        uuids = _encode_rows([(h >> np.uint64(32), _HEX, 8), ((h >> np.uint64(16)) & np.uint64(0xFFFF), _HEX, 4),
                              (h & np.uint64(0xFFFF), _HEX, 4), (h2 >> np.uint64(48), _HEX, 4),
                              (h2 & np.uint64(0xFFFFFFFFFFFF), _HEX, 12)], sep="-")  # fmt: skip
        text = self._text
        return [text(i, eid, pid, mid, m, dt, ts, hh, 0, base, uuid, extra)
                for i, eid, pid, mid, m, dt, ts, hh, uuid, extra
                in zip(idx.tolist(), eids, pids, mids, met, dts, secs.tolist(), h.tolist(), uuids, extras, strict=False)]  # fmt: skip

    def drift_props(self, i: int, t_us: int) -> str:
        """Schema drift (season.py): from a step on, events carry a new property ``Coupon Code`` (text), from a
        later step as a number."""
        if not self.ds.drifted("new_attribute", t_us):
            return ""
        h = mix(self.salt ^ i ^ 0xC0DE)
        if self.ds.drifted("type_change", t_us):
            return f',"Coupon Code":{(h >> 8) % 100_000}'
        return f',"Coupon Code":"SAVE{(h >> 8) % 100}"'

    def _metric_id(self, m: int) -> str:
        mid = self._metric_ids.get(m)
        if mid is None:
            mid = self._metric_ids[m] = self.metrics.id_of(m)
        return mid

    def render(self, i: int, base: str) -> str:
        t_us = self.time_us(i)
        p, m = self.refs(i, t_us)
        h = mix(self.salt ^ (i * 7 + 3))
        return self._text(i, ids.event_id(i, self.salt), self.profiles.id_of(p), self.metrics.id_of(m), m,
                          _iso(t_us), t_us // 1_000_000, h, mix(h), base, None,
                          self.attribution.props(self.attribution.of(i, t_us, m)) + self.forms.props(self.forms.of(i, t_us, m))
                          + self.drift_props(i, t_us))  # fmt: skip

    @staticmethod
    def _text(i: int, eid: str, pid: str, mid: str, m: int, dt: str, ts: int, h: int, h2: int, base: str,
              uuid: str | None = None, extra: str = "") -> str:  # fmt: skip
        if uuid is None:
            uuid = f"{h >> 32:08x}-{(h >> 16) & 0xFFFF:04x}-{h & 0xFFFF:04x}-{h2 >> 48:04x}-{h2 & 0xFFFFFFFFFFFF:012x}"
        tmpl = _PROPS.get(METRICS[m % len(METRICS)], _DEFAULT_PROPS)
        props = tmpl.format(
            eid=f"{i:x}",
            v=(h % 50000) / 100,
            n=h % 100000,
            w=_WORDS[h % 8],
            p=f"P{(h >> 20) % 5000}",
            q=1 + (h >> 8) % 4,
            ip=((h >> 12) % 20000) / 100,
            b="true" if h & 1 else "false",
        )
        if extra:  # the attributed message, inside the properties object
            props = props[:-1] + extra + "}"
        url = f"{base}/api/events/{eid}"
        return (
            f'{{"type":"event","id":"{eid}","attributes":{{"timestamp":{ts},'
            f'"event_properties":{props},"datetime":"{dt}","uuid":"{uuid}"}},'
            f'"relationships":{{"profile":{{"data":{{"type":"profile","id":"{pid}"}},"links":{{"self":"{url}/relationships/profile/","related":"{url}/profile/"}}}},'
            f'"metric":{{"data":{{"type":"metric","id":"{mid}"}},"links":{{"self":"{url}/relationships/metric/","related":"{url}/metric/"}}}},'
            f'"attributions":{{"links":{{"self":"{url}/relationships/attributions/","related":"{url}/attributions/"}}}}}},'
            f'"links":{{"self":"{url}/"}}}}'
        )

    def as_dict(self, i: int, base: str) -> dict:
        return orjson.loads(self.render(i, base))

    def attributions(self, i: int, base: str) -> list[dict]:
        """The ``attribution`` resources of event ``i`` (``include=attributions``)."""
        t_us = self.time_us(i)
        return self.attribution.resources(
            ids.event_id(i, self.salt), self.attribution.of(i, t_us, self.refs(i, t_us)[1]), base
        )

    def index_of(self, eid: str) -> int | None:
        i = ids.event_index(eid)
        if i is None or ids.event_id(i, self.salt) != eid:
            return None
        if i >= LATE_BASE:
            return i if i in self.late.times else None
        return i if i < self.ds.count("events") else None
