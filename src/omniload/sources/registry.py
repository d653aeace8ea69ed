"""Which source serves a URI scheme. Adding a source means adding its package and one line here.

Entries are import paths, so that choosing a source imports only that source (``--help`` stays fast).
"""

from __future__ import annotations

import importlib

from ..errors import UsageError
from .base import Source

SOURCES: dict[str, str] = {
    "klaviyo": "omniload.sources.klaviyo.source:KlaviyoSource",
}


def source_class(scheme: str) -> type[Source]:
    module, _, name = SOURCES[scheme].partition(":")
    return getattr(importlib.import_module(module), name)


def open_source(uri: str) -> Source:
    """The source for ``uri``, parsed; an unknown scheme is a UsageError naming the known ones."""
    from ..uri import redact

    scheme = uri.split("://", 1)[0].lower() if "://" in uri else ""
    if scheme not in SOURCES:
        shown = scheme or redact(uri)
        raise UsageError(f"--source-uri: unknown scheme '{shown}'; allowed: {', '.join(s + '://' for s in SOURCES)}")
    return source_class(scheme).from_uri(uri)
