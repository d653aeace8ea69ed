"""The sandbox's admin routes under ``/__sandbox/`` (not part of Klaviyo's API): clock, late events, deletions,
faults, stats, a season step."""

from __future__ import annotations

from aiohttp import web

from . import ids
from .app import STATE, SandboxState
from .dataset import iso
from .deletions import DeleteError, delete, restore
from .limits import Faults
from .season import step as season_step


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


async def admin_late_events(request: web.Request) -> web.Response:
    """``POST /__sandbox/events/late?count=N&before_seconds=S``: insert N events dated S seconds (spread over
    the minute before that) before the sandbox's now; they were "received" now (visibility delay counts from here)."""
    state: SandboxState = request.app[STATE]
    count, before = request.query.get("count", "1"), request.query.get("before_seconds", "3600")
    if not count.isdigit() or not 1 <= int(count) <= 100_000 or not before.isdigit():
        return web.json_response(
            {"error": "count must be 1..100000 and before_seconds a whole number >= 0"}, status=400
        )
    ev = state.events
    added = ev.late.insert(state.dataset.now_us, int(count), int(before))
    return web.json_response({"now": iso(state.dataset.now_us), "ids": [ids.event_id(i, ev.salt) for i in added],
                              "datetimes": [iso(ev.time_us(i)) for i in added]})  # fmt: skip


async def admin_delete(request: web.Request) -> web.Response:
    """``POST /__sandbox/delete?resource=profiles&count=N`` (or ``&ids=a,b``): delete records, with what Klaviyo
    deletes along with them (deletions.py); ``&restore=1`` with ``ids=`` brings deleted records back."""
    state: SandboxState = request.app[STATE]
    name, count = request.query.get("resource", ""), request.query.get("count", "0")
    wanted = [i for i in request.query.get("ids", "").split(",") if i]
    if not count.isdigit() or (int(count) < 1 and not wanted):
        return web.json_response({"error": "give count (a positive whole number) or ids"}, status=400)
    try:
        if request.query.get("restore") == "1":
            return web.json_response({"restored": restore(state, name, wanted)})
        return web.json_response({"deleted": delete(state, name, int(count), wanted)})
    except DeleteError as exc:
        return web.json_response({"error": str(exc)}, status=400)


async def admin_faults(request: web.Request) -> web.Response:
    state: SandboxState = request.app[STATE]
    try:
        state.faults = Faults.parse(request.query.get("spec", ""), seed=state.config.seed)
    except ValueError as exc:
        return web.json_response({"error": str(exc)}, status=400)
    return web.json_response({"faults": state.faults.shares})


async def admin_season_step(request: web.Request) -> web.Response:
    """``POST /__sandbox/season/step?seconds=N[&max_late_s=S][&deletes=0][&period_s=P]``: one step of an account's
    life (season.py): the clock advances, late events arrive, records are deleted and restored (each kind about once
    per ``period_s``, two days by default), attributes drift, a parent is doomed."""
    state: SandboxState = request.app[STATE]
    raw, late = request.query.get("seconds", ""), request.query.get("max_late_s", str(10 * 86400))
    if not raw.isdigit() or int(raw) < 1 or not late.isdigit() or int(late) < 60:
        return web.json_response({"error": "seconds must be a positive integer and max_late_s at least 60"}, status=400)
    period = request.query.get("period_s", str(2 * 86400))
    if not period.isdigit() or int(period) < 1:
        return web.json_response({"error": "period_s must be a positive integer"}, status=400)
    deletes = request.query.get("deletes", "1") != "0"
    return web.json_response(season_step(state, int(raw), int(late), deletes, int(period)))


async def admin_stats(request: web.Request) -> web.Response:
    state: SandboxState = request.app[STATE]
    return web.json_response(dict(state.requests))


def add_routes(app: web.Application) -> None:
    app.router.add_post("/__sandbox/clock/advance", admin_advance)
    app.router.add_get("/__sandbox/clock", admin_clock)
    app.router.add_post("/__sandbox/events/late", admin_late_events)
    app.router.add_post("/__sandbox/delete", admin_delete)
    app.router.add_post("/__sandbox/faults", admin_faults)
    app.router.add_get("/__sandbox/stats", admin_stats)
    app.router.add_post("/__sandbox/season/step", admin_season_step)
