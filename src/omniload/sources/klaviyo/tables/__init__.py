"""Every Klaviyo table, by family: ``core`` holds the 15 list endpoints, ``relationships`` the child tables read
once per parent record (flow actions, flow messages, list and segment memberships). ``TABLES`` is the order
``all`` loads (parents before their children)."""

from __future__ import annotations

from ..spec import TableSpec
from .core import CORE
from .relationships import RELATIONSHIPS

TABLES: dict[str, TableSpec] = {t.name: t for t in [*CORE, *RELATIONSHIPS]}

__all__ = ["TABLES", "TableSpec"]
