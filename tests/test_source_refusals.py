"""Clear refusals instead of crashes (issue #20): a refused key or a key without the tables' scopes is found by
the preflight (exit 2, nothing written), a 403 names the scopes, the API's own detail survives the last retry,
a base_url with a user name and password is refused, and a redirect off base_url's host is never followed."""

from __future__ import annotations

import asyncio
import hashlib
import os
import re

import orjson
import pytest

from klaviyo_sandbox.app import ALL_SCOPES
from omniload.errors import RetriesExhausted
from omniload.sources.klaviyo.client import KlaviyoClient
from omniload.sources.klaviyo.decode import PageDecoder
from omniload.sources.klaviyo.policy import RetryPolicy
from omniload.sources.klaviyo.tables import TABLES

from .conftest import KEY, run_cli, source_uri
from .helpers import LoopbackServer, api_requests, assert_equals_truth, forward, key_checks, rows

REFUSED = "the API key was refused: create a private key with read scopes in Klaviyo → Settings → API keys"


def _ingest(uri: str, tables: str, db: str, *extra: str):
    return run_cli("ingest", "--source-uri", uri, "--source-table", tables, "--dest-uri", f"duckdb:///{db}",
                   "--progress", "log", *extra)  # fmt: skip


def _digest(path: str) -> str:
    with open(path, "rb") as f:
        return hashlib.sha256(f.read()).hexdigest()


def test_a_refused_key_is_one_line_exit_2_and_nothing_written(make_sandbox, tmp_path):
    wrong = "pk_" + "W" * 34
    sb = make_sandbox(scale="tiny", rate_limits="off", keys={KEY: ALL_SCOPES})
    db = str(tmp_path / "k.duckdb")
    proc = _ingest(source_uri(sb, wrong), "events,tags", db)
    assert proc.returncode == 2, proc.stderr
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("omniload: error: --source-uri: " + REFUSED), proc.stderr
    assert "authentication_failed" in lines[0] and wrong not in proc.stderr + proc.stdout and wrong[3:] not in lines[0]
    assert not os.path.exists(db)  # nothing written
    assert sb.state.requests["total"] == key_checks(sb) == 1  # one request: the key check
    assert _ingest(source_uri(sb), "tags", db).returncode == 0  # the right key loads ...
    before = _digest(db)
    assert _ingest(source_uri(sb, wrong), "tags", db).returncode == 2
    assert _digest(db) == before  # ... and a wrong one leaves the destination as it was


def test_a_key_without_accounts_read_still_loads_the_tables_it_may_read(make_sandbox, tmp_path):
    sb = make_sandbox(scale="tiny", rate_limits="off", keys={KEY: ["tags:read", "metrics:read"]})
    db = str(tmp_path / "k.duckdb")
    proc = _ingest(source_uri(sb), "tags,metrics", db)
    assert proc.returncode == 0, proc.stderr
    assert_equals_truth(db, sb, "tags")
    assert_equals_truth(db, sb, "metrics")
    assert sb.state.requests["status:403"] == 1  # the key check only; then one probe of the tables' endpoint


def test_a_key_that_may_read_none_of_the_tables_is_refused_naming_the_scopes(make_sandbox, tmp_path):
    sb = make_sandbox(scale="tiny", rate_limits="off", keys={KEY: ["events:read"]})
    db = str(tmp_path / "k.duckdb")
    proc = _ingest(source_uri(sb), "profiles,list-memberships", db)
    assert proc.returncode == 2, proc.stderr
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1, proc.stderr
    assert ("--source-uri: the API key may read none of the tables asked for: it lacks accounts:read, lists:read, "
            "profiles:read; add them to the key in Klaviyo → Settings → API keys") in lines[0]  # fmt: skip
    assert not os.path.exists(db)
    assert sb.state.requests["total"] == 3  # the key check, then /api/profiles and /api/lists once each


