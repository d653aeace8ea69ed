"""Every Klaviyo table, by family: ``core`` holds the 15 list endpoints, ``relationships`` the child tables read
once per parent record (flow actions, flow messages, list and segment memberships), ``reports`` the Reporting
API and metric aggregates. ``TABLES`` is the order ``all`` loads (parents before their children; reports only
when named)."""

from __future__ import annotations

from ..spec import TableSpec
from .core import CORE
from .relationships import RELATIONSHIPS
from .reports import REPORT_SPECS

TABLES: dict[str, TableSpec] = {t.name: t for t in [*CORE, *RELATIONSHIPS, *REPORT_SPECS]}

__all__ = ["TABLES", "TableSpec"]
