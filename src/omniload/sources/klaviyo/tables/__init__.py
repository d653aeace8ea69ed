"""Every Klaviyo table, by family: ``core`` holds the 15 list endpoints, ``relationships`` the child tables read
once per parent record (flow actions, flow messages, list and segment memberships), ``further_lists`` the other list
endpoints (tag groups, coupon codes, push tokens, ...), ``included`` the tables read from a parent's
``included`` resources (campaign messages, campaign and flow tags), ``config`` the account's configuration
(data sources, tracking settings, web feeds, webhooks), ``consent`` the profiles' consent per channel, ``objects``
the custom objects, ``counts`` the opt-in counts of single-resource endpoints (lists' and segments'
``profile_count``, campaigns' recipient estimates), ``reports`` the Reporting API and metric aggregates.
``TABLES`` is the order ``all`` loads (parents before their children; counts and reports only when named). A parent's ``dependents`` name its children (Klaviyo deletes them with it)."""

from __future__ import annotations

from dataclasses import replace

from ..spec import TableSpec
from .config import CONFIG
from .consent import CONSENT
from .core import CORE
from .counts import COUNTS
from .further_lists import MORE
from .included import INCLUDED
from .objects import OBJECTS
from .relationships import RELATIONSHIPS
from .reports import REPORT_SPECS


def _with_children(specs: list[TableSpec]) -> dict[str, TableSpec]:
    out = {t.name: t for t in specs}
    for child in specs:
        if child.parent is not None and child.parent_column:
            parent = out[child.parent.table]
            out[parent.name] = replace(parent, dependents=(*parent.dependents, (child.name, child.parent_column)))
    return out


TABLES: dict[str, TableSpec] = _with_children(
    [*CORE, *RELATIONSHIPS, *MORE, *INCLUDED, *CONFIG, *CONSENT, *OBJECTS, *COUNTS, *REPORT_SPECS]
)

__all__ = ["TABLES", "TableSpec"]
