"""Every Klaviyo table, by family: ``core`` holds the 15 list endpoints. ``TABLES`` is the order ``all`` loads."""

from __future__ import annotations

from ..spec import TableSpec
from .core import CORE

TABLES: dict[str, TableSpec] = {t.name: t for t in CORE}

__all__ = ["TABLES", "TableSpec"]