def test_a_403_names_the_scopes_the_table_needs(make_sandbox, tmp_path):
    sb = make_sandbox(scale="tiny", rate_limits="off", keys={KEY: ["accounts:read", "events:read", "segments:read"]})
    db = str(tmp_path / "k.duckdb")
    proc = _ingest(source_uri(sb), "events,segment-memberships", db)  # its segments are listed, their members not
    assert proc.returncode == 1, proc.stderr  # events loaded, the memberships failed
    assert ("table 'segment-memberships': HTTP 403 permission_denied: You do not have permission to perform this "
            "action.; the API key needs profiles:read and segments:read: add it to the key in Klaviyo → Settings → "
            "API keys") in proc.stderr  # fmt: skip
    assert_equals_truth(db, sb, "events")


def test_giving_up_after_every_retry_keeps_the_apis_detail(make_sandbox):
    sb = make_sandbox(scale="tiny", rate_limits="off", faults="error=1")
    spec = TABLES["tags"]

    async def read() -> None:
        async with KlaviyoClient(KEY, sb.base_url, policy=RetryPolicy(base_delay=0.001, max_delay=0.01)) as client:
            await client.get(client.url(spec.path, {}), "tags", client.limiter("tags", 100, 1000), PageDecoder(spec))

    with pytest.raises(RetriesExhausted) as err:
        asyncio.run(read())
    message = str(err.value)
    assert message.startswith("table 'tags': giving up after 8 attempts at ") and sb.state.requests["total"] == 8
    assert re.search(r"/api/tags: HTTP 50[023] error: A server error occurred\.$", message), message  # the API's detail


def test_a_user_and_password_in_base_url_are_refused_without_showing_the_password(sandbox, tmp_path):
    db = str(tmp_path / "k.duckdb")
    host = sandbox.base_url.split("://", 1)[1]
    before = sandbox.state.requests["total"]
    proc = _ingest(f"klaviyo://?api_key={KEY}&base_url=http://admin:Hunter2secret@{host}", "tags", db)
    assert proc.returncode == 2, proc.stderr
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and "base_url must not hold a user name or password (http://***@" + host + ")" in lines[0]
    assert "Hunter2secret" not in proc.stderr + proc.stdout and "admin" not in proc.stderr
    assert not os.path.exists(db) and sandbox.state.requests["total"] == before  # nothing sent, nothing written


def test_a_redirect_off_base_urls_host_fails_the_table_and_loads_nothing_from_there(sandbox, tmp_path):
    from aiohttp import web

    async def fake(request: web.Request) -> web.Response:  # another host's "tags"
        doc = {
            "data": [{"type": "tag", "id": "not-klaviyos", "attributes": {"name": "planted"}}],
            "links": {"next": None},
        }
        return web.Response(body=orjson.dumps(doc), content_type="application/vnd.api+json")

    elsewhere = LoopbackServer(fake)

    async def front(request: web.Request) -> web.StreamResponse:  # base_url: Klaviyo's answers, but tags move
        path = request.path_qs
        if request.path == "/api/tags":
            target = f"http://127.0.0.1:{elsewhere.port}{path}" if front_server.off else f"/moved{path}"
            raise web.HTTPFound(target)
        return await forward(request, sandbox.base_url + path.removeprefix("/moved"))

    front_server = LoopbackServer(front)
    front_server.off = True
    uri = f"klaviyo://?api_key={KEY}&base_url=http://127.0.0.1:{front_server.port}"
    db = str(tmp_path / "k.duckdb")
    proc = _ingest(uri, "tags,metrics", db)
    assert proc.returncode == 1, proc.stderr
    assert (f"table 'tags': the API answered HTTP 302, a redirect to http://127.0.0.1:{elsewhere.port}, which is not "
            f"base_url's host (http://127.0.0.1:{front_server.port}); omniload reads only what base_url's host serves: "
            "check base_url") in proc.stderr  # fmt: skip
    assert elsewhere.seen == 0  # never asked, never sent the key
    assert_equals_truth(db, sandbox, "metrics")
    with pytest.raises(Exception):  # noqa: B017 (any error: the destination has no such table)
        rows(db, "tags")  # no table: nothing of the other host's was loaded
    front_server.off = False  # a redirect on the same host (a proxy moving paths) is followed
    before = api_requests(sandbox)
    assert _ingest(uri, "tags", db).returncode == 0
    assert_equals_truth(db, sandbox, "tags")
    assert api_requests(sandbox) - before == 1
