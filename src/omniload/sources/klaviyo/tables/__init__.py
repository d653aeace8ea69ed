"""Every Klaviyo table, by family: ``core`` holds the 15 list endpoints, ``reports`` the Reporting API and
metric aggregates. ``TABLES`` is the order ``all`` loads (reports only when named)."""

from __future__ import annotations

from ..spec import TableSpec
from .core import CORE
from .reports import REPORT_SPECS

TABLES: dict[str, TableSpec] = {t.name: t for t in CORE + REPORT_SPECS}

__all__ = ["TABLES", "TableSpec"]
