"""Shared fixtures: a real Klaviyo sandbox on a free port, an HTTP helper, and a CLI runner."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import urllib.error
import urllib.request
from dataclasses import dataclass
from pathlib import Path

import pytest

from klaviyo_sandbox import SandboxConfig, SandboxServer

KEY = "pk_" + "Test0123456789" + "a" * 20
REVISION = "2026-07-15"
ROOT = Path(__file__).resolve().parents[1]
OMNILOAD = [sys.executable, "-m", "omniload.cli"]


@dataclass
class Response:
    status: int
    headers: dict
    body: bytes

    @property
    def json(self):
        return json.loads(self.body)


def http_get(
    base: str, path: str, headers: dict | None = None, key: str | None = KEY, revision: str | None = REVISION
) -> Response:
    h = {}
    if key is not None:
        h["Authorization"] = f"Klaviyo-API-Key {key}"
    if revision is not None:
        h["revision"] = revision
    h.update(headers or {})
    url = path if path.startswith("http") else base + path
    req = urllib.request.Request(url, headers=h)
    try:
        with urllib.request.urlopen(req, timeout=30) as r:
            return Response(r.status, dict(r.headers), r.read())
    except urllib.error.HTTPError as e:
        return Response(e.code, dict(e.headers), e.read())


def http_post(base: str, path: str) -> dict:
    req = urllib.request.Request(base + path, method="POST", data=b"")
    with urllib.request.urlopen(req, timeout=30) as r:
        return json.loads(r.read())


@pytest.fixture(scope="session")
def sandbox():
    """A shared, read-only sandbox (tiny data, no rate limits). Tests that change it use ``make_sandbox``."""
    with SandboxServer(SandboxConfig(scale="tiny", rate_limits="off")) as sb:
        yield sb


@pytest.fixture
def make_sandbox():
    started: list[SandboxServer] = []

    def make(**kwargs) -> SandboxServer:
        sb = SandboxServer(SandboxConfig(**kwargs)).start()
        started.append(sb)
        return sb

    yield make
    for sb in started:
        sb.stop()


def source_uri(sb: SandboxServer, key: str = KEY) -> str:
    return f"klaviyo://?api_key={key}&base_url={sb.base_url}"


def run_cli(*args: str, env: dict | None = None, timeout: float = 600) -> subprocess.CompletedProcess:
    """Run the real `omniload` command in a child process."""
    full_env = {**os.environ, **(env or {})}
    return subprocess.run([*OMNILOAD, *args], capture_output=True, text=True, env=full_env, timeout=timeout, cwd=ROOT)


@pytest.fixture(scope="session")
def postgres():
    """A real PostgreSQL server for the whole session."""
    from .pg import PostgresServer

    server = PostgresServer().start()
    yield server
    server.stop()
