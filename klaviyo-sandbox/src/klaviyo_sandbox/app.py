"""The sandbox's HTTP layer: an aiohttp application that answers like Klaviyo's list endpoints and its report
endpoints (numbers from :mod:`.reports` and :mod:`.audience_reports`).

Order of checks per request (as Klaviyo, auth first): injected faults, auth (401/403), ``revision`` (400/410,
see :mod:`.revisions`), rate limits (429), query validation (400: parameters, cursor, future filter values),
then the page (:mod:`.pages`). Every answer's ``Date`` header is the sandbox's clock. :class:`SandboxConfig`
holds the fidelity switches; :data:`REAL_LIKE` says how the real Klaviyo sets them. Admin routes live in
:mod:`.admin` (added by :mod:`.server`).
"""

from __future__ import annotations

import asyncio
import collections
import re
import time
import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime
from typing import Any

import orjson
from aiohttp import web

from . import form_versions, keyset, revisions, season, singles
from .account_time import account_zone
from .audience_reports import BUILDERS
from .child_pages import UnknownParent, child_page
from .dataset import Dataset
from .envelope import error_body
from .events import Events
from .limits import Faults, RateLimiter, mutate, parse_rate_mode
from .openapi_rules import all_rules
from .pages import entities_page, events_page
from .query import HIDDEN_UNLESS_FILTERED, QueryError, select_entities, to_us, validate
from .records import builders
from .relationship_pages import RELATED, relationship_page
from .report_rules import PATHS as REPORT_PATHS
from .report_rules import check, report_rules
from .reports import DailyBudget, message_report, metric_aggregate
from .resources import UPDATED_FIELD, parse_scale

STATE: web.AppKey[SandboxState] = web.AppKey("state")
API_KEY: web.RequestKey[str] = web.RequestKey("api_key")
MUTATE: web.RequestKey[str] = web.RequestKey("mutate")
EXTRA_HEADERS: web.RequestKey[dict] = web.RequestKey("extra_headers")
KEY_RE = re.compile(r"^pk_[A-Za-z0-9]{34}$")
SINGLE_RULES = singles.single_rules()
ALL_SCOPES = sorted({s for r in all_rules().values() for s in r.scopes})
JSONAPI = "application/vnd.api+json"
CLOUDFLARE_403 = (
    "<!DOCTYPE html><html><head><title>Just a moment...</title></head><body><h1>Checking your browser</h1>"
    "<p>Cloudflare Ray ID: 8c1f2a3b4c5d6e7f</p></body></html>"
)


# How the real Klaviyo behaves, for the fidelity switches of SandboxConfig. The defaults below keep the older,
# more lenient sandbox wherever the client is not ready yet; flip a default by copying its value from here.
REAL_LIKE: dict[str, Any] = {
    "cursor_mode": "keyset",  # cursors carry the last record's (sort value, id)
    "visibility_delay_s": 30,  # best guess: events show in GET a little after they happen / are received
    "archived_visible": False,  # archived flows (and campaigns) only with equals(archived,...), hidden images with equals(hidden,...)
    "filter_precision": "second",  # filter datetimes and record times are compared in whole seconds
    "refuse_future_filters": True,  # a filter datetime after the server's now is 400 "End date may not be in the future"
    "revision_policy": "lifecycle",  # any real revision: older ones deprecated (headers), then retired (410)
    "deprecation_headers": True,
    "scope_in_403": False,  # a 403 says "You do not have permission to perform this action." and not which scope
    "deleted_parent_404": True,  # a deleted parent's child endpoint answers 404 (the spec's 4XX), not an empty list
}


