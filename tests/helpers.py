"""Compare what landed in DuckDB with what the sandbox holds."""

from __future__ import annotations

import asyncio
import json
import threading
from datetime import UTC, datetime
from decimal import Decimal
from urllib.parse import unquote

import duckdb

from klaviyo_sandbox import testing as truth
from omniload.cli import main
from omniload.sources.klaviyo.preflight import KEY_CHECK
from omniload.sources.klaviyo.tables import TABLES
from omniload.types import DECIMAL, DECIMAL_PRECISION, DECIMAL_SCALE, JSON, TS

from .conftest import source_uri

DLT_TYPES = {"text": "VARCHAR", "bigint": "BIGINT", "double": "DOUBLE", "bool": "BOOLEAN",
             "timestamp": "TIMESTAMP WITH TIME ZONE", "json": "JSON", DECIMAL: f"DECIMAL({DECIMAL_PRECISION},{DECIMAL_SCALE})"}  # fmt: skip


def ingest(sb, tables: str, db: str, *extra: str) -> int:
    return main(["ingest", "--source-uri", source_uri(sb), "--source-table", tables, "--dest-uri", f"duckdb:///{db}",
                 "--progress", "log", *extra])  # fmt: skip


def asked(sb, endpoint: str) -> list[str]:
    """The query strings of the requests the sandbox saw at ``endpoint`` (its sandbox name), in order."""
    return [query for _, name, query in sb.state.log if name == endpoint]


def api_requests(sb) -> int:
    """Authenticated requests the tables made (unauthenticated requests and each run's key check aside)."""
    return sb.state.requests["total"] - sb.state.requests["unauthenticated"] - key_checks(sb)


def key_checks(sb) -> int:
    """The preflight's key checks the sandbox has seen (``GET /api/accounts?fields[account]=id``, one per run)."""
    path, params = KEY_CHECK
    query = "&".join(f"{k}={v}" for k, v in params.items())
    return sum(1 for _, name, q in list(sb.state.log) if name == path.rsplit("/", 1)[-1] and unquote(q) == query)


def key_of(table: str) -> tuple[str, ...]:
    """The primary key of a destination table (``flow_actions`` or ``flow-actions``); ``id`` for others."""
    spec = next((t for t in TABLES.values() if table in (t.name, t.info.dest_name)), None)
    return spec.primary_key if spec else ("id",)


def row_key(rec: dict, key: tuple[str, ...]):
    """A row's primary key: the value itself for one column, a tuple for a composite key."""
    return rec[key[0]] if len(key) == 1 else tuple(rec[k] for k in key)


def by_id(cursor, table: str) -> dict:
    """The rows of an executed DB-API cursor keyed by the table's primary key; a key seen twice fails the test."""
    names = [d[0] for d in cursor.description]
    key = key_of(table)
    out: dict = {}
    for row in cursor.fetchall():
        rec = dict(zip(names, row, strict=False))
        k = row_key(rec, key)
        assert k not in out, f"duplicate key {k} in {table}"
        out[k] = rec
    return out


def rows(db: str, table: str, schema: str = "main") -> dict:
    con = duckdb.connect(db, read_only=True)
    try:
        return by_id(con.execute(f'select * from "{schema}"."{table}"'), table)
    finally:
        con.close()


def column_types(db: str, table: str, schema: str = "main") -> dict[str, str]:
    con = duckdb.connect(db, read_only=True)
    try:
        return {r[0]: r[1] for r in con.execute(f'describe "{schema}"."{table}"').fetchall()}
    finally:
        con.close()


def _norm(value, typ: str):
    if value is None:
        return None
    if typ == TS:
        if isinstance(value, str):
            value = datetime.fromisoformat(value.replace("Z", "+00:00"))
        return value.astimezone(UTC)
    if typ == JSON:
        return json.loads(value) if isinstance(value, str) else value
    if typ == "double":
        return float(value)
    if typ == DECIMAL:  # the sandbox's JSON numbers (floats) by their shortest text; the destination's Decimal
        return Decimal(repr(value)) if isinstance(value, float) else Decimal(value)
    return value


