"""A Klaviyo API sandbox: a real HTTP server that behaves like Klaviyo's 15 list endpoints (rev 2026-07-15)."""

from .app import SandboxConfig
from .server import SandboxServer, serve_forever

__all__ = ["SandboxConfig", "SandboxServer", "serve_forever"]