@dataclass
class SandboxConfig:
    seed: int = 1
    # the seed of the account's own record (its id, zone, ...; None: ``seed``): sandboxes of one seed and other
    # account seeds are other accounts holding records of the same ids (several accounts loaded into one table)
    account_seed: int | None = None
    scale: str = "small"
    rate_limits: str = "real"  # real | off | xFACTOR
    latency_ms: int = 0
    profile_properties_kb: int = 0  # wide profiles: this many KB of text in each one's properties (``notes``)
    # True: a metric's later copies (other integrations) carry its very name, as Klaviyo allows; False: "X (1)"
    same_metric_names: bool = False
    faults: str = ""
    keys: dict[str, list[str]] | None = None  # None: any well-formed private key, with every read scope
    now: datetime | None = None
    cursor_mode: str = "keyset"  # keyset | offset (page[cursor] is a position in the ordered selection)
    # The defaults are the real API's (REAL_LIKE, the harsher reading where evidence is thin); the other
    # behaviour of each stays switchable. docs/klaviyo-behaviour.md has the evidence line of each.
    visibility_delay_s: int = REAL_LIKE["visibility_delay_s"]  # an event is served this long after it exists
    archived_visible: bool = REAL_LIKE["archived_visible"]  # False: archived flows, hidden images only when filtered on
    filter_precision: str = REAL_LIKE["filter_precision"]  # micro | second
    refuse_future_filters: bool = REAL_LIKE["refuse_future_filters"]
    revision_policy: str = REAL_LIKE["revision_policy"]  # exact (only 2026-07-15) | lifecycle (see revisions.py)
    deleted_parent_404: bool = REAL_LIKE["deleted_parent_404"]  # False: a deleted parent's children: an empty page
    deprecation_headers: bool = True  # lifecycle: Deprecation/Sunset headers on deprecated revisions
    scope_in_403: bool = REAL_LIKE["scope_in_403"]  # True: a 403's detail names the missing scope (kinder than Klaviyo)
    public_url: str | None = None  # base of links; else X-Forwarded-Proto/-Host, else the request's own
    include_limit: int | None = None  # an included to-many relationship names at most this many records (None: all)
    report_daily: int | None = 225  # report requests per key, endpoint and sandbox day (None: unlimited); kept
    # even with rate_limits="off", which lifts the per-second and per-minute windows only

    @classmethod
    def real_like(cls, **overrides: Any) -> SandboxConfig:
        """A config with every fidelity switch as the real Klaviyo (:data:`REAL_LIKE`), then ``overrides``."""
        return cls(**{**REAL_LIKE, **overrides})

    def __post_init__(self) -> None:
        if self.cursor_mode not in ("keyset", "offset"):
            raise ValueError(f"bad cursor_mode '{self.cursor_mode}'; allowed: keyset, offset")
        if self.filter_precision not in ("micro", "second"):
            raise ValueError(f"bad filter_precision '{self.filter_precision}'; allowed: micro, second")
        if self.revision_policy not in ("exact", "lifecycle"):
            raise ValueError(f"bad revision_policy '{self.revision_policy}'; allowed: exact, lifecycle")
        if self.visibility_delay_s < 0:
            raise ValueError("visibility_delay_s must be >= 0")


