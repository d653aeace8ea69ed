"""The sandbox's world: a simulated clock and deterministic timelines of every resource.

Nothing is stored per record. Record ``i`` of a resource is derived from ``(seed, resource, i)``; its creation
time is a monotone function of ``i``, so a datetime range maps to an index range by bisection and 10 million
events cost no memory. Advancing the clock makes new records appear (those created up to the new "now") and
touches a deterministic share of existing ones, giving them a newer ``updated`` (kept in small override maps).
"""

from __future__ import annotations

import random
import threading
from dataclasses import dataclass, field
from datetime import UTC, datetime

import numpy as np

M64 = (1 << 64) - 1
DEFAULT_NOW = datetime(2026, 7, 1, tzinfo=UTC)
HISTORY_DAYS = 730
DAY_US = 86_400_000_000  # a day in microseconds

# Resources whose times Klaviyo keeps in whole seconds (recorded lists; segments, metrics); every other resource's
# times carry microseconds, also when the clock touches a record (recorded profiles, templates, mapped metrics, ...)
WHOLE_SECONDS = ("lists", "segments", "metrics")
SINGLE = (
    "accounts",
    "tracking-settings",
)  # one record whatever the scale and the clock: the API key's own account (and its settings)
TOUCH_SHARE = 0.02  # share of existing records that get a newer update time on each clock advance
ARCHIVE_SHARE = {"flows": 0.02, "campaigns": 0.02}  # share archived on each clock advance (newer update time too)


def mix(x: int) -> int:
    """splitmix64 finaliser: a fast, well-spread 64-bit hash of an integer."""
    x = (x + 0x9E3779B97F4A7C15) & M64
    x = ((x ^ (x >> 30)) * 0xBF58476D1CE4E5B9) & M64
    x = ((x ^ (x >> 27)) * 0x94D049BB133111EB) & M64
    return x ^ (x >> 31)


def mix_np(x: np.ndarray) -> np.ndarray:
    x = x.astype(np.uint64) + np.uint64(0x9E3779B97F4A7C15)
    x = (x ^ (x >> np.uint64(30))) * np.uint64(0xBF58476D1CE4E5B9)
    x = (x ^ (x >> np.uint64(27))) * np.uint64(0x94D049BB133111EB)
    return x ^ (x >> np.uint64(31))


def salt(seed: int, name: str) -> int:
    """A 64-bit salt for one (seed, resource) pair, stable across processes."""
    acc = mix(seed & M64)
    for ch in name.encode():
        acc = mix(acc ^ ch)
    return acc


