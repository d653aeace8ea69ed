"""Async HTTP client for Klaviyo's list endpoints: auth, revision, pacing, retries and clear errors.

Retries (with jittered exponential backoff) cover what is transient: 429 (waiting ``Retry-After``, else the
seconds named in the error detail, else backoff), 5xx, dropped connections, timeouts, and bodies that are not
the JSON the API promises (truncated, or an HTML page). Everything else (401, 403, other 4xx) fails at once
with the API's own message, the table and the HTTP status. The API key is only ever sent in the header.
"""

from __future__ import annotations

import asyncio
import random
import re
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import quote, urlencode

import aiohttp
import orjson

from ...errors import SourceError
from .decode import Doc, PageDecoder
from .ratelimit import BucketLimiter, TooLongWait

DEFAULT_BASE_URL = "https://a.klaviyo.com"
REVISION = "2026-07-15"
_DETAIL_WAIT = re.compile(r"available in (\d+) second")


@dataclass
class ClientStats:
    requests: int = 0
    retries: int = 0
    throttled: int = 0
    by_table: dict[str, int] = field(default_factory=dict)


@dataclass
class RetryPolicy:
    max_attempts: int = 8  # per request, for 5xx / network / bad bodies
    max_throttled: int = 30  # 429s in a row for one request
    base_delay: float = 0.5
    max_delay: float = 30.0
    max_retry_after: float = 300.0  # a longer Retry-After fails the table instead of hanging


class KlaviyoClient:
    def __init__(self, api_key: str, base_url: str = DEFAULT_BASE_URL, revision: str = REVISION,
                 policy: RetryPolicy | None = None, connections: int = 32, timeout: float = 120.0,
                 limiters: dict[str, BucketLimiter] | None = None) -> None:  # fmt: skip
        self.base_url = base_url.rstrip("/")
        self.revision = revision
        self.policy = policy or RetryPolicy()
        self.stats = ClientStats()
        self._headers = {"Authorization": f"Klaviyo-API-Key {api_key}", "revision": revision,
                         "Accept": "application/vnd.api+json"}  # fmt: skip
        self._limiters: dict[str, BucketLimiter] = {} if limiters is None else limiters  # shared per run
        self._connections = connections
        self._timeout = timeout
        self._session: aiohttp.ClientSession | None = None

    async def __aenter__(self) -> "KlaviyoClient":
        connector = aiohttp.TCPConnector(limit=self._connections, ttl_dns_cache=300)
        self._session = aiohttp.ClientSession(
            connector=connector, timeout=aiohttp.ClientTimeout(total=self._timeout), headers=self._headers
        )
        return self

    async def __aexit__(self, *exc: object) -> None:
        if self._session is not None:
            await self._session.close()

    def limiter(self, bucket: str, burst: int, steady: int) -> BucketLimiter:
        lim = self._limiters.get(bucket)
        if lim is None:
            lim = self._limiters[bucket] = BucketLimiter(burst, steady)
        return lim

    def url(self, path: str, params: dict[str, str]) -> str:
        query = urlencode(params, quote_via=quote, safe="")
        return f"{self.base_url}{path}?{query}" if query else f"{self.base_url}{path}"

    def _backoff(self, attempt: int) -> float:
        delay = min(self.policy.max_delay, self.policy.base_delay * (2**attempt))
        return delay * (0.5 + random.random() / 2)  # jitter

    async def get(self, url: str, table: str, limiter: BucketLimiter, decoder: PageDecoder) -> Doc:
        """GET one page, retrying what is transient; returns the decoded JSON:API document."""
        assert self._session is not None, "use 'async with KlaviyoClient(...)'"
        attempt = throttled = 0
        while True:
            try:
                await limiter.acquire(self.policy.max_retry_after)
            except TooLongWait as wait:
                raise self._too_long(table, f"the rate limit allows the next request only in {wait.seconds:.0f}s") from None
            self.stats.requests += 1
            self.stats.by_table[table] = self.stats.by_table.get(table, 0) + 1
            problem: str
            try:
                async with self._session.get(url) as resp:
                    body = await resp.read()
                    status = resp.status
                    headers = resp.headers
            except (aiohttp.ClientError, asyncio.TimeoutError, ConnectionError) as exc:
                problem = f"connection failed ({type(exc).__name__}: {exc or 'no detail'})"
                if isinstance(exc, aiohttp.ClientConnectorError) and attempt >= 2:
                    raise SourceError(f"table '{table}': cannot connect to {self._host()}: {exc.os_error or exc}") from None
            else:
                pause = limiter.observe(headers.get("RateLimit-Limit"), headers.get("RateLimit-Remaining"), headers.get("RateLimit-Reset"))
                if pause > self.policy.max_retry_after:
                    raise self._too_long(table, f"the API allows no more requests for {pause:.0f}s (RateLimit-Reset)")
                if status == 200:
                    doc = decoder.decode(body)
                    if doc is not None:
                        return doc
                    kind = headers.get("Content-Type", "?")
                    problem = f"HTTP 200 with a body that is not a JSON:API document ({kind}, {len(body)} bytes)"
                elif status == 429:
                    throttled += 1
                    self.stats.throttled += 1
                    wait = self._retry_after(headers.get("Retry-After"), body)
                    if wait is not None and wait > self.policy.max_retry_after:
                        raise self._too_long(table, f"HTTP 429 throttled with Retry-After {wait:.0f}s")
                    if throttled > self.policy.max_throttled:
                        raise SourceError(f"table '{table}': HTTP 429 throttled {throttled} times in a row; giving up")
                    wait = wait if wait is not None else self._backoff(min(throttled, 6))
                    limiter.block_for(wait)
                    self.stats.retries += 1
                    continue
                elif status >= 500:
                    problem = f"HTTP {status}"
                else:
                    raise SourceError(f"table '{table}': HTTP {status} {self._error_text(body, headers)}")
            attempt += 1
            if attempt >= self.policy.max_attempts:
                raise SourceError(f"table '{table}': giving up after {attempt} attempts at {url}: {problem}")
            self.stats.retries += 1
            await asyncio.sleep(self._backoff(attempt))

    def _too_long(self, table: str, reason: str) -> SourceError:
        """A rate-limit wait over the cap fails the table instead of hanging."""
        cap = self.policy.max_retry_after
        return SourceError(f"table '{table}': {reason}, longer than the allowed {cap:.0f}s (set --max-retry-after to wait longer)")

    def _host(self) -> str:
        return self.base_url.split("://", 1)[-1]

    @staticmethod
    def _retry_after(header: str | None, body: bytes) -> float | None:
        if header:
            try:
                return max(0.0, float(header))
            except ValueError:
                pass
        m = _DETAIL_WAIT.search(body.decode("utf-8", "replace"))
        return float(m.group(1)) + 0.5 if m else None

    @staticmethod
    def _error_text(body: bytes, headers: Any) -> str:
        try:
            err = orjson.loads(body)["errors"][0]
            return f"{err.get('code', '?')}: {err.get('detail') or err.get('title')}"
        except (orjson.JSONDecodeError, KeyError, IndexError, TypeError):
            ctype = headers.get("Content-Type", "?")
            if "html" in ctype:
                hint = " (Cloudflare challenge)" if headers.get("cf-mitigated") else ""
                return f"with an HTML page instead of JSON{hint}"
            return f"with an unreadable body ({ctype})"