@dataclass
class SandboxState:
    config: SandboxConfig
    dataset: Dataset = field(init=False)
    requests: collections.Counter = field(default_factory=collections.Counter)
    log: collections.deque = field(default_factory=lambda: collections.deque(maxlen=200_000))

    def __post_init__(self) -> None:
        cfg = self.config
        kwargs: dict[str, Any] = {"seed": cfg.seed, "account_seed": cfg.account_seed, "counts": parse_scale(cfg.scale),
                                  "updated": UPDATED_FIELD,
                                  "profile_properties_kb": cfg.profile_properties_kb,
                                  "same_metric_names": cfg.same_metric_names}  # fmt: skip
        if cfg.now:
            kwargs["now0"] = cfg.now
        self.dataset = Dataset(**kwargs)
        self.builders = builders(self.dataset)
        self.events = Events(self.dataset, self.builders["profiles"], self.builders["metrics"])
        self.events.delay_us = cfg.visibility_delay_s * 1_000_000
        hide = {} if cfg.archived_visible else {"flows": "archived", "images": "hidden"}
        self.hide_archived = {**HIDDEN_UNLESS_FILTERED, **hide}
        self.rules = all_rules()
        self.child_names = {r.path: n for n, r in self.rules.items() if "{id}" in r.path}  # child endpoints
        self.path_names = {r.path: n for n, r in self.rules.items()}  # /api/template-universal-content -> its name
        self.limiter = RateLimiter(parse_rate_mode(cfg.rate_limits), time.time)
        self.faults = Faults.parse(cfg.faults, seed=cfg.seed)
        self.reports_budget = DailyBudget()
        self._selection_cache: collections.OrderedDict = collections.OrderedDict()

    def select(self, name: str, q, key: tuple, within: Any = None) -> Any:
        """Ordered matching indices of an entity resource (``within``: a mask, part of ``key``), cached per query
        and clock version."""
        key = (name, self.dataset.version, key)
        hit = self._selection_cache.get(key)
        if hit is None:
            hit = select_entities(self.dataset, self.builders[name], q, self.hide_archived, within)
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
        state.requests["unauthenticated"] += 1  # e.g. a client's reachability probe: not an API call
        return _error(401, "not_authenticated", "Authentication credentials were not provided.",
                      "Missing or invalid authorization scheme. Please use Klaviyo-API-Key.")  # fmt: skip
    key = header[len("Klaviyo-API-Key ") :].strip()
    keys = state.config.keys
    if not KEY_RE.match(key) or (keys is not None and key not in keys):
        return _error(401, "authentication_failed", "Incorrect authentication credentials.",
                      "Incorrect authentication credentials.")  # fmt: skip
    scopes = ALL_SCOPES if keys is None else keys[key]
    if scope not in scopes:
        denied = "You do not have permission to perform this action."
        detail = f"This API key is missing the required scope '{scope}'." if state.config.scope_in_403 else denied
        return _error(403, "permission_denied", denied, detail)
    request[API_KEY] = key
    return None