def iso(us: int) -> str:
    """Klaviyo's timestamp form: ``YYYY-MM-DDTHH:MM:SS+00:00``, with microseconds when they are non-zero."""
    dt = datetime.fromtimestamp(us // 1_000_000, tz=UTC)
    frac = us % 1_000_000
    base = dt.strftime("%Y-%m-%dT%H:%M:%S")
    return f"{base}.{frac:06d}+00:00" if frac else f"{base}+00:00"


@dataclass
class Timeline:
    """Creation times of one resource: record ``i`` is created at a monotone function of ``i`` (seconds)."""

    n0: int  # records created up to the initial clock
    start_s: int
    span_s: int
    salt: int
    pairs: bool = False  # events: records come in pairs sharing one timestamp (exact ties at boundaries)
    whole: bool = False  # whole seconds only (WHOLE_SECONDS)

    def __post_init__(self) -> None:
        units = self.n0 // 2 if self.pairs else self.n0
        self.units = max(units, 1)
        self.micro = (
            not self.whole and self.span_s // self.units >= 2
        )  # room for sub-second parts without breaking order

    def unit(self, i: int) -> int:
        return i // 2 if self.pairs else i

    def time_us(self, i: int) -> int:
        u = self.unit(i)
        s = self.start_s + ((u + 1) * self.span_s) // self.units
        us = 0
        if self.micro:
            h = mix(self.salt ^ u)
            if h % 3 == 0:
                us = (h >> 8) % 1_000_000
        return s * 1_000_000 + us

    def times_us(self, idx: np.ndarray) -> np.ndarray:
        u = idx // 2 if self.pairs else idx
        s = self.start_s + ((u + 1) * self.span_s) // self.units
        out = s.astype(np.int64) * 1_000_000
        if self.micro:
            h = mix_np(np.uint64(self.salt) ^ u.astype(np.uint64))
            add = ((h >> np.uint64(8)) % np.uint64(1_000_000)).astype(np.int64)
            out = out + np.where(h % np.uint64(3) == 0, add, 0)
        return out

    def first_at_or_after(self, t_us: int) -> int:
        """Smallest index whose time is >= t_us."""
        lo, hi = 0, 1
        while self.time_us(hi) < t_us:
            hi *= 2
        while lo < hi:
            mid = (lo + hi) // 2
            if self.time_us(mid) < t_us:
                lo = mid + 1
            else:
                hi = mid
        return lo

    def count_at_least(self, t_us: int) -> int:
        """A fast lower bound of :meth:`count_until` (closed form, ignores sub-second parts), at least 1."""
        units = ((t_us // 1_000_000 - self.start_s) * self.units) // self.span_s
        return max(1, units * 2 if self.pairs else units)

    def count_until(self, now_us: int) -> int:
        """Number of records created at or before ``now_us``."""
        return self.first_at_or_after(now_us + 1)


@dataclass
class Dataset:
    """Everything the sandbox serves: counts, the clock, and per-resource update overrides."""

    seed: int = 1
    account_seed: int | None = None  # the account record's own seed (None: ``seed``), see SandboxConfig
    counts: dict[str, int] = field(default_factory=dict)  # records per resource at the initial clock (resources.py)
    # resource -> the timestamp attribute the clock touches (None: none): resources.UPDATED_FIELD
    updated: dict[str, str | None] = field(default_factory=dict)
    now0: datetime = DEFAULT_NOW
    profile_properties_kb: int = 0  # each profile also carries this many KB of text in its properties (wide rows)
    same_metric_names: bool = False  # a metric's later copies carry its very name (else "Placed Order (1)")

    def __post_init__(self) -> None:
        self.now0_us = int(self.now0.timestamp()) * 1_000_000
        self.now_us = self.now0_us
        self.start_s = int(self.now0.timestamp()) - HISTORY_DAYS * 86400
        span = HISTORY_DAYS * 86400
        self.timelines = {
            name: Timeline(
                n, self.start_s, span, salt(self.seed, name), pairs=(name == "events"), whole=name in WHOLE_SECONDS
            )
            for name, n in self.counts.items()
        }
        self.overrides: dict[str, dict[int, int]] = {name: {} for name in self.counts}
        self.archived: dict[str, set[int]] = {name: set() for name in ARCHIVE_SHARE}  # archived by the clock
        self.deleted: dict[str, set[int]] = {name: set() for name in self.counts}  # see deletions.py
        # schema drift (season.py): kind -> the time from which records changed since carry it (records.py, events.py)
        self.drift: dict[str, int] = {}
        self.advances = 0
        self.version = 0
        self._lock = threading.Lock()
        self._cache: dict[tuple[str, int], tuple[np.ndarray, np.ndarray]] = {}

    # -- clock ---------------------------------------------------------------------------------
    def count(self, name: str) -> int:
        if name in SINGLE:
            return 1
        return self.timelines[name].count_until(self.now_us)

    def advance(self, seconds: int) -> dict[str, int]:
        """Move the clock forward; touch a share of existing records of every resource with an update time."""
        if seconds <= 0:
            raise ValueError("seconds must be positive")
        with self._lock:
            old = self.now_us
            self.now_us += seconds * 1_000_000
            self.advances += 1
            touched: dict[str, int] = {}
            for name, fld in self.updated.items():
                if fld is None or name not in self.counts:
                    continue
                n_old = self.timelines[name].count_until(old)
                if n_old == 0:
                    continue
                k = max(1, int(n_old * TOUCH_SHARE))
                s = salt(self.seed, f"{name}/advance/{self.advances}")
                for j in range(k):
                    h = mix(s ^ j)
                    idx = h % n_old
                    # one in five exactly on a minute, one in five on a whole second (boundary cases on purpose), the
                    # others with microseconds where the resource has them
                    t = old // 1_000_000 + 1 + (h >> 20) % max(seconds - 1, 1)
                    if j % 5 == 0:
                        t = max(old // 1_000_000 + 1, t - t % 60)
                    frac = 0 if j % 5 < 2 or name in WHOLE_SECONDS else (h >> 40) % 1_000_000
                    self.overrides[name][idx] = t * 1_000_000 + frac
                touched[name] = k
            for name, share in ARCHIVE_SHARE.items():
                n_old = self.timelines[name].count_until(old) if name in self.counts else 0
                s = salt(self.seed, f"{name}/archive/{self.advances}")
                for j in range(max(1, int(n_old * share)) if n_old else 0):
                    h = mix(s ^ j)
                    self.archived[name].add(h % n_old)
                    self.overrides[name][h % n_old] = (
                        old // 1_000_000 + 1 + (h >> 20) % max(seconds - 1, 1)
                    ) * 1_000_000
            self.version += 1
            self._cache.clear()
            return touched

    def changed(self) -> None:
        """Something visible changed outside the clock (a deletion): cached selections are stale."""
        with self._lock:
            self.version += 1
            self._cache.clear()

    def live_mask(self, name: str, n: int) -> np.ndarray:
        """Which of the first ``n`` records of ``name`` are not deleted."""
        mask = np.ones(n, dtype=bool)
        gone = [i for i in self.deleted.get(name, ()) if i < n]
        if gone:
            mask[np.array(gone, dtype=np.int64)] = False
        return mask

    # -- per-record times ----------------------------------------------------------------------
    def edit(self, name: str, i: int):
        """A ``random.Random`` for the values record ``i`` took at its last touch (None: never touched since the
        initial clock): an update changes values, not only the update time."""
        o = self.overrides[name].get(i) if name in self.overrides else None
        return None if o is None else random.Random(mix(salt(self.seed, name) ^ o))

    def drifted(self, kind: str, t_us: int) -> bool:
        """Whether a record changed at ``t_us`` carries schema drift ``kind`` (season.py starts each at a step)."""
        since = self.drift.get(kind)
        return since is not None and t_us >= since

    def created_us(self, name: str, i: int) -> int:
        return self.timelines[name].time_us(i)

    def updated_us(self, name: str, i: int) -> int:
        o = self.overrides[name].get(i)
        if o is not None:
            return o
        return int(self._base_updated(name, np.array([i], dtype=np.int64))[0])

    def _base_updated(self, name: str, idx: np.ndarray) -> np.ndarray:
        tl = self.timelines[name]
        created = tl.times_us(idx)
        h = mix_np(np.uint64(tl.salt ^ 0x5EED) ^ idx.astype(np.uint64))
        frac = (h >> np.uint64(11)).astype(np.float64) / float(1 << 53)
        gap = np.maximum(self.now0_us - created, 0)
        upd = created + (gap * frac).astype(np.int64)
        upd = upd - upd % 1_000_000  # whole seconds ...
        micro = ((h >> np.uint64(3)) % np.uint64(1_000_000)).astype(np.int64)
        if name not in WHOLE_SECONDS:
            upd = np.where(h % np.uint64(4) == 1, upd + micro, upd)  # ... some with microseconds
        upd = np.where(h % np.uint64(10) == 2, upd - upd % 60_000_000, upd)  # ... some exactly on a minute
        upd = np.where(h % np.uint64(3) == 0, created, upd)  # never updated since creation
        # never after the initial clock, nor (records created later) after their own creation: a record created
        # on the clock's second would otherwise get sub-second parts past "now"
        return np.minimum(np.maximum(upd, created), np.maximum(created, self.now0_us))

    def arrays(self, name: str) -> tuple[np.ndarray, np.ndarray]:
        """(created_us, updated_us) of every visible record of ``name``, cached per clock version."""
        key = (name, self.version)
        hit = self._cache.get(key)
        if hit is not None:
            return hit
        n = self.count(name)
        idx = np.arange(n, dtype=np.int64)
        created = self.timelines[name].times_us(idx)
        updated = self._base_updated(name, idx)
        for i, t in self.overrides[name].items():
            if i < n:
                updated[i] = t
        self._cache[key] = (created, updated)
        return created, updated

    def profiles_at(self, t_us: int) -> int:
        """Profiles that existed at ``t_us`` (at least one), for events that must point at real profiles."""
        return self.timelines["profiles"].count_at_least(t_us)
