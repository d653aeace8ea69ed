"""Async HTTP client for Klaviyo: auth, revision, pacing per rate-limit bucket, and the error policy's actions.

What each answer means is decided in policy.py; this module paces requests, retries with jittered backoff,
waits out 429s, counts requests in the reader's stats, and raises one error class per cause. Dropped
connections and timeouts are retried like 5xx. The API key is only ever sent in the header. Redirects are
followed only on ``base_url``'s own host (scheme, host and port): another host's answer is never taken for
Klaviyo's, nor sent the key.
"""

from __future__ import annotations

import asyncio
import os
from dataclasses import dataclass
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from typing import Any
from urllib.parse import quote, urlencode, urljoin, urlsplit

import aiohttp

from ... import __version__
from ...errors import ConfigurationError, NotFound, RateLimitWaitTooLong, RedirectRefused, RetriesExhausted, TooLongWait
from ..base import TableStats
from .decode import Doc, PageDecoder
from .policy import MAX_REDIRECTS, RetryPolicy, classify
from .ratelimit import BucketLimiter

DEFAULT_BASE_URL = "https://a.klaviyo.com"
REVISION = "2026-07-15"
USER_AGENT = f"omniload/{__version__}"
REDIRECTS = (301, 302, 303, 307, 308)


@dataclass
class ServerInfo:
    """What the API's answers say about the server, shared by every client of a run: its clock (the newest
    ``Date`` header seen, so filters never name a time the server thinks is in the future) and whether the
    pinned revision is deprecated (``Deprecation``/``Sunset`` headers, if Klaviyo sends them)."""

    date: datetime | None = None  # the newest Date header seen
    deprecation: str | None = None

    def observe(self, headers) -> None:
        date = headers.get("Date")
        if date:
            try:
                seen = parsedate_to_datetime(date)
            except (TypeError, ValueError):
                seen = None
            if seen is not None and seen.tzinfo is not None and (self.date is None or seen > self.date):
                self.date = seen
        if self.deprecation is None and (headers.get("Deprecation") or headers.get("Sunset")):
            sunset = headers.get("Sunset")
            self.deprecation = f"retired on {sunset}" if sunset else "deprecated"

    def now(self) -> datetime:
        """The server's now as its last answer told it (never extrapolated: a server clock that stands still,
        as the sandbox's does, must not be overtaken); the local clock until a server answered."""
        return self.date.astimezone(UTC) if self.date is not None else datetime.now(UTC)


def bench_rate_scale() -> float:
    """Benchmarks only: ``OMNILOAD_BENCH_RATE_SCALE`` multiplies the client's own pacing (e.g. 100 against a
    sandbox with its limits off), so that a CPU-bound figure is not the client waiting on Klaviyo's published
    limits or on the limits the sandbox states in its ``RateLimit-Limit`` headers, which are scaled alike (3,500
    events pages a minute paused a 4M-event run for ~20 s). Unset, 1: Klaviyo's limits."""
    try:
        return max(1.0, float(os.environ.get("OMNILOAD_BENCH_RATE_SCALE", "1")))
    except ValueError:
        return 1.0


