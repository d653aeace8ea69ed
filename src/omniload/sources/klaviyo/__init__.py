"""The Klaviyo source: ``KlaviyoSource`` for omniload, and ``klaviyo_source`` for plain dlt pipelines.

Imports are lazy, so that naming the package does not load dlt or the HTTP stack.
"""

from __future__ import annotations

from typing import Any

__all__ = ["KlaviyoSource", "klaviyo_source"]


def __getattr__(name: str) -> Any:
    if name == "KlaviyoSource":
        from .source import KlaviyoSource

        return KlaviyoSource
    if name == "klaviyo_source":
        from .dlt_source import klaviyo_source

        return klaviyo_source
    raise AttributeError(name)
