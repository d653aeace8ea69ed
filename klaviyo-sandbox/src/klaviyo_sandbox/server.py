"""Run the sandbox: in the foreground for the CLI, or in a background thread for tests and benchmarks."""

from __future__ import annotations

import asyncio
import sys
import threading

from aiohttp import web

from .admin import add_routes
from .app import STATE, SandboxConfig, SandboxState, build_app


async def _start(app: web.Application, host: str, port: int) -> tuple[web.AppRunner, int]:
    runner = web.AppRunner(app, access_log=None, handle_signals=False)
    await runner.setup()
    site = web.TCPSite(runner, host, port, backlog=1024, reuse_address=True)
    await site.start()
    bound = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
    return runner, bound


def serve_forever(config: SandboxConfig, host: str = "127.0.0.1", port: int = 0, workers: int = 1) -> None:
    """Serve until interrupted; the first line on stdout is the base URL.

    ``workers > 1`` forks processes that accept on one shared listening socket, for throughput benchmarks.
    Each worker keeps its own rate-limit counters and clock, so it needs ``--rate-limits off`` and the admin
    routes are disabled.
    """
    import os
    import signal
    import socket

    sock = socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind((host, port))
    sock.listen(1024)
    sock.setblocking(False)
    bound = sock.getsockname()[1]
    children: list[int] = []
    for _ in range(max(1, workers) - 1):
        pid = os.fork()
        if pid == 0:
            children = []
            break
        children.append(pid)
    is_parent = len(children) == max(1, workers) - 1 and (workers <= 1 or children)
    parent_pid = os.getppid()
    signal.signal(signal.SIGTERM, signal.default_int_handler)  # terminate = Ctrl-C: stop the workers too

    async def orphan_watch() -> None:  # a worker whose parent died exits
        while os.getppid() == parent_pid:
            await asyncio.sleep(1)
        os._exit(0)

    async def main() -> None:
        app = build_app(config)
        if workers <= 1:  # workers do not share one clock or one dataset: no admin routes
            add_routes(app)
        runner = web.AppRunner(app, access_log=None, handle_signals=False)
        await runner.setup()
        await web.SockSite(runner, sock).start()
        if not is_parent:
            asyncio.ensure_future(orphan_watch())
        if is_parent:
            print(f"http://{host}:{bound}", flush=True)
            print(f"Klaviyo sandbox: seed={config.seed} scale={config.scale} rate-limits={config.rate_limits} "
                  f"workers={workers}", file=sys.stderr)  # fmt: skip
        try:
            await asyncio.Event().wait()
        finally:
            await runner.cleanup()

    try:
        asyncio.run(main())
    except KeyboardInterrupt:
        pass
    finally:
        for pid in children:
            try:
                os.kill(pid, signal.SIGTERM)
            except ProcessLookupError:
                pass


class SandboxServer:
    """A sandbox on a free port in a background thread: ``with SandboxServer(cfg) as sb: sb.base_url``."""

    def __init__(self, config: SandboxConfig | None = None, host: str = "127.0.0.1", port: int = 0) -> None:
        self.config = config or SandboxConfig()
        self.host, self.port = host, port
        self.app = build_app(self.config)
        add_routes(self.app)
        self.state: SandboxState = self.app[STATE]
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, name="klaviyo-sandbox", daemon=True)
        self._runner: web.AppRunner | None = None
        self.base_url = ""

    def start(self) -> SandboxServer:
        self._thread.start()
        fut = asyncio.run_coroutine_threadsafe(_start(self.app, self.host, self.port), self._loop)
        self._runner, bound = fut.result(timeout=30)
        self.base_url = f"http://{self.host}:{bound}"
        return self

    def stop(self) -> None:
        if self._runner is not None:
            asyncio.run_coroutine_threadsafe(self._runner.cleanup(), self._loop).result(timeout=30)
            self._runner = None
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(timeout=10)

    def __enter__(self) -> SandboxServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()