class KlaviyoClient:
    def __init__(self, api_key: str, base_url: str = DEFAULT_BASE_URL, revision: str = REVISION,
                 policy: RetryPolicy | None = None, connections: int = 32, timeout: float = 120.0,
                 limiters: dict[str, BucketLimiter] | None = None, stats: TableStats | None = None,
                 server: ServerInfo | None = None, on_retry=None) -> None:  # fmt: skip
        self.base_url = base_url.rstrip("/")
        self.revision = revision
        self.policy = policy or RetryPolicy()
        self.stats = stats if stats is not None else TableStats()  # the reader's: it counts every request of a table
        self.server = server if server is not None else ServerInfo()
        self.on_retry = on_retry  # (attempt, problem): a retry is coming, so a slow or silent API is never a silent run
        self._headers = {"Authorization": f"Klaviyo-API-Key {api_key}", "revision": revision,
                         "Accept": "application/vnd.api+json", "User-Agent": USER_AGENT}  # fmt: skip
        self._limiters: dict[str, BucketLimiter] = {} if limiters is None else limiters  # shared per run
        self._connections = connections
        self._timeout = timeout
        self._session: aiohttp.ClientSession | None = None

    async def __aenter__(self) -> KlaviyoClient:
        connector = aiohttp.TCPConnector(limit=self._connections, ttl_dns_cache=300)
        # trust_env: HTTPS_PROXY / HTTP_PROXY / NO_PROXY are honoured, as every HTTP tool does
        self._session = aiohttp.ClientSession(connector=connector, timeout=aiohttp.ClientTimeout(total=self._timeout, sock_connect=15, sock_read=60),
                                              headers=self._headers, trust_env=True)  # fmt: skip
        return self

    async def __aexit__(self, *exc: object) -> None:
        if self._session is not None:
            await self._session.close()

    def limiter(self, bucket: str, burst: int, steady: int) -> BucketLimiter:
        lim = self._limiters.get(bucket)
        if lim is None:
            lim = self._limiters[bucket] = BucketLimiter(burst, steady, scale=bench_rate_scale())
        return lim

    def follow(self, link: str) -> str:
        """A ``links.next`` URL on the configured base URL: Klaviyo writes its own host there, which would bypass
        a proxy or gateway given as ``base_url`` from page 2 on."""
        parts = urlsplit(link)
        return f"{self.base_url}{parts.path}" + (f"?{parts.query}" if parts.query else "")

    def url(self, path: str, params: dict[str, str]) -> str:
        query = urlencode(params, quote_via=quote, safe="")
        return f"{self.base_url}{path}?{query}" if query else f"{self.base_url}{path}"

    async def get(self, url: str, table: str, limiter: BucketLimiter, decoder: PageDecoder) -> Doc:
        """GET one page, retrying what is transient; returns the decoded document."""
        return await self._page(url, table, limiter, decoder, None)

    async def post(self, url: str, table: str, limiter: BucketLimiter, decoder: PageDecoder, payload: bytes) -> Doc:
        """POST ``payload`` (a JSON document) for one answer, retrying what is transient; returns the decoded document."""
        return await self._page(url, table, limiter, decoder, payload)

    async def _page(
        self, url: str, table: str, limiter: BucketLimiter, decoder: PageDecoder, payload: bytes | None
    ) -> Doc:
        """One page or answer (a POST of ``payload`` when given), with the retries and pacing of :meth:`get`."""
        assert self._session is not None, "use 'async with KlaviyoClient(...)'"
        attempt = throttled = 0
        while True:
            try:
                await limiter.acquire(self.policy.max_retry_after)
            except TooLongWait as wait:
                raise self._too_long(
                    table, f"the rate limit allows the next request only in {wait.seconds:.0f}s"
                ) from None
            self.stats.requests += 1
            problem: str
            try:
                status, headers, body = await self.answer(url, f"table '{table}'", payload)
            except (TimeoutError, aiohttp.ClientError, ConnectionError) as exc:
                problem = f"connection failed ({type(exc).__name__}: {exc or 'no detail'})"
                if isinstance(exc, aiohttp.ClientConnectorError) and attempt >= self.policy.max_connect_attempts:
                    raise RetriesExhausted(
                        f"table '{table}': cannot connect to {self._host()}: {exc.os_error or exc}"
                    ) from None
            else:
                self.server.observe(headers)
                pause = limiter.observe(
                    headers.get("RateLimit-Limit"), headers.get("RateLimit-Remaining"), headers.get("RateLimit-Reset")
                )
                if pause > self.policy.max_retry_after:
                    raise self._too_long(table, f"the API allows no more requests for {pause:.0f}s (RateLimit-Reset)")
                if status == 200:
                    doc = decoder.decode(body)
                    if doc is not None:
                        return doc
                outcome = classify(status, headers, body, urlsplit(url).path)
                problem = outcome.problem
                if outcome.action == "fail":
                    raise (NotFound if status == 404 else ConfigurationError)(f"table '{table}': {problem}")
                if outcome.action == "wait":
                    throttled += 1
                    self.stats.throttled += 1
                    wait = outcome.wait
                    if wait is not None and wait > self.policy.max_retry_after:
                        raise self._too_long(table, f"HTTP 429 throttled with Retry-After {wait:.0f}s")
                    if throttled > self.policy.max_throttled:
                        raise RetriesExhausted(
                            f"table '{table}': HTTP 429 throttled {throttled} times in a row; giving up"
                        )
                    limiter.block_for(wait if wait is not None else self.policy.backoff(min(throttled, 6)))
                    self.stats.retries += 1
                    continue
            attempt += 1
            if attempt >= self.policy.max_attempts:
                raise RetriesExhausted(f"table '{table}': giving up after {attempt} attempts at {url}: {problem}")
            self.stats.retries += 1
            if self.on_retry is not None:
                self.on_retry(attempt, problem)
            await asyncio.sleep(self.policy.backoff(attempt))

    async def answer(self, url: str, who: str, payload: bytes | None = None) -> tuple[int, Any, bytes]:
        """One request (a POST of ``payload`` when given), following redirects on ``base_url``'s host; its status,
        headers and body. A redirect to another host, or too many in a row, raise :class:`RedirectRefused`."""
        assert self._session is not None, "use 'async with KlaviyoClient(...)'"
        post = {"data": payload, "headers": {"Content-Type": "application/vnd.api+json"}} if payload is not None else {}
        for _ in range(MAX_REDIRECTS + 1):
            async with self._session.request(
                "POST" if payload is not None else "GET", url, allow_redirects=False, **post
            ) as resp:
                body = await resp.read()
                status, headers = resp.status, resp.headers
            if status not in REDIRECTS:
                return status, headers, body
            target = urljoin(url, headers.get("Location", ""))
            if _origin(target) != _origin(self.base_url):
                raise RedirectRefused(f"{who}: the API answered HTTP {status}, a redirect to {_where(target)}, which is not "
                                      f"base_url's host ({_where(self.base_url)}); omniload reads only what base_url's "
                                      "host serves: check base_url")  # fmt: skip
            url = target
            self.stats.requests += 1
        raise RedirectRefused(f"{who}: the API redirected more than {MAX_REDIRECTS} times in a row (last to "
                              f"{urlsplit(url).path}); check base_url")  # fmt: skip

    def _too_long(self, table: str, reason: str) -> RateLimitWaitTooLong:
        """A rate-limit wait over the cap fails the table instead of hanging."""
        cap = self.policy.max_retry_after
        return RateLimitWaitTooLong(
            f"table '{table}': {reason}, longer than the allowed {cap:.0f}s (set --max-retry-after to wait longer)"
        )

    def _host(self) -> str:
        return self.base_url.split("://", 1)[-1]


def _origin(url: str) -> tuple[str, str, int | None]:
    """Scheme, host and port of ``url`` (the default port made explicit): what a redirect may not leave."""
    parts = urlsplit(url)
    try:
        port = parts.port
    except ValueError:
        port = -1
    return (
        parts.scheme.lower(),
        (parts.hostname or "").lower(),
        port or {"http": 80, "https": 443}.get(parts.scheme.lower()),
    )


def _where(url: str) -> str:
    """``scheme://host:port`` of ``url``: never its user name, password, path or query."""
    scheme, host, port = _origin(url)
    return f"{scheme}://{host}:{port}"
