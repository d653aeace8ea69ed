"""The sandbox's HTTP layer: an aiohttp application that answers like Klaviyo's list endpoints.

Order of checks per request (as Klaviyo, auth first): injected faults, auth (401/403), ``revision`` (400),
rate limits (429), query validation (400), then the page. Admin routes under ``/__sandbox/`` move the clock,
switch faults and report the requests seen; they are not part of Klaviyo's API.
"""

from __future__ import annotations

import asyncio
import collections
import re
import time
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import orjson
from aiohttp import web

from .dataset import Dataset, parse_scale
from .digest import REVISION, endpoint_rules
from .envelope import decode_cursor, error_body, included_object, page_links, prune, resource
from .events import Events
from .limits import Faults, RateLimiter, parse_rate_mode
from .query import QueryError, event_matches, event_range, select_entities, validate
from .records import builders, iso

STATE: web.AppKey["SandboxState"] = web.AppKey("state")
API_KEY: web.RequestKey[str] = web.RequestKey("api_key")
MUTATE: web.RequestKey[str] = web.RequestKey("mutate")
KEY_RE = re.compile(r"^pk_[A-Za-z0-9]{34}$")
REVISION_RE = re.compile(r"^\d{4}-\d{2}-\d{2}(\.[a-z]+)?$")
ALL_SCOPES = sorted({s for r in endpoint_rules().values() for s in r.scopes})
JSONAPI = "application/vnd.api+json"
CLOUDFLARE_403 = (
    "<!DOCTYPE html><html><head><title>Just a moment...</title></head><body><h1>Checking your browser</h1>"
    "<p>Cloudflare Ray ID: 8c1f2a3b4c5d6e7f</p></body></html>"
)


@dataclass
class SandboxConfig:
    seed: int = 1
    scale: str = "small"
    rate_limits: str = "real"  # real | off | xFACTOR
    latency_ms: int = 0
    faults: str = ""
    keys: dict[str, list[str]] | None = None  # None: any well-formed private key, with every read scope
    now: datetime | None = None


@dataclass
class SandboxState:
    config: SandboxConfig
    dataset: Dataset = field(init=False)
    requests: collections.Counter = field(default_factory=collections.Counter)
    log: collections.deque = field(default_factory=lambda: collections.deque(maxlen=200_000))

    def __post_init__(self) -> None:
        cfg = self.config
        kwargs: dict[str, Any] = {"seed": cfg.seed, "counts": parse_scale(cfg.scale)}
        if cfg.now:
            kwargs["now0"] = cfg.now
        self.dataset = Dataset(**kwargs)
        self.builders = builders(self.dataset)
        self.events = Events(self.dataset, self.builders["profiles"], self.builders["metrics"])
        self.rules = endpoint_rules()
        self.limiter = RateLimiter(parse_rate_mode(cfg.rate_limits), time.time)
        self.faults = Faults.parse(cfg.faults, seed=cfg.seed)
        self._selection_cache: collections.OrderedDict = collections.OrderedDict()

    def select(self, name: str, q, key: tuple) -> Any:
        """Ordered matching indices of an entity resource, cached per query and clock version."""
        key = (name, self.dataset.version, key)
        hit = self._selection_cache.get(key)
        if hit is None:
            hit = select_entities(self.dataset, self.builders[name], q)
            self._selection_cache[key] = hit
            if len(self._selection_cache) > 256:
                self._selection_cache.popitem(last=False)
        return hit


def _error(status: int, code: str, title: str, detail: str, parameter: str | None = None, headers=None) -> web.Response:
    return web.Response(status=status, body=error_body(status, code, title, detail, parameter),
                        content_type=JSONAPI, headers=headers)  # fmt: skip


def _invalid(detail: str, parameter: str | None) -> web.Response:
    return _error(400, "invalid", "Invalid input.", detail, parameter)


def _auth(state: SandboxState, request: web.Request, scope: str) -> web.Response | None:
    header = request.headers.get("Authorization", "")
    if not header.startswith("Klaviyo-API-Key "):
        return _error(401, "not_authenticated", "Authentication credentials were not provided.",
                      "Missing or invalid authorization scheme. Please use Klaviyo-API-Key.")  # fmt: skip
    key = header[len("Klaviyo-API-Key ") :].strip()
    keys = state.config.keys
    if not KEY_RE.match(key) or (keys is not None and key not in keys):
        return _error(401, "authentication_failed", "Incorrect authentication credentials.",
                      "Incorrect authentication credentials.")  # fmt: skip
    scopes = ALL_SCOPES if keys is None else keys[key]
    if scope not in scopes:
        return _error(403, "permission_denied", "You do not have permission to perform this action.",
                      f"This API key is missing the required scope '{scope}'.")  # fmt: skip
    request[API_KEY] = key
    return None