def _revision(state: SandboxState, request: web.Request) -> web.Response | None:
    cfg = state.config
    today = datetime.fromtimestamp(state.dataset.now_us // 1_000_000, tz=UTC).date()
    answer = revisions.check(request.headers.get("revision"), cfg.revision_policy, today, cfg.deprecation_headers)
    if answer.error:
        return _error(*answer.error, "revision")
    request[EXTRA_HEADERS] = answer.headers
    return None


def _future_filters(state: SandboxState, q) -> None:
    """Real Klaviyo refuses a filter datetime after its own clock (tolerance 0 s)."""
    now = state.dataset.now_us
    for c in q.conditions:
        values = c.value if isinstance(c.value, list) else [c.value]
        for v in values:
            later = (to_us(v) > now) if isinstance(v, datetime) else (c.field == "timestamp" and v * 1_000_000 > now)
            if later:
                raise QueryError("End date may not be in the future", "filter")


def base_url(config: SandboxConfig, request: web.Request) -> str:
    """Prefix of every link: the configured public URL, else the proxy's forwarded headers, else the request's."""
    if config.public_url:
        return config.public_url.rstrip("/")
    host = request.headers.get("X-Forwarded-Host")
    if host:
        proto = request.headers.get("X-Forwarded-Proto", request.scheme)
        return f"{proto.split(',')[0].strip()}://{host.split(',')[0].strip()}"
    return f"{request.scheme}://{request.host}"


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
        return _error(
            429, "throttled", "Request was throttled.", "Request was throttled. Expected available in 1 second."
        )
    if kind == "html403":
        return web.Response(
            status=403, text=CLOUDFLARE_403, content_type="text/html", headers={"cf-mitigated": "challenge"}
        )
    if kind == "html200":
        return web.Response(
            status=200, text="<html><body>Service temporarily unavailable</body></html>", content_type="text/html"
        )
    request[MUTATE] = kind  # a data fault (limits.mutate): applied to the page once it is built
    return None


async def list_endpoint(request: web.Request) -> web.StreamResponse:
    state: SandboxState = request.app[STATE]
    parent_id, single_id = request.match_info.get("pid"), request.match_info.get("rid")
    if single_id is not None:  # one resource by id (singles.py)
        name = singles.name_of(request.match_info["name"]) or "?"
    elif parent_id is None:
        name = state.path_names.get(f"/api/{request.match_info['name']}", request.match_info["name"])
    else:
        rel = "relationships/" if request.match_info.get("rel") else ""
        name = state.child_names.get(
            f"/api/{request.match_info['parent']}/{{id}}/{rel}{request.match_info['child']}", "?"
        )
    rules = state.rules.get(name) if single_id is None else SINGLE_RULES.get(name)
    state.requests["total"] += 1
    state.log.append((time.time(), name, request.query_string))
    if rules is None:
        return _error(404, "not_found", "Not found.", f"'{request.path}' is not a known endpoint.")
    if state.config.latency_ms:
        await asyncio.sleep(state.config.latency_ms / 1000)
    faulted = await _fault(state, request)
    if faulted is not None:
        return faulted
    denied = _auth(state, request, rules.scopes[0]) or _revision(state, request)
    if denied is not None:
        state.requests[f"status:{denied.status}"] += 1
        return denied
    params = {k: v for k, v in request.query.items()}
    if single_id is not None:  # an additional field may bring its own, lower limit
        bucket, burst, steady = singles.bucket(rules, params)
    else:
        predictive = "predictive_analytics" in params.get("additional-fields[profile]", "")
        burst, steady = (10, 150) if predictive else (rules.burst, rules.steady)
        bucket = name + (":predictive" if predictive else "")
    decision = state.limiter.check(request[API_KEY], bucket, burst, steady)
    if not decision.allowed:
        state.requests["status:429"] += 1
        detail = f"Request was throttled. Expected available in {decision.retry_after} second{'s' if decision.retry_after != 1 else ''}."
        return _error(
            429, "throttled", "Request was throttled.", detail, headers={"Retry-After": str(decision.retry_after)}
        )
    try:
        q = validate(rules, params, 0)
        if "page[cursor]" in params:
            q.cursor = keyset.parse(params["page[cursor]"])
            if q.cursor is None:
                raise QueryError("Invalid page cursor.", "page[cursor]")
        q.seconds = state.config.filter_precision == "second"
        if state.config.refuse_future_filters:
            _future_filters(state, q)
        if single_id is not None:
            body = singles.page(state, rules, q, params, base_url(state.config, request), single_id)
        elif parent_id is not None and name == "form-versions":
            body = form_versions.page(state, rules, q, params, base_url(state.config, request), parent_id)
        elif parent_id is not None and name in RELATED:
            body = relationship_page(state, rules, q, params, base_url(state.config, request), parent_id)
        elif parent_id is not None:
            body = child_page(state, rules, q, params, base_url(state.config, request), parent_id)
            season.child_page_served(state, name, parent_id)  # a parent the season deletes mid-read
        else:
            page = events_page if name == "events" else entities_page
            body = page(state, rules, q, params, base_url(state.config, request))
    except UnknownParent as exc:
        state.requests["status:404"] += 1
        return _error(404, "not_found", "Not found.", str(exc))
    except QueryError as exc:
        state.requests["status:400"] += 1
        return _invalid(exc.detail, exc.parameter)
    if request.get(MUTATE):
        body = mutate(body, request[MUTATE])
    state.requests["status:200"] += 1
    headers = {"RateLimit-Limit": str(decision.limit), "RateLimit-Remaining": str(decision.remaining),
               "RateLimit-Reset": str(decision.reset), **request.get(EXTRA_HEADERS, {})}  # fmt: skip
    return web.Response(body=body, content_type=JSONAPI, headers=headers)


async def report_endpoint(request: web.Request) -> web.Response:
    state = request.app[STATE]
    path = request.path.rstrip("/")
    rules = report_rules()[path]
    state.requests["total"] += 1
    state.requests[f"report:{path}"] += 1
    state.log.append((time.time(), path, ""))
    denied = _auth(state, request, rules.scope) or _revision(state, request)
    if denied is not None:
        return denied
    decision = state.limiter.check(request[API_KEY], path, rules.burst, rules.steady)
    if not decision.allowed:
        detail = f"Request was throttled. Expected available in {decision.retry_after} second{'s' if decision.retry_after != 1 else ''}."
        return _error(
            429, "throttled", "Request was throttled.", detail, headers={"Retry-After": str(decision.retry_after)}
        )
    daily = state.config.report_daily if rules.daily is not None else None
    wait = state.reports_budget.take(request[API_KEY], path, state.dataset.now_us, daily)
    if wait:
        state.requests["status:429:daily"] += 1
        detail = f"Request was throttled. Daily limit of {daily} requests for this endpoint reached. Expected available in {wait} seconds."
        return _error(429, "throttled", "Request was throttled.", detail, headers={"Retry-After": str(wait)})
    state.requests[f"report-spent:{path}"] += 1
    now = datetime.fromtimestamp(state.dataset.now_us // 1_000_000, tz=UTC)
    try:
        doc = orjson.loads(await request.read())
        q = check(rules, doc, now, account_zone(state))
        if q.metric_id is not None and state.builders["metrics"].index_of(q.metric_id) is None:
            raise QueryError(f"Metric '{q.metric_id}' does not exist.", "metric_id")
        if q.conversion_metric_id is not None and state.builders["metrics"].index_of(q.conversion_metric_id) is None:
            raise QueryError(f"Conversion metric '{q.conversion_metric_id}' does not exist.", "conversion_metric_id")
        if q.end > now + timedelta(seconds=1):
            raise QueryError("End date may not be in the future", "timeframe")
    except orjson.JSONDecodeError:
        return _invalid("The body is not JSON.", None)
    except QueryError as exc:
        state.requests["status:400"] += 1
        return _invalid(exc.detail, exc.parameter)
    attrs = (
        metric_aggregate(state, q)
        if q.metric_id is not None
        else BUILDERS.get(q.rules.family, message_report)(state, q)
    )
    self_url = base_url(state.config, request) + path + "/"
    data = {"type": rules.resource_type, "attributes": attrs, "links": {"self": self_url}}
    if q.metric_id is not None:
        data["id"] = str(uuid.uuid4())
    state.requests["status:200"] += 1
    limits = (
        {
            "RateLimit-Limit": str(decision.limit),
            "RateLimit-Remaining": str(decision.remaining),
            "RateLimit-Reset": str(decision.reset),
        }
        if state.limiter.factor is not None
        else {}
    )  # the steady window
    return web.Response(
        body=orjson.dumps({"data": data, "links": {"self": self_url}}), content_type=JSONAPI, headers=limits
    )


async def _clock_date(request: web.Request, response: web.StreamResponse) -> None:
    """Every answer's ``Date`` header is the sandbox's clock, so clients can read the server's now."""
    state: SandboxState = request.app[STATE]
    now = datetime.fromtimestamp(state.dataset.now_us // 1_000_000, tz=UTC)
    response.headers["Date"] = format_datetime(now, usegmt=True)


def build_app(config: SandboxConfig) -> web.Application:
    """The API's routes over a new state; the admin routes are :func:`.admin.add_routes`."""
    app = web.Application()
    app[STATE] = SandboxState(config)
    app.on_response_prepare.append(_clock_date)
    app.router.add_get("/api/{name}", list_endpoint)
    app.router.add_get("/api/{name}/", list_endpoint)
    app.router.add_get("/api/{name}/{rid}", list_endpoint)  # one resource by id (singles.py)
    app.router.add_get("/api/{name}/{rid}/", list_endpoint)
    app.router.add_get("/api/{parent}/{pid}/{child}", list_endpoint)
    app.router.add_get("/api/{parent}/{pid}/{child}/", list_endpoint)
    app.router.add_get("/api/{parent}/{pid}/{rel:relationships}/{child}", list_endpoint)
    app.router.add_get("/api/{parent}/{pid}/{rel:relationships}/{child}/", list_endpoint)
    for path in REPORT_PATHS:  # reports: POST with a JSON body (reports.py)
        app.router.add_post(path, report_endpoint)
        app.router.add_post(path + "/", report_endpoint)
    return app
