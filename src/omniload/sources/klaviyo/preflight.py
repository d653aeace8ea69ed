"""The Klaviyo source's preflight: before anything is written, the API can be reached (through the proxy the
environment names, as every request will be), it takes the API key, and the key may read something asked for.

Cost: one request when the key holds ``accounts:read`` (``GET /api/accounts?fields[account]=id``: Klaviyo's own
way to test a private key, paced in the accounts bucket as the accounts table is). A key without that scope is
still fine (a 403 proves the key authenticated): then one cheap request (a page of one record) per scope of the
asked tables, stopping at the first the key may read. A report table is never probed (its requests count
against a daily limit). The answer's ``Date`` tells the server's clock.

| answer | outcome |
|---|---|
| no connection | refused: cannot reach the host (exit 2) |
| 401 | refused: the key was refused (exit 2), nothing written |
| 403 on every probe | refused: the key may read none of the tables, naming the scopes it lacks (exit 2) |
| a redirect to another host | refused (exit 2), as a table's request would be failed |
| anything else (200, 429, 5xx, a Cloudflare page) | the run goes on; each table meets what comes |

A 200 also tells the account's id (``KlaviyoRun.account_id``); ``account_column=true`` needs it: without it the
run is refused (exit 2).
"""

from __future__ import annotations

import asyncio
import json
import os
from collections.abc import Iterable
from urllib.parse import urlsplit

import aiohttp

from ...errors import RedirectRefused, UsageError
from ..base import ReadOptions
from .policy import KEY_REFUSED, KEYS_PAGE, classify, error_text
from .scopes import scopes
from .spec import TableSpec

KEY_CHECK = ("/api/accounts", {"fields[account]": "id"})  # the one request a run's key check costs


def probes(names: Iterable[str], specs: dict[str, TableSpec]) -> tuple[list[TableSpec], bool]:
    """The endpoint to ask for each table named (its topmost parent's list: the first one it reads), one per set
    of scopes; and whether every table named has one (report tables are never probed)."""
    out: dict[tuple[str, ...], TableSpec] = {}
    complete = True
    for name in names:
        spec = specs.get(name)
        while spec is not None and spec.parent is not None:
            spec = specs.get(spec.parent.table)
        if spec is not None and spec.method == "GET":
            out.setdefault(scopes(spec.path), spec)
        else:
            complete = False
    return list(out.values()), complete


def _params(spec: TableSpec) -> dict[str, str]:
    """A first page of one record (the partition filter some endpoints require, e.g. campaigns' channel)."""
    params = {"filter": spec.partitions[0][0]} if spec.partitions[0][0] else {}
    return {**params, "page[size]": "1"} if spec.page_size else params


def account_id(body: bytes) -> str | None:
    """The account's id in an answer of ``/api/accounts`` (a private key belongs to one account); None: none."""
    try:
        data = json.loads(body).get("data") or []
        first = data[0].get("id") if isinstance(data, list) and data and isinstance(data[0], dict) else None
    except (ValueError, AttributeError):
        return None
    return first if isinstance(first, str) and first else None


def preflight(source, names: Iterable[str] | None, specs: dict[str, TableSpec]) -> None:
    """Refuse the run (a :class:`UsageError`, exit 2) when the API cannot be reached, refuses the key, or the key
    may read none of ``names``; see the module's table."""
    accounts = specs["accounts"]

    async def ask(client, spec: TableSpec, path: str, params: dict[str, str]) -> tuple[int, object, bytes]:
        await client.limiter(spec.rate_bucket, spec.burst, spec.steady).acquire()
        for attempt in range(3):  # a dropped connection is no verdict: ask again
            try:
                status, headers, body = await client.answer(client.url(path, params), "--source-uri")
                source.run.server.observe(headers)
                return status, headers, body
            except (aiohttp.ServerDisconnectedError, aiohttp.ClientPayloadError):
                await asyncio.sleep(0.2 * (attempt + 1))
        return 0, {}, b""

    def denied(status: int, headers, body: bytes) -> bool:  # a JSON 403: the key lacks the endpoint's scope
        return status == 403 and classify(status, headers, body).action == "fail"

    async def check() -> None:
        async with source.client(ReadOptions(parallelism=1)) as client:
            status, headers, body = await ask(client, accounts, *KEY_CHECK)
            if status == 401:
                raise UsageError(f"--source-uri: {KEY_REFUSED} (HTTP 401 {error_text(body, headers)})")
            if status == 200:
                source.run.account_id = account_id(body)
            if source.config.account_column and source.run.account_id is None:
                raise UsageError(f"--source-uri: account_column=true needs the account's id, but /api/accounts answered "
                                 f"HTTP {status}{' (the key lacks accounts:read)' if status == 403 else ''}; add "
                                 f"accounts:read to the key in {KEYS_PAGE}, or leave account_column out")  # fmt: skip
            if not denied(status, headers, body):
                return
            lacking = list(scopes(accounts.path))
            asked, complete = probes(names or (), specs)
            for spec in asked:
                if set(scopes(spec.path)) & set(lacking):
                    continue  # denied already
                status, headers, body = await ask(client, spec, spec.path, _params(spec))
                if not denied(status, headers, body):
                    return
                lacking += scopes(spec.path)
            if asked and complete:
                raise UsageError(f"--source-uri: the API key may read none of the tables asked for: it lacks "
                                 f"{', '.join(sorted(set(lacking)))}; add them to the key in {KEYS_PAGE}")  # fmt: skip

    parts = urlsplit(source.config.base_url)
    where = f"{parts.hostname or ''}:{parts.port or (443 if parts.scheme == 'https' else 80)}"
    try:
        asyncio.run(check())
    except RedirectRefused as exc:
        raise UsageError(str(exc)) from None
    except (TimeoutError, aiohttp.ClientConnectorError, aiohttp.ClientHttpProxyError, OSError) as exc:
        os_error = getattr(exc, "os_error", None)
        reason = os.strerror(os_error.errno) if getattr(os_error, "errno", None) else str(exc) or type(exc).__name__
        raise UsageError(f"--source-uri: cannot reach {where} ({reason}); check base_url, the proxy settings "
                         "(HTTPS_PROXY, NO_PROXY) and the network") from None  # fmt: skip