def _revision(request: web.Request) -> web.Response | None:
    rev = request.headers.get("revision")
    if rev is None:
        return _invalid("Missing required header 'revision'. Pass the API revision, e.g. 2026-07-15.", "revision")
    if not REVISION_RE.match(rev):
        return _invalid(f"'{rev}' is not a valid revision; the format is YYYY-MM-DD[.suffix].", "revision")
    if rev != REVISION:
        return _invalid(f"Revision '{rev}' is not supported by this API; use {REVISION}.", "revision")
    return None


async def _fault(state: SandboxState, request: web.Request) -> web.StreamResponse | None:
    kind = state.faults.draw()
    if kind is None:
        return None
    state.requests[f"fault:{kind}"] += 1
    if kind == "drop":
        if request.transport is not None:
            request.transport.abort()
        raise ConnectionResetError("sandbox dropped the connection")
    if kind == "slow":
        await asyncio.sleep(state.faults.slow_ms / 1000)
        return None
    if kind == "error":
        status = (500, 502, 503)[state.requests[f"fault:{kind}"] % 3]
        return _error(status, "error", "A server error occurred.", "A server error occurred.")
    if kind in ("throttle", "retry_in_detail"):
        return _error(429, "throttled", "Request was throttled.", "Request was throttled. Expected available in 1 second.")
    if kind == "html403":
        return web.Response(status=403, text=CLOUDFLARE_403, content_type="text/html", headers={"cf-mitigated": "challenge"})
    if kind == "html200":
        return web.Response(status=200, text="<html><body>Service temporarily unavailable</body></html>", content_type="text/html")
    request[MUTATE] = kind  # truncated, noid, oddtime, future: applied to the page once it is built
    return None


_TIME_KEYS = ("datetime", "updated", "updated_at", "created", "created_at")


