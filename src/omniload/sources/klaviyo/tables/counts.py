"""Counts analysts ask for (issue #25), which only single-resource endpoints give: a list's and a segment's
``profile_count`` (``GET /api/lists/{id}`` with ``additional-fields[list]=profile_count``, segments alike) and a
campaign's estimated recipients (``GET /api/campaign-recipient-estimations/{id}``).

Each is read once per parent record through the child machinery (children.py: the parents' ids listed, each
asked once), one row per parent keyed by its id, read whole and replaced each run: a count is the count now, and
nothing says when it changed (a list's ``updated`` does not move when a profile joins). Costly, so opt-in: not in
``--source-table all`` unless the URI asks (``list_fields=profile_count``, ``segment_fields=profile_count``,
``campaign_fields=estimated_recipient_count``; options.py), and loaded whenever named. ``profile_count`` brings
its own, lower rate limit (1/s, 15/m instead of 75/s, 750/m, the endpoints' descriptions): one request per list
or segment at 15 a minute. The estimate is the one Klaviyo last computed: refreshing it takes a POST
(``/api/campaign-recipient-estimation-jobs``, scope ``campaigns:write``) that a read-only copy does not send.
Values follow Klaviyo's OpenAPI revision 2026-07-15; ``tests/test_counts.py`` checks them against it.
"""

from __future__ import annotations

from ....types import INT
from ..spec import Parent, TableSpec


def _count(parent: str, rtype: str, column: str) -> TableSpec:
    """``profile_count`` of every record of ``parent`` (lists, segments), at the lower limit the field brings."""
    return TableSpec(f"{rtype}-profile-counts", f"/api/{parent}/{{id}}", rtype, dict(profile_count=INT), 1, 15, None,
                     parent=Parent(parent, column=column, fields="id"), id_column=column, primary_key=(column,),
                     extra_params={f"additional-fields[{rtype}]": "profile_count", f"fields[{rtype}]": "profile_count"},
                     single=True, in_all=False)  # fmt: skip


COUNTS: list[TableSpec] = [
    _count("lists", "list", "list_id"),
    _count("segments", "segment", "segment_id"),
    TableSpec("campaign-recipient-estimations", "/api/campaign-recipient-estimations/{id}",
              "campaign-recipient-estimation", dict(estimated_recipient_count=INT), 10, 150, None,
              parent=Parent("campaigns", column="campaign_id", fields="id"), id_column="campaign_id",
              primary_key=("campaign_id",), single=True, in_all=False),
]  # fmt: skip
