"""The error policy, as a table: what an HTTP answer from Klaviyo means for the request that got it.

| answer | action |
|---|---|
| 200 with a JSON:API body | ok |
| 200 with anything else (truncated, an HTML page) | retry with backoff |
| 429 | wait ``Retry-After``, else the seconds in the error detail, else backoff; then retry |
| 5xx | retry with backoff |
| 403 with an HTML page (a Cloudflare challenge) | retry with backoff, a few times |
| 3xx to ``base_url``'s host (scheme, host, port) | follow it, at most ``MAX_REDIRECTS`` in a row |
| 3xx anywhere else | fail the table at once: another host's data is not the source's |
| 401 | fail the table at once: the key was refused (the preflight refuses the run before it starts) |
| 403 with JSON | fail the table at once, naming the scopes its endpoint needs (scopes.py) |
| other 4xx | fail the table at once with the API's code and detail |

Every message keeps the API's own ``code: detail`` (5xx too: "A server error occurred.").

Retrying stops after ``RetryPolicy.max_attempts`` (``max_throttled`` for 429s); a wait longer than
``max_retry_after`` fails the table instead of hanging. The client (client.py) carries the actions out.
"""

from __future__ import annotations

import random
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import orjson

from ..base import ReadOptions
from .scopes import scopes

_DETAIL_WAIT = re.compile(r"available in (\d+) second")
MAX_REDIRECTS = 5  # same-host redirects followed in a row (a proxy's or a trailing slash's)
KEYS_PAGE = "Klaviyo → Settings → API keys"
KEY_REFUSED = f"the API key was refused: create a private key with read scopes in {KEYS_PAGE}"
REVISION_GONE = "the API revision is retired: set revision= in the source URI to a newer one, or leave it out"


@dataclass
class RetryPolicy:
    max_attempts: int = 8  # per request, for 5xx / network / bad bodies / Cloudflare challenges
    max_connect_attempts: int = 6  # connection refused in a row: the host is down or unreachable
    max_throttled: int = 30  # 429s in a row for one request
    base_delay: float = 0.5
    max_delay: float = 30.0
    max_retry_after: float = ReadOptions.max_retry_after  # a longer Retry-After fails the table instead of hanging

    def backoff(self, attempt: int) -> float:
        delay = min(self.max_delay, self.base_delay * (2**attempt))
        return delay * (0.5 + random.random() / 2)  # jitter


@dataclass(frozen=True)
class Outcome:
    action: str  # "retry", "wait" or "fail"
    problem: str = ""  # what went wrong, for the error message
    wait: float | None = None  # "wait": seconds the server named; None: back off


def classify(status: int, headers: Mapping[str, str], body: bytes, path: str = "") -> Outcome:
    """What to do about an answer that is not a usable page (any status but a decodable 200 or a redirect);
    ``path``: the request's, whose scopes a 403 names."""
    if status == 200:
        return Outcome(
            "retry",
            f"HTTP 200 with a body that is not a JSON:API document ({headers.get('Content-Type', '?')}, {len(body)} bytes)",
        )
    if status == 429:
        return Outcome("wait", "HTTP 429 throttled", retry_after(headers.get("Retry-After"), body))
    if status >= 500:
        return Outcome("retry", f"HTTP {status} {error_text(body, headers)}")
    if status == 403 and ("html" in headers.get("Content-Type", "") or headers.get("cf-mitigated")):
        return Outcome("retry", f"HTTP 403 {error_text(body, headers)}")
    if status == 401:
        return Outcome("fail", f"HTTP 401 {error_text(body, headers)}; {KEY_REFUSED}")
    if status == 403:
        return Outcome("fail", f"HTTP 403 {error_text(body, headers)}; {scope_advice(path)}")
    if status == 410:  # Klaviyo retires a revision two years after it came out (docs/klaviyo-behaviour.md, §5)
        return Outcome("fail", f"HTTP 410 {error_text(body, headers)}; {REVISION_GONE}")
    return Outcome("fail", f"HTTP {status} {error_text(body, headers)}")


def scope_advice(path: str) -> str:
    """What to do about a 403 on ``path``: the scopes its endpoint needs (Klaviyo's answer does not say)."""
    needed = " and ".join(scopes(path)) or "a read scope"
    return f"the API key needs {needed}: add it to the key in {KEYS_PAGE}"


def retry_after(header: str | None, body: bytes) -> float | None:
    """Seconds to wait after a 429: the ``Retry-After`` header, else the seconds named in the detail."""
    if header:
        try:
            return max(0.0, float(header))
        except ValueError:
            pass
    m = _DETAIL_WAIT.search(body.decode("utf-8", "replace"))
    return float(m.group(1)) + 0.5 if m else None


def error_text(body: bytes, headers: Any) -> str:
    """The API's own ``code: detail``, or what kind of body came instead."""
    try:
        err = orjson.loads(body)["errors"][0]
        return f"{err.get('code', '?')}: {err.get('detail') or err.get('title')}"
    except (orjson.JSONDecodeError, KeyError, IndexError, TypeError):
        ctype = headers.get("Content-Type", "?")
        if "html" in ctype:
            hint = " (Cloudflare challenge)" if headers.get("cf-mitigated") else ""
            return f"with an HTML page instead of JSON{hint}"
        return f"with an unreadable body ({ctype})"