def _mutate(body: bytes, kind: str) -> bytes:
    """Data faults: damage a well-formed page the way a misbehaving API could."""
    if kind == "truncated":
        return body[: len(body) // 2]
    doc = orjson.loads(body)
    if not doc["data"]:
        return body
    if kind == "noid":
        doc["data"][0].pop("id", None)
    elif kind == "future":
        attrs = doc["data"][0]["attributes"]
        for key in _TIME_KEYS:
            if attrs.get(key):
                attrs[key] = "2100-01-01T00:00:00+00:00"
    elif kind == "oddtime":
        for n, rec in enumerate(doc["data"]):
            for key in _TIME_KEYS:
                val = rec["attributes"].get(key)
                if isinstance(val, str) and val.endswith("+00:00"):
                    rec["attributes"][key] = val.replace("T", " ") if n % 2 else val[:-6] + "Z"
    return orjson.dumps(doc)


async def list_endpoint(request: web.Request) -> web.StreamResponse:
    state: SandboxState = request.app[STATE]
    name = request.match_info["name"]
    rules = state.rules.get(name)
    state.requests["total"] += 1
    state.log.append((time.time(), name, request.query_string))
    if rules is None:
        return _error(404, "not_found", "Not found.", f"'/api/{name}' is not a known endpoint.")
    if state.config.latency_ms:
        await asyncio.sleep(state.config.latency_ms / 1000)
    faulted = await _fault(state, request)
    if faulted is not None:
        return faulted
    denied = _auth(state, request, rules.scopes[0]) or _revision(request)
    if denied is not None:
        state.requests[f"status:{denied.status}"] += 1
        return denied
    params = {k: v for k, v in request.query.items()}
    predictive = "predictive_analytics" in params.get("additional-fields[profile]", "")
    burst, steady = (10, 150) if predictive else (rules.burst, rules.steady)
    decision = state.limiter.check(request[API_KEY], name + (":predictive" if predictive else ""), burst, steady)
    if not decision.allowed:
        state.requests["status:429"] += 1
        detail = f"Request was throttled. Expected available in {decision.retry_after} second{'s' if decision.retry_after != 1 else ''}."
        return _error(429, "throttled", "Request was throttled.", detail, headers={"Retry-After": str(decision.retry_after)})
    offset = 0
    if "page[cursor]" in params:
        decoded = decode_cursor(params["page[cursor]"])
        if decoded is None:
            return _invalid("Invalid page cursor.", "page[cursor]")
        offset = decoded
    try:
        q = validate(rules, params, offset)
    except QueryError as exc:
        state.requests["status:400"] += 1
        return _invalid(exc.detail, exc.parameter)
    base = f"{request.scheme}://{request.host}"
    body = _events_page(state, rules, q, params, base) if name == "events" else _entities_page(state, rules, q, params, base)
    if request.get(MUTATE):
        body = _mutate(body, request[MUTATE])
    state.requests["status:200"] += 1
    headers = {"RateLimit-Limit": str(decision.limit), "RateLimit-Remaining": str(decision.remaining),
               "RateLimit-Reset": str(decision.reset)}  # fmt: skip
    return web.Response(body=body, content_type=JSONAPI, headers=headers)


def _document(data_json: str, links: dict, included: list | None) -> bytes:
    tail = orjson.dumps(links).decode()
    inc = f',"included":{orjson.dumps(included).decode()}' if included is not None else ""
    return f'{{"data":[{data_json}],"links":{tail}{inc}}}'.encode()


def _events_page(state: SandboxState, rules, q, params: dict[str, str], base: str) -> bytes:
    ev = state.events
    lo, hi, rest = event_range(ev, q)
    desc = q.sort in ("-datetime", "-timestamp")
    positions = range(hi - 1, lo - 1, -1) if desc else range(lo, hi)
    if rest:  # non-time filters: scan forward from the cursor position
        picked, pos = [], q.offset
        while pos < len(positions) and len(picked) < q.page_size:
            if event_matches(ev, positions[pos], rest):
                picked.append(positions[pos])
            pos += 1
        more = pos < len(positions)
        links = page_links(base, rules.path, params, q.offset, pos - q.offset, more)
    else:
        window = positions[q.offset : q.offset + q.page_size]
        picked = list(window)
        more = q.offset + q.page_size < len(positions)
        links = page_links(base, rules.path, params, q.offset, q.page_size, more)
    fields = q.fields.get("event")
    if not q.includes and fields is None and not desc and picked and picked[-1] - picked[0] == len(picked) - 1:
        return _document(",".join(ev.render_page(picked[0], picked[-1] + 1, base)), links, None)
    objs, wanted = [], []
    for i in picked:
        obj = ev.as_dict(i, base)
        if fields is not None:
            obj["attributes"] = prune(obj["attributes"], fields)
        for rel in q.includes:
            data = obj["relationships"][rel].get("data")
            if data:
                wanted.append((data["type"], data["id"]))
        objs.append(obj)
    included = _included(state, wanted, base) if q.includes else None
    return _document(",".join(orjson.dumps(o).decode() for o in objs), links, included)


def _included(state: SandboxState, wanted: list[tuple[str, str]], base: str) -> list[dict]:
    seen: dict[tuple[str, str], dict] = {}
    for typ, rid in wanted:
        if (typ, rid) not in seen:
            seen[(typ, rid)] = included_object(state, typ, rid, base)
    return list(seen.values())


def _entities_page(state: SandboxState, rules, q, params: dict[str, str], base: str) -> bytes:
    key = (params.get("filter"), q.sort)
    idx = state.select(rules.name, q, key)
    page = idx[q.offset : q.offset + q.page_size].tolist()
    more = q.offset + q.page_size < len(idx)
    links = page_links(base, rules.path, params, q.offset, q.page_size, more)
    builder = state.builders[rules.name]
    objs, wanted = [], []
    for i in page:
        obj, w = resource(builder, i, rules, base, q.fields.get(rules.resource_type), q.additional, q.includes)
        objs.append(obj)
        wanted.extend(w)
    included = _included(state, wanted, base) if q.includes else None
    return _document(",".join(orjson.dumps(o).decode() for o in objs), links, included)


async def admin_advance(request: web.Request) -> web.Response:
    state: SandboxState = request.app[STATE]
    raw = request.query.get("seconds", "")
    if not raw.isdigit() or int(raw) < 1:
        return web.json_response({"error": "seconds must be a positive integer"}, status=400)
    touched = state.dataset.advance(int(raw))
    return web.json_response({"now": iso(state.dataset.now_us), "touched": touched})


async def admin_clock(request: web.Request) -> web.Response:
    state: SandboxState = request.app[STATE]
    return web.json_response({"now": iso(state.dataset.now_us), "version": state.dataset.version})


async def admin_faults(request: web.Request) -> web.Response:
    state: SandboxState = request.app[STATE]
    try:
        state.faults = Faults.parse(request.query.get("spec", ""), seed=state.config.seed)
    except ValueError as exc:
        return web.json_response({"error": str(exc)}, status=400)
    return web.json_response({"faults": state.faults.shares})


async def admin_stats(request: web.Request) -> web.Response:
    state: SandboxState = request.app[STATE]
    return web.json_response(dict(state.requests))


def build_app(config: SandboxConfig, admin: bool = True) -> web.Application:
    app = web.Application()
    app[STATE] = SandboxState(config)
    app.router.add_get("/api/{name}", list_endpoint)
    app.router.add_get("/api/{name}/", list_endpoint)
    if not admin:
        return app
    app.router.add_post("/__sandbox/clock/advance", admin_advance)
    app.router.add_get("/__sandbox/clock", admin_clock)
    app.router.add_post("/__sandbox/faults", admin_faults)
    app.router.add_get("/__sandbox/stats", admin_stats)
    return app
