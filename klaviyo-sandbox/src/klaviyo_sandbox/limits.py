"""Sandbox traffic rules: Klaviyo's fixed-window rate limits per (key, endpoint bucket), and fault injection
(failed requests, and data faults that damage a well-formed page: :func:`mutate`)."""

from __future__ import annotations

import math
import random
import re
import threading
from dataclasses import dataclass, field

import msgspec
import orjson


def parse_rate_mode(text: str) -> float | None:
    """``real`` -> 1.0, ``off`` -> None, ``x0.1`` -> 0.1 (a factor applied to every limit)."""
    if text == "real":
        return 1.0
    if text == "off":
        return None
    if text.startswith("x"):
        try:
            factor = float(text[1:])
        except ValueError:
            factor = -1.0
        if factor > 0:
            return factor
    raise ValueError(f"bad --rate-limits '{text}'; allowed: real, off, or xFACTOR such as x0.1")


@dataclass
class Decision:
    allowed: bool
    limit: int  # steady limit per minute
    remaining: int  # steady requests left in this minute
    reset: int  # seconds until the steady window resets
    retry_after: int  # seconds, when not allowed


class RateLimiter:
    """Two fixed windows at once, as Klaviyo: burst (1 s) and steady (60 s), counted per key and bucket."""

    def __init__(self, factor: float | None, clock) -> None:
        self.factor = factor
        self.clock = clock
        self._lock = threading.Lock()
        self._windows: dict[tuple[str, str, int, int], int] = {}

    def scaled(self, value: int) -> int:
        return max(1, int(value * (self.factor or 1.0)))

    def check(self, key: str, bucket: str, burst: int, steady: int) -> Decision:
        burst, steady = self.scaled(burst), self.scaled(steady)
        now = self.clock()
        sec, minute = int(now), int(now // 60)
        reset = max(1, math.ceil((minute + 1) * 60 - now))
        if self.factor is None:
            return Decision(True, steady, steady, reset, 0)
        with self._lock:
            kb, km = (key, bucket, 1, sec), (key, bucket, 60, minute)
            used_b, used_m = self._windows.get(kb, 0), self._windows.get(km, 0)
            if used_m >= steady:
                return Decision(False, steady, 0, reset, reset)
            if used_b >= burst:
                return Decision(False, steady, steady - used_m, reset, 1)
            self._windows[kb] = used_b + 1
            self._windows[km] = used_m + 1
            if len(self._windows) > 10_000:  # forget old windows
                self._windows = {k: v for k, v in self._windows.items() if k[3] >= (sec if k[2] == 1 else minute)}
            return Decision(True, steady, steady - used_m - 1, reset, 0)


FAULT_KINDS = {
    "error": "answer 500, 502 or 503",
    "drop": "drop the connection without an answer",
    "slow": "answer after an extra delay (slow_ms, default 3000)",
    "throttle": "answer 429 without a Retry-After header",
    "retry_in_detail": "answer 429 with the wait only in the error detail text",
    "html403": "answer Cloudflare's HTML 403 challenge page (html403_burst=N: N requests in a row each time)",
    "truncated": "cut the JSON body short",
    "html200": "answer 200 with an HTML page instead of JSON",
    "noid": "send a page whose first record has no id",
    "oddtime": "write the page's timestamps as 'YYYY-MM-DD HH:MM:SS+00:00' and with 'Z'",
    "future": "date one record of the page in the year 2100",
    "nocursor": "send the page's first record without its cursor field (datetime, updated, updated_at, joined_group_at)",
    "nul": "put a NUL character into the page's first record: its first text attribute and a property of its first object",
    "oddtype": "give the page's first record's first three text attributes a 30-digit integer, an object and a boolean, "
    "and its first object a 30-digit integer property",
    "deep": "give the page's first record's first object (else its first text attribute) a value nested 1,100 levels deep",
    "oddnumber": "give the page's first record's first number attribute a 30-digit integer",
}


@dataclass
class Faults:
    """Shares of requests that get each fault, e.g. ``error=0.1,drop=0.05``; drawn from a seeded RNG.
    ``html403_burst=N``: once drawn, the Cloudflare 403 answers the next N-1 requests too (a challenge lasts).
    ``after=N``: the first N requests pass untouched (a fault in the middle of a run)."""

    shares: dict[str, float] = field(default_factory=dict)
    slow_ms: int = 3000
    seed: int = 0
    html403_burst: int = 1
    after: int = 0

    def __post_init__(self) -> None:
        self._rng = random.Random(self.seed)
        self._lock = threading.Lock()
        self._burst_left = 0

    @classmethod
    def parse(cls, text: str, seed: int = 0) -> Faults:
        shares: dict[str, float] = {}
        slow_ms, burst, after = 3000, 1, 0
        for part in filter(None, (p.strip() for p in (text or "").split(","))):
            key, _, val = part.partition("=")
            if key == "slow_ms" and val.isdigit():
                slow_ms = int(val)
                continue
            if key == "after" and val.isdigit():
                after = int(val)
                continue
            if key == "html403_burst" and val.isdigit() and int(val) >= 1:
                burst = int(val)
                continue
            try:
                share = float(val)
            except ValueError:
                share = -1
            if key not in FAULT_KINDS or not 0 <= share <= 1:
                allowed = ", ".join(FAULT_KINDS)
                raise ValueError(
                    f"bad fault '{part}'; use KIND=SHARE (0..1) with KIND in {allowed}, or slow_ms=N, html403_burst=N, after=N"
                )
            shares[key] = share
        return cls(shares, slow_ms, seed, burst, after)

    def draw(self) -> str | None:
        """Pick the fault for one request, or None."""
        if not self.shares:
            return None
        with self._lock:
            if self.after:
                self.after -= 1
                return None
            if self._burst_left:
                self._burst_left -= 1
                return "html403"
            x = self._rng.random()
            acc = 0.0
            for kind, share in self.shares.items():
                acc += share
                if x < acc:
                    if kind == "html403":
                        self._burst_left = self.html403_burst - 1
                    return kind
        return None


TIME_KEYS = ("datetime", "updated", "updated_at", "created", "created_at")
CURSOR_KEYS = ("datetime", "updated", "updated_at", "joined_group_at")  # every table's cursor is one of these
BIG = 123456789012345678901234567890  # wider than 64 bits
ODD = (BIG, {"a": 1, "b": True}, True)  # what ``oddtype`` puts into the first three text attributes
DEEP_LEVELS = 1100
DEEP = b'{"d":' * DEEP_LEVELS + b"1" + b"}" * DEEP_LEVELS  # deeper than JSON encoders nest (written as text)
DEEP_MARK = "\x01sandbox-deep\x01"
_ISO = re.compile(r"^\d{4}-\d{2}-\d{2}")


def texts(attrs: dict) -> list[str]:
    """The attributes holding text, in order (strings that are not times)."""
    return [k for k, v in attrs.items() if isinstance(v, str) and k not in TIME_KEYS and not _ISO.match(v)]


def objects(attrs: dict) -> list[str]:
    """The attributes holding an object, in order."""
    return [k for k, v in attrs.items() if isinstance(v, dict)]


def alter(attrs: dict, kind: str) -> dict:
    """The attributes of a record as the data fault ``kind`` sends them (the first record of a page): the tests
    derive what should land from it. ``deep`` values are a marker here, written out by :func:`mutate`."""
    out = dict(attrs)
    text, obj = texts(attrs), objects(attrs)
    if kind == "nocursor":
        for key in CURSOR_KEYS:
            out.pop(key, None)
    elif kind == "nul":
        if text:
            out[text[0]] = out[text[0]][:1] + "\x00" + out[text[0]][1:]
        if obj:
            out[obj[0]] = {**out[obj[0]], "nul": "x\x00y"}
    elif kind == "oddtype":
        for key, value in zip(text, ODD, strict=False):
            out[key] = value
        if obj:
            out[obj[0]] = {**out[obj[0]], "big": BIG}
    elif kind == "oddnumber":
        numbers = [k for k, v in attrs.items() if type(v) in (int, float)]
        if numbers:
            out[numbers[0]] = BIG
    elif kind == "deep" and (obj or text):
        out[(obj or text)[0]] = DEEP_MARK
    return out


def mutate(body: bytes, kind: str) -> bytes:
    """Data faults: damage a well-formed page the way a misbehaving API could."""
    if kind == "truncated":
        return body[: len(body) // 2]
    doc = orjson.loads(body)
    if not doc["data"]:
        return body
    if kind in ("nocursor", "nul", "oddtype", "oddnumber", "deep"):
        rec = doc["data"][0]
        rec["attributes"] = alter(rec.get("attributes") or {}, kind)
        # msgspec: integers wider than 64 bits (orjson refuses them)
        return msgspec.json.encode(doc).replace(msgspec.json.encode(DEEP_MARK), DEEP)
    if kind == "noid":
        doc["data"][0].pop("id", None)
    elif kind == "future":
        attrs = doc["data"][0]["attributes"]
        for key in TIME_KEYS:
            if attrs.get(key):
                attrs[key] = "2100-01-01T00:00:00+00:00"
    elif kind == "oddtime":
        for n, rec in enumerate(doc["data"]):
            for key in TIME_KEYS:
                val = rec["attributes"].get(key)
                if isinstance(val, str) and val.endswith("+00:00"):
                    rec["attributes"][key] = val.replace("T", " ") if n % 2 else val[:-6] + "Z"
    return orjson.dumps(doc)