def sandbox_now(sb) -> datetime:
    return datetime.fromtimestamp(sb.state.dataset.now_us / 1e6, UTC)


def expected_rows(sb, name: str, start=None, end=None, alter=None) -> dict[str, dict]:
    """What a run sees: records whose incremental key is in ``[start, end)``, ``end`` by default the
    sandbox's now (a filter may not name a later time); ``alter``: a function of each record's attributes
    (what a data fault sends instead)."""
    spec = TABLES[name]
    out = {}
    for rec in truth.records(sb.state, name, start, end or sandbox_now(sb)):
        row = {spec.id_column: rec["id"]}
        attrs = alter(rec["attributes"]) if alter else rec["attributes"]
        for col, typ in spec.columns.items():
            row[col] = _norm(attrs.get(col), typ)
        for rel in spec.to_one:
            data = (rec.get("relationships", {}).get(rel) or {}).get("data")
            row[f"{rel.replace('-', '_')}_id"] = data["id"] if data else None
        if name == "campaigns":
            row["channel"] = rec["channel"]
        if spec.parent is not None:
            row[spec.parent_column] = rec["parent_id"]
        if spec.kinds:  # tag links: which of the parent's relationship endpoints
            row["kind"] = rec["kind"]
        out[row_key(row, spec.primary_key)] = row
    return out


def assert_equals_truth(db: str, sb, name: str, start=None, end=None, table: str | None = None, schema: str = "main"):
    return assert_rows_equal_truth(rows(db, table or name.replace("-", "_"), schema), sb, name, start, end)


def assert_rows_equal_truth(got: dict[str, dict], sb, name: str, start=None, end=None):
    """``got`` (id -> row, from any destination) holds exactly the sandbox's records, column by column."""
    spec = TABLES[name]
    want = expected_rows(sb, name, start, end)
    assert set(got) == set(want), f"{name}: {len(set(want) - set(got))} missing, {len(set(got) - set(want))} extra"
    cols = spec.all_columns
    for rid, exp in want.items():
        actual = {c: _norm(got[rid].get(c), cols[c]) for c in exp}
        assert actual == exp, f"{name} {rid}: {actual} != {exp}"
    return got


class LoopbackServer:
    """A tiny HTTP server on 127.0.0.1 in a thread (real HTTP, loopback only): ``handle(request)`` answers every
    request; ``seen`` counts them."""

    def __init__(self, handle) -> None:
        self.handle, self.seen, self.port = handle, 0, 0
        ready = threading.Event()
        threading.Thread(target=lambda: asyncio.run(self._main(ready)), daemon=True).start()
        ready.wait(10)

    async def _main(self, ready: threading.Event) -> None:
        from aiohttp import web

        async def serve(request: web.Request) -> web.StreamResponse:
            self.seen += 1
            return await self.handle(request)

        app = web.Application()
        app.router.add_route("*", "/{tail:.*}", serve)
        runner = web.AppRunner(app)
        await runner.setup()
        site = web.TCPSite(runner, "127.0.0.1", 0)
        await site.start()
        self.port = site._server.sockets[0].getsockname()[1]
        ready.set()
        await asyncio.Event().wait()


async def forward(request, url: str):
    """``request`` sent on to ``url`` (its headers but Host), and the answer back: status, body, type, Date,
    Retry-After and rate-limit headers."""
    import aiohttp
    from aiohttp import web

    headers = {k: v for k, v in request.headers.items() if k.lower() not in ("host", "proxy-connection")}
    async with aiohttp.ClientSession() as s:
        async with s.request(request.method, url, headers=headers, data=await request.read()) as r:
            keep = {
                k: v
                for k, v in r.headers.items()
                if k.lower() in ("content-type", "date", "retry-after") or k.lower().startswith("ratelimit")
            }
            return web.Response(status=r.status, body=await r.read(), headers=keep)
